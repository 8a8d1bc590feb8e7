"""The table of recipes/debian-voices/backend.sh stage 4: per encoder, dev set and scoring, the
verification metrics of WORK/<encoder>/<set>-<scoring>/report.json (spk evaluate verification)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SETS = ("real-dev", "synthetic-dev")
SCORINGS = {"raw": "raw cosine", "default": "back-end (default)", "snorm": "back-end + s-norm"}  # each with its calibration map


def row(encoder: str, dev_set: str, scoring: str, report: dict, raw_eer: float | None) -> str:
    costs = report["min_dcf"]
    actual = [costs[p]["actual_dcf"] for p in ("0.01", "0.05")]
    numbers = [f"{report['eer_pct']:.2f} %", "" if raw_eer is None else f"{report['eer'] / raw_eer:.2f}",
               f"{costs['0.01']['min_dcf']:.3f}", _value(actual[0]), f"{costs['0.05']['min_dcf']:.3f}", _value(actual[1]),
               _value(report["cllr"])]
    return f"| {encoder} | {dev_set} | {SCORINGS[scoring]} | " + " | ".join(numbers) + " |"


def _value(number: float | None) -> str:
    return "-" if number is None else f"{number:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("encoders", nargs="+")
    args = parser.parse_args()
    print("| encoder | dev set | scoring | EER | / raw | minDCF 0.01 | actDCF 0.01 | minDCF 0.05 | actDCF 0.05 | Cllr |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for encoder in args.encoders:
        for dev_set in SETS:
            reports = {scoring: args.work / encoder / f"{dev_set}-{scoring}" / "report.json" for scoring in SCORINGS}
            reports = {scoring: json.loads(path.read_text()) for scoring, path in reports.items() if path.is_file()}
            raw_eer = reports.get("raw", {}).get("eer")
            for scoring, report in reports.items():
                print(row(encoder, dev_set, scoring, report, raw_eer))


if __name__ == "__main__":
    main()
