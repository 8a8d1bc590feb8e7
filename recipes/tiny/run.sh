#!/usr/bin/env bash
# Tiny end-to-end recipe, small enough for the test suite (a few minutes on 2 CPU cores):
#   stage 0  synthetic corpus (train speakers + disjoint eval speakers + trial list)
#   stage 1  spk preprocess   -> manifests + log-mel features
#   stage 2  spk train        -> a tiny conv-transformer (GE2E)
#   stage 3  spk embed        -> eval embeddings with the trained checkpoint
#   stage 4  spk verify       -> scores.parquet for the trial list
#   stage 5  spk evaluate     -> EER, minDCF, retrieval, plots
# Usage: recipes/tiny/run.sh [--stage N] [--stop-stage N] [--work DIR] [--steps N]
# Every stage is safe to re-run: finished outputs are kept (spk skips up-to-date work).
set -euo pipefail

stage=0
stop_stage=100
work=exp/tiny
steps=40
spk=${SPK:-spk}
python=${PYTHON:-python}
. "$(dirname "$0")/../parse_options.sh"
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "$(date '+%H:%M:%S') [tiny] $*"; }
mkdir -p "$work"

if run_stage 0; then
  if [ -f "$work/corpus/trials.txt" ]; then
    log "stage 0: corpus exists, skipping"
  else
    log "stage 0: synthesising the corpus"
    rm -rf "$work/corpus.partial"
    "$python" "$here/local/make_corpus.py" "$work/corpus.partial"
    mv "$work/corpus.partial" "$work/corpus"
  fi
fi

if run_stage 1; then
  log "stage 1: preprocess"
  "$spk" preprocess folder "$work/corpus/train" --out "$work/data" --vad energy --dev-fraction 0.25 --test-fraction 0 -q
fi

if run_stage 2; then
  if [ -f "$work/model/model.safetensors" ]; then
    log "stage 2: model exists, skipping"
  else
    log "stage 2: train ($steps steps)"
    resume=""
    [ -d "$work/model/checkpoints" ] && resume="--resume"
    "$spk" train --data "$work/data" --out "$work/model" --steps "$steps" $resume -q \
      --set model.channels=32 --set model.d_model=64 --set model.num_layers=2 --set model.num_heads=2 \
      --set model.ff_dim=128 --set model.embedding_size=64 --set speakers_per_batch=8 \
      --set utterances_per_speaker=4 --set checkpoint_every=20 --set eval_every=20 --set warmup_steps=5 \
      --set learning_rate=0.003
  fi
fi

if run_stage 3; then
  log "stage 3: embed the eval speakers"
  "$spk" embed "$work/corpus/eval" --out "$work/emb" --checkpoint "$work/model" --vad energy -q
fi

if run_stage 4; then
  log "stage 4: score the trial list"
  "$spk" verify --trials "$work/corpus/trials.txt" --embeddings "$work/emb" --out "$work/emb/scores.parquet" -q
fi

if run_stage 5; then
  log "stage 5: evaluate"
  "$spk" evaluate verification --embeddings "$work/emb" --trials "$work/corpus/trials.txt" --out "$work/eval"
fi
log "done: $work"
