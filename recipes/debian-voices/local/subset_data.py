#!/usr/bin/env python3
"""A share of a `spk preprocess` output folder, for learning curves against hours of audio.

    subset_data.py DATA OUT --fraction 0.25 [--seed 0]

OUT gets the train-split segments of a seeded random `fraction` of DATA's train utterances (every
speaker keeps at least 2, so none drops out; the dev split is kept whole, so every point of the
curve is scored the same way) and links to DATA's features.zarr and speech.zarr; `spk train --data
OUT` then trains on that share only. Prints the hours of speech kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from speakembed.pipelines.data.features import read_features
from speakembed.pipelines.data.manifests import read_table, write_table

FRAME_S = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    segments = read_table(args.data / "segments.parquet", "segments")
    rng = np.random.default_rng(args.seed)
    keep = rng.random(len(segments)) < args.fraction
    keep |= segments["split"].ne("train").to_numpy()
    ranked = segments.assign(order=rng.random(len(segments))).groupby("speaker")["order"].rank()
    keep |= (ranked <= 2).to_numpy()  # every train speaker keeps two utterances
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(segments[keep].reset_index(drop=True), args.out / "segments.parquet", "segments")
    shutil.copy(args.data / "recordings.parquet", args.out / "recordings.parquet")
    for store in ("features.zarr", "speech.zarr"):
        link = args.out / store
        if (args.data / store).exists() and not link.exists():
            os.symlink(os.path.relpath(args.data / store, args.out), link)
    train = segments[keep & segments["split"].eq("train").to_numpy()]
    features = read_features(args.data)
    speech_h = sum(features.num_frames(segment) for segment in train["segment_id"]) * FRAME_S / 3600
    print(f"{args.out}: {len(train)} train utterances of {train['speaker'].nunique()} speakers, "
          f"{speech_h:.2f} h of speech")


if __name__ == "__main__":
    main()
