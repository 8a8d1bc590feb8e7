"""`spk calibrate`: fit a score -> log-likelihood-ratio map on labelled trials' scores."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from speakembed.commands import options
from speakembed.console import stdout, user_errors

HELP = """Fit the calibration that turns verification scores into log-likelihood ratios and probabilities.

spk calibrate --scores scores.parquet --out calibration.json [--prior 0.5] [--json]

scores.parquet comes from `spk verify --trials LIST --embeddings STORE --out scores.parquet` on a labelled trial list that you will NOT evaluate on (Kaldi 'target|nontarget', VoxCeleb '1|0'). A logistic map (prior-weighted, as BOSARIS) is fitted for the scoring those scores were made with (back-end, s-norm); an existing calibration.json of the same encoder keeps its maps for other scorings. Use it with spk verify / evaluate verification --calibration calibration.json."""


def calibrate(
    scores: Path = typer.Option(..., "--scores", "-s", help="Labelled scores.parquet from `spk verify --trials`."),
    out: Path = typer.Option(..., "--out", "-o", help="calibration.json to write (or add a map to)."),
    prior: float = typer.Option(0.5, "--prior", help="Effective prior of a target trial that weights the fit (0 < p < 1)."),
    as_json: bool = options.AS_JSON,
) -> None:
    """`spk calibrate`: scores -> LLR map, written to calibration.json."""
    from speakembed.pipelines import calibrate as pipeline

    with user_errors():
        report = pipeline.run(scores, out, prior=prior)
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
        return
    fitted = report.fitted
    stdout.print(f"calibrated '{report.key}' scores of {report.encoder} on {fitted.trials} trials ({fitted.targets} target): "
                 f"llr = {fitted.scale:.3f} x score {fitted.offset:+.3f}; on these trials Cllr {report.cllr:.3f} bits, "
                 f"actual DCF {report.actual_dcf:.4f} (min {report.min_dcf:.4f}) at p_target {pipeline.REPORT_P_TARGET:g} "
                 f"-> {report.out_path}", highlight=False)
    if report.kept_keys:
        stdout.print(f"kept the maps for {', '.join(report.kept_keys)}", highlight=False)
    if report.replaced_encoder:
        stdout.print(f"replaced a calibration of {report.replaced_encoder}", style="yellow", highlight=False)
