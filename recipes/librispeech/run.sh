#!/usr/bin/env bash
# Train on LibriSpeech train-clean-100, evaluate on VoxCeleb1-O (cleaned, veri_test2.txt):
# the conv-transformer and the LSTM trained at equal budget, against the pretrained `lstm`.
#   stage 0  check the data (nothing is downloaded) and the tools
#   stage 1  spk preprocess librispeech   -> $work/data      (manifests + log-mel features)
#   stage 2  spk preprocess voxceleb      -> $work/vox_test  (all speakers in test, trials.parquet)
#   stage 3  torchrun ... spk train       -> $work/conv_transformer and $work/lstm (same steps, same GPUs)
#   stage 4  spk embed --shard K/N        -> $work/emb/{conv_transformer,lstm,pretrained_lstm}
#   stage 5  spk verify + spk evaluate    -> $work/emb/*/scores.parquet, $work/eval/*/report.md
# Usage: recipes/librispeech/run.sh [--stage N] [--stop-stage N] [--work DIR] [--steps N]
#          [--librispeech DIR] [--voxceleb1 DIR] [--gpus N] [--jobs N]
# Data (get it yourself; this script never downloads):
#   LIBRISPEECH  the folder holding train-clean-100/ (from https://www.openslr.org/12:
#                train-clean-100.tar.gz, 6.3 GB, unpacks to LibriSpeech/train-clean-100/)
#   VOXCELEB1    the VoxCeleb1 test set: VOXCELEB1/wav/<id>/<video>/<utt>.wav (vox1_test_wav.zip,
#                ~1 GB, from https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html after
#                registering) and VOXCELEB1/veri_test2.txt (the cleaned VoxCeleb1-O trial list, same
#                page); veri_test2.txt may also sit inside VOXCELEB1/wav/.
# Every stage is safe to re-run: finished outputs are kept (spk skips up-to-date work, a trained
# model is not retrained, an interrupted training resumes from its last checkpoint).
# GPU: install a CUDA build of torch in the venv first (the Makefile pins the CPU wheel).
set -euo pipefail

stage=0
stop_stage=100
work=exp/librispeech
steps=100000
librispeech=${LIBRISPEECH:-}
voxceleb1=${VOXCELEB1:-}
gpus=${GPUS:-1}    # processes (one per GPU) for torchrun
jobs=${JOBS:-4}    # parallel `spk embed --shard K/N` parts in stage 4
spk=${SPK:-spk}
torchrun=${TORCHRUN:-torchrun}
. "$(dirname "$0")/../parse_options.sh"
[ "$gpus" -ge 1 ] && [ "$jobs" -ge 1 ] || { echo "--gpus and --jobs must be at least 1" >&2; exit 2; }
log() { echo "$(date '+%H:%M:%S') [librispeech] $*"; }
die() { echo "$(date '+%H:%M:%S') [librispeech] ERROR: $*" >&2; exit 1; }
mkdir -p "$work"

# name -> encoder trained in stage 3 (both with the same steps and GPUs, so they compare fairly)
models="conv_transformer lstm"
encoder_of() { case "$1" in conv_transformer) echo conv-transformer ;; lstm) echo lstm ;; esac; }
vox_root="$work/vox1_test_root"  # $VOXCELEB1/wav with the trial list beside the speaker folders

if run_stage 0; then
  log "stage 0: checking data and tools"
  [ -n "$librispeech" ] || die "set LIBRISPEECH=DIR (or --librispeech DIR): the folder holding train-clean-100/ (https://www.openslr.org/12)"
  [ -n "$voxceleb1" ] || die "set VOXCELEB1=DIR (or --voxceleb1 DIR): the VoxCeleb1 test set, with wav/ and veri_test2.txt"
  [ -d "$librispeech/train-clean-100" ] || die "$librispeech/train-clean-100: no such folder (unpack train-clean-100.tar.gz from https://www.openslr.org/12)"
  compgen -G "$librispeech/train-clean-100/*/*/*.flac" > /dev/null \
    || die "$librispeech/train-clean-100: no <speaker>/<chapter>/*.flac inside; is the archive fully unpacked?"
  [ -d "$voxceleb1/wav" ] || die "$voxceleb1/wav: no such folder (unzip vox1_test_wav.zip into $voxceleb1)"
  compgen -G "$voxceleb1/wav/id*/*/*.wav" > /dev/null || die "$voxceleb1/wav: no <id>/<video>/<utt>.wav inside"
  [ -f "$voxceleb1/veri_test2.txt" ] || [ -f "$voxceleb1/wav/veri_test2.txt" ] \
    || die "veri_test2.txt not found in $voxceleb1 or $voxceleb1/wav (download it from the VoxCeleb1 page)"
  command -v "$spk" > /dev/null || die "'$spk' not found; activate the venv or set SPK=/path/to/spk"
  command -v "$torchrun" > /dev/null || die "'$torchrun' not found; set TORCHRUN=/path/to/.venv/bin/torchrun"
  found=$(nvidia-smi -L 2>/dev/null | wc -l || true)
  if [ "$found" -lt "$gpus" ]; then
    log "warning: --gpus $gpus but nvidia-smi lists $found GPU(s); training will be slow or fail"
  fi
  log "stage 0: LibriSpeech $librispeech/train-clean-100, VoxCeleb1 $voxceleb1, $gpus GPU process(es), $jobs embed jobs"
fi

if run_stage 1; then
  log "stage 1: preprocess LibriSpeech train-clean-100 (train/dev speakers; the test set is VoxCeleb1)"
  "$spk" preprocess librispeech "$librispeech/train-clean-100" --out "$work/data" --test-fraction 0 -q
fi

if run_stage 2; then
  log "stage 2: preprocess the VoxCeleb1 test set (every speaker in test, trials from veri_test2.txt)"
  # `spk preprocess voxceleb ROOT` wants the trial list in ROOT beside the <id> folders:
  # a folder of links gives it that without touching the data.
  vox=$(cd "$voxceleb1" && pwd)
  trials="$vox/veri_test2.txt"
  [ -f "$trials" ] || trials="$vox/wav/veri_test2.txt"
  mkdir -p "$vox_root"
  for speaker in "$vox/wav"/id*; do ln -sfn "$speaker" "$vox_root/$(basename "$speaker")"; done
  ln -sfn "$trials" "$vox_root/veri_test2.txt"
  "$spk" preprocess voxceleb "$vox_root" --out "$work/vox_test" --dev-fraction 0 --test-fraction 1 -q
fi

if run_stage 3; then
  for name in $models; do
    out="$work/$name"
    if [ -f "$out/model.safetensors" ]; then
      log "stage 3: $name exists, skipping"
      continue
    fi
    resume=""
    [ -d "$out/checkpoints" ] && resume="--resume"
    log "stage 3: train $name ($steps steps, $gpus process(es) x 16 speakers x 6 utterances per step)"
    # checkpoint_every: 20 checkpoints of ~17 MB (weights + AdamW state), not 500 at the default 200.
    "$torchrun" --standalone --nproc_per_node "$gpus" -m speakembed.main train \
      --data "$work/data" --out "$out" --encoder "$(encoder_of "$name")" --steps "$steps" $resume -q \
      --set checkpoint_every=5000 --set eval_every=1000
  done
fi

embed_sharded() {  # embed_sharded NAME ARGS...: the VoxCeleb1 test set in $jobs parallel parts
  local name=$1 k pid failed=0 pids=""
  shift
  for k in $(seq 1 "$jobs"); do
    # with several GPUs, spread the parts over them (a CPU-only machine ignores this)
    CUDA_VISIBLE_DEVICES=$(( (k - 1) % gpus )) \
      "$spk" embed "$work/vox_test/segments.parquet" --out "$work/emb/$name" --shard "$k/$jobs" -q "$@" &
    pids="$pids $!"
  done
  for pid in $pids; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || die "spk embed failed for $name (see the messages above)"
}

if run_stage 4; then
  mkdir -p "$work/emb"
  for name in $models; do
    [ -f "$work/$name/model.safetensors" ] || die "$work/$name: no trained model; run stage 3 first"
    log "stage 4: embed VoxCeleb1 test with $name ($jobs parts)"
    embed_sharded "$name" --checkpoint "$work/$name"
  done
  log "stage 4: embed VoxCeleb1 test with the pretrained lstm ($jobs parts)"
  embed_sharded pretrained_lstm --encoder lstm
fi

if run_stage 5; then
  mkdir -p "$work/eval"
  for name in $models pretrained_lstm; do
    log "stage 5: score and evaluate $name"
    "$spk" verify --trials "$work/vox_test/trials.parquet" --embeddings "$work/emb/$name" \
      --out "$work/emb/$name/scores.parquet" -q
    "$spk" evaluate verification --embeddings "$work/emb/$name" --trials "$work/vox_test/trials.parquet" \
      --speakers "$work/vox_test/segments.parquet" --out "$work/eval/$name"
  done
  log "stage 5: reports in $work/eval/{conv_transformer,lstm,pretrained_lstm}/report.md"
fi
log "done: $work"
