#!/usr/bin/env bash
# How the shipped conv-transformer and Whisper head were made, from assets that install offline (see README.md here):
#   stage 0  synthetic corpus: Kokoro voice mixtures, espeak-ng voices, klettres-data real voices
#   stage 1  spk preprocess   -> manifests + log-mel features (speaker-disjoint train/dev split)
#   stage 2  spk train        -> a long conv-transformer run (GE2E, conf/long.json) and a variant
#                                with cosine distillation from the LSTM teacher (conf/distil.json)
#   stage 3  spk embed/evaluate the dev corpus (../shared/data/dev) with the trained model and the LSTM
#   stage 4  equal-budget comparison: conv-transformer vs LSTM from scratch, same recipe and steps
#            and the shipped conv-transformer: the same recipe at a smaller size
#   stage 5  evaluate both from-scratch models on the dev corpus
#   stage 6  spk train clone-adapter on the Kokoro voices (the five-voice adapter from the corpus, the shipped
#            54-voice one from local/make_kokoro_bank.py), spk evaluate clone on the dev speakers
#   stage 7  Whisper-base features, the shipped Whisper head (frozen encoder, triplet + NT-Xent),
#            evaluated on the dev corpus beside the frozen baseline
# Usage: recipes/synthetic/run.sh [--stage N] [--stop-stage N] [--work DIR] [--dev DIR]
# Every stage is safe to re-run: finished outputs are kept, a killed training run resumes.
set -euo pipefail

stage=0
stop_stage=100
work=exp/synthetic
dev=../shared/data/dev
spk=${SPK:-spk}
python=${PYTHON:-python}
. "$(dirname "$0")/../parse_options.sh"
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "$(date '+%H:%M:%S') [synthetic] $*"; }
mkdir -p "$work"
train_data=$work/data

train() {  # train CONFIG OUT [extra spk train options]; features from $train_data
  local config=$1 out=$2; shift 2
  if [ -f "$out/model.safetensors" ]; then log "$out exists, skipping"; return; fi
  local resume=""
  [ -d "$out/checkpoints" ] && resume="--resume"
  "$spk" train --data "$train_data" --out "$out" --config "$config" $resume "$@"
}

evaluate() {  # evaluate NAME [spk embed options]: embeddings + report of the dev trials in $work/eval/NAME
  local name=$1; shift
  mkdir -p "$work/eval/$name"
  "$spk" embed "$dev/audio" --out "$work/eval/$name/embeddings" -q "$@"
  "$spk" evaluate verification --embeddings "$work/eval/$name/embeddings" --trials "$dev/trials.tsv" \
    --out "$work/eval/$name" | tee "$work/eval/$name/summary.txt"
}

if run_stage 0; then
  log "stage 0: synthesising the corpus (resumes per speaker)"
  "$python" "$here/local/make_corpus.py" "$work/corpus" --kokoro 60 --espeak 48 --utterances 8
fi

if run_stage 1; then
  log "stage 1: preprocess"
  "$spk" preprocess folder "$work/corpus" --out "$work/data" --dev-fraction 0.1 --test-fraction 0 -q
fi

if run_stage 2; then
  log "stage 2: train the conv-transformer (the shipped one, then the distilled variant)"
  train "$here/conf/long.json" "$work/conv-transformer-long" --encoder conv-transformer
  train "$here/conf/distil.json" "$work/conv-transformer-distil"
fi

if run_stage 3; then
  log "stage 3: evaluate on $dev"
  mkdir -p "$work/eval"
  evaluate conv-transformer-long --checkpoint "$work/conv-transformer-long"
  evaluate conv-transformer-distil --checkpoint "$work/conv-transformer-distil"
  evaluate lstm-pretrained --encoder lstm
fi

if run_stage 4; then
  log "stage 4: equal budget from scratch (no teacher)"
  train "$here/conf/scratch.json" "$work/scratch-conv-transformer" --encoder conv-transformer
  train "$here/conf/scratch.json" "$work/scratch-lstm" --encoder lstm
  # the shipped conv-transformer: the same recipe at a smaller size (0.64 M parameters)
  train "$here/conf/scratch.json" "$work/scratch-conv-transformer-small" --encoder conv-transformer \
    --set model.d_model=128 --set model.ff_dim=256 --set model.channels=96
fi

if run_stage 5; then
  log "stage 5: evaluate the from-scratch models"
  mkdir -p "$work/eval"
  evaluate scratch-conv-transformer --checkpoint "$work/scratch-conv-transformer"
  evaluate scratch-lstm --checkpoint "$work/scratch-lstm"
  evaluate scratch-conv-transformer-small --checkpoint "$work/scratch-conv-transformer-small"
fi
if run_stage 6; then
  log "stage 6: clone adapter"
  [ -f "$work/clone-adapter-lstm-5voices/model.safetensors" ] || \
    "$spk" train clone-adapter --data "$work/corpus" --out "$work/clone-adapter-lstm-5voices" --encoder lstm -q
  # the shipped models/pretrained/clone-adapter-lstm: 101 voices over the 54 kokoro-js tables (needs them fetched)
  "$python" "$here/local/make_kokoro_bank.py" "$work/kokoro-bank" --mixtures 53 --seed 7
  [ -f "$work/clone-adapter-lstm/model.safetensors" ] || \
    "$spk" train clone-adapter --data "$work/kokoro-bank" --out "$work/clone-adapter-lstm" --encoder lstm -q
  mkdir -p "$work/eval"
  clone_speakers=awb,joe,kal,ked,rms,slt,kokoro_mix_alpha_kumo,kokoro_mix_alpha_nezumi,kokoro_mix_gongitsune_tebukuro,kokoro_mix_nezumi_kumo
  evaluate_clone() {  # output name, then options; the README's cloning table (about 6-15 min each)
    local name=$1; shift
    "$spk" evaluate clone "$dev/audio" --speakers "$clone_speakers" --adapter "$work/clone-adapter-lstm" \
      --out "$work/eval/clone-$name" -q "$@"
  }
  evaluate_clone adapter --judge conv-transformer
  evaluate_clone refine40 --refine 40 --judge conv-transformer
  evaluate_clone refine40-judge-whisper-head --refine 40 --refine-with conv-transformer --judge whisper-head
fi
if run_stage 7; then
  log "stage 7: Whisper-base + MLP head"
  "$spk" preprocess folder "$work/corpus" --out "$work/data_whisper" --frontend whisper --dev-fraction 0.1 --test-fraction 0 -q
  train_data=$work/data_whisper train "$here/conf/whisper_head.json" "$work/whisper-head"
  mkdir -p "$work/eval"
  evaluate whisper-head --checkpoint "$work/whisper-head"
  evaluate whisper-frozen --encoder whisper
fi
log "done: $work"
