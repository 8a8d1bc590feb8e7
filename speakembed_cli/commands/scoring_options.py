"""Options of the commands that score embeddings (verify, evaluate verification, identify, ...), declared once."""

from __future__ import annotations

import typer

BACKEND = typer.Option("default", "--backend", help="Scoring back-end: default (the one shipped beside the encoder's "
                       "weights), none (raw cosine), or a folder/backend.npz from `spk train backend`.")
COHORT = typer.Option(None, "--cohort", help="Embeddings store (`spk embed` output) of other voices, same encoder: "
                      "adaptive s-norm of every score against its top-k cohort scores.")
TOP_K = typer.Option(100, "--top-k", min=1, help="Cohort scores per side that adaptive s-norm averages (at most the cohort size).")
CALIBRATION = typer.Option("default", "--calibration", help="Score -> LLR map: default (shipped beside the weights), "
                           "none, or a calibration.json from `spk calibrate`.")
PRIOR = typer.Option(0.5, "--prior", help="Prior probability of same speaker behind the probabilities and the verdict.")
