"""Calibrate an encoder's default verification threshold and record it in its model card.

The threshold is the equal-error-rate operating point of cosine scores on a development trial
list. Usage (the shipped cards were made with this command, --encoder lstm and conv-transformer):

    python scripts/calibrate_threshold.py --encoder lstm \
        --audio ../shared/data/dev/audio --trials ../shared/data/dev/trials.tsv
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from datetime import date
from pathlib import Path

from speakembed.models.registry import CARDS, PRETRAINED
from speakembed.pipelines import embed, verify
from speakembed.pipelines.scoring.metrics import equal_error_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="lstm")
    parser.add_argument("--audio", type=Path, required=True, help="folder of the development audio")
    parser.add_argument("--trials", type=Path, required=True, help="trial list naming items of --audio")
    parser.add_argument("--vad", default="silero")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        report = embed.run([args.audio], Path(work) / "emb", config=embed.EmbedConfig(encoder=args.encoder, vad=args.vad))
        raw_cosine = verify.VerifyConfig(backend="none", calibration="none")  # the card's threshold is a cosine one
        scores = verify.scored_trials(args.trials, report.store_path, config=raw_cosine).table
    operating_point = equal_error_rate(scores["score"].to_numpy(), scores["label"].to_numpy(dtype=int))

    card_path = CARDS / f"{args.encoder}.json"
    if not card_path.is_file():  # a checkpoint shipped in models/pretrained/: its meta.json is the card
        card_path = PRETRAINED / args.encoder / "meta.json"
    card = json.loads(card_path.read_text())
    card["verification_threshold"] = round(operating_point.threshold, 4)
    card["calibration"] = {
        "method": "equal-error-rate threshold of cosine scores",
        "trials": args.trials.name,
        "audio": args.audio.as_posix().split("/shared/")[-1],
        "num_trials": len(scores),
        "num_targets": int((scores["label"] == 1).sum()),
        "vad": args.vad,
        "eer_percent": round(100 * operating_point.eer, 2),
        "encoder_id": report.encoder,
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {platform.python_implementation()} {platform.python_version()}",
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"{args.encoder}: EER {100 * operating_point.eer:.2f} % at threshold {operating_point.threshold:.4f} -> {card_path}")


if __name__ == "__main__":
    main()
