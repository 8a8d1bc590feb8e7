#!/usr/bin/env bash
# The shipped scoring back-end and calibration of each encoder, fitted on the TRAIN split of the Debian
# real-speech corpus (run.sh stages 0-2 build it), then measured on the dev trials (never fitted on them).
#   stage 0  split the train persons (local/backend_split.py)     -> $work/split/{fit,calibration}/, fit_speakers.tsv,
#            calibration_trials.txt: fit = every train voice outside --calibration-languages (12 clips each),
#            calibration = the labelled train persons of those languages (40 clips each) and their trials
#   stage 1  spk embed both parts                                  -> $work/<encoder>/{fit,calibration}
#   stage 2  spk train backend on fit (speaker-balanced mean)      -> $models/<encoder>/backend.npz
#   stage 3  spk verify --trials + spk calibrate on the calibration trials, once per scoring (the back-end
#            or none, with or without s-norm against the fit cohort) -> $models/<encoder>/calibration.json
#   stage 4  measure on the dev trials (data/eval) and the synthetic dev (../shared/data/dev): raw cosine,
#            the default back-end + calibration, and s-norm         -> $work/<encoder>/<set>-<scoring>/report.json,
#            and a summary table                                      -> $work/summary.md
#   stage 5  (measures only, ships nothing) does one calibration hold on real speech and TTS voices? Synthetic
#            train voices (local/synthetic_voices.py: stock Kokoro voices and espeak-ng, none a voice of the
#            synthetic dev), embedded; local/domain_calibration.py compares the back-end and s-norm against a real
#            or a real + synthetic cohort, calibrated on real or pooled trials, by cross-validation on the
#            calibration split and on both dev sets                 -> $work/<encoder>/domains.md
# Usage: recipes/debian-voices/backend.sh [--stage N] [--stop-stage N] [--encoders "lstm conv-transformer"]
#        [--data DIR] [--work DIR] [--models DIR] [--calibration-languages "ru lt el en"] [--synthetic-dev DIR]
#        [--kokoro-voices 24]   (stage 5 needs the 54 kokoro-js voices: python -m speakembed.models.engines.kokoro_voices fetch)
# Refit an encoder whose weights changed (its back-end and calibration name the weights they were fitted for;
# stale ones are ignored with a note): recipes/debian-voices/backend.sh --stage 1 --encoders conv-transformer
set -euo pipefail

stage=0
stop_stage=100
encoders="lstm conv-transformer whisper-head whisper"
data=exp/debian-voices/data
work=exp/debian-voices/backend
models=models/pretrained
calibration_languages="ru lt el en"
synthetic_dev=../shared/data/dev
top_k=100
kokoro_voices=24
spk=${SPK:-spk}
python=${PYTHON:-python}
. "$(dirname "$0")/../parse_options.sh"
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "$(date '+%H:%M:%S') [debian-voices backend] $*"; }
split=$work/split
mkdir -p "$work"

if run_stage 0; then
  if [ -f "$split/calibration_trials.txt" ]; then
    log "stage 0: split exists, skipping"
  else
    log "stage 0: fit / calibration split of the train persons"
    rm -rf "$split.partial"; mkdir -p "$split.partial"
    "$python" "$here/local/backend_split.py" "$data/corpus" "$split.partial" --calibration-languages "$calibration_languages"
    mv "$split.partial" "$split"
  fi
fi

for encoder in $encoders; do
  out=$work/$encoder
  if run_stage 1; then
    log "stage 1: $encoder embeddings of the fit and calibration clips"
    for part in fit calibration; do "$spk" embed "$split/$part" --out "$out/$part" --encoder "$encoder" -q; done
  fi
  if run_stage 2; then
    log "stage 2: $encoder back-end"
    "$spk" train backend --embeddings "$out/fit" --speakers "$split/fit_speakers.tsv" --out "$models/$encoder"
  fi
  if run_stage 3; then
    log "stage 3: $encoder calibration"
    rm -f "$models/$encoder/calibration.json"  # maps of an earlier back-end would stay behind
    for backend in default none; do
      for cohort in "" "$out/fit"; do
        name=$backend${cohort:+-snorm}
        "$spk" verify --trials "$split/calibration_trials.txt" --embeddings "$out/calibration" --backend "$backend" \
          ${cohort:+--cohort "$cohort" --top-k "$top_k"} --calibration none --out "$out/calibration-$name.parquet" -q
        "$spk" calibrate --scores "$out/calibration-$name.parquet" --out "$models/$encoder/calibration.json"
      done
    done
  fi
  if run_stage 4; then
    log "stage 4: $encoder on the dev trials"
    "$spk" embed "$data/eval/audio" --out "$out/real-dev" --encoder "$encoder" -q
    "$spk" embed "$synthetic_dev/audio" --out "$out/synthetic-dev" --encoder "$encoder" -q
    for set in real-dev synthetic-dev; do
      trials=$data/eval/trials.txt; [ "$set" = synthetic-dev ] && trials=$synthetic_dev/trials.tsv
      "$spk" evaluate verification --embeddings "$out/$set" --trials "$trials" --backend none --out "$out/$set-raw" > /dev/null
      "$spk" evaluate verification --embeddings "$out/$set" --trials "$trials" --out "$out/$set-default" > /dev/null
      "$spk" evaluate verification --embeddings "$out/$set" --trials "$trials" --cohort "$out/fit" --top-k "$top_k" \
        --out "$out/$set-snorm" > /dev/null
    done
  fi
done

if run_stage 4; then
  "$python" "$here/local/backend_summary.py" "$work" $encoders | tee "$work/summary.md"
fi

if run_stage 5; then
  synthetic_voices=$work/synthetic-voices
  log "stage 5: synthetic train voices (resumes per voice)"
  "$python" "$here/local/synthetic_voices.py" "$synthetic_voices" --kokoro "$kokoro_voices" --kokoro-utterances 5
  for encoder in $encoders; do
    log "stage 5: $encoder calibration across domains"
    out=$work/$encoder
    "$spk" embed "$synthetic_voices" --out "$out/synthetic-voices" --encoder "$encoder" -q
    "$python" "$here/local/domain_calibration.py" "$work" "$encoder" "$out/synthetic-voices" "$data" "$synthetic_dev" \
      "$models" | tee "$out/domains.md"
  done
fi
