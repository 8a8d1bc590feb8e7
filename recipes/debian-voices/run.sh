#!/usr/bin/env bash
# Real recorded speech from Debian packages (~6 h, ~100 people, ~30 languages): fetch, build a
# folder corpus with a labels table, make speaker-disjoint dev trials, and score the encoders on them.
#   stage 0  apt-get download the packages           -> $data/debs          (no install, no root; a package
#            whose .deb is already there is not fetched, so with all of them there no network is needed)
#   stage 1  dpkg-deb -x each package                 -> $data/unpacked
#   stage 2  folder corpus + labels.tsv               -> $data/corpus/{train,dev}/<speaker>/...
#   stage 3  dev trials (mostly same-language non-targets) -> $data/eval/{audio,trials.txt}, and the same
#            trials through a room and a telephone line       -> $data/eval-channels/{reverb,telephone}/
#   stage 4  spk embed + spk verify --trials + spk evaluate verification, per encoder -> $work/<encoder>/
#   stage 5  spk preprocess folder of the train split (features for spk train)  -> $work/train-data
#   stage 6  simulated meetings of the dev voices (clean, reverb, telephone; RTTM + refs)
#            -> $data/meetings/{clean,reverb,telephone}/<id>.{flac,rttm}, <id>/refs/, meetings.tsv
#   stage 7  spk train each of --trainings (conf/NAME.json)      -> $work/train/NAME
#   stage 8  the trained models on the real dev trials (clean, reverb, telephone) -> $work/eval/NAME/*/report
# Usage: recipes/debian-voices/run.sh [--stage N] [--stop-stage N] [--data DIR] [--work DIR]
#                                     [--encoders "lstm conv-transformer"] [--dev-languages "fr es nl de"]
#                                     [--packages "..."] [--trial-nontargets 3000]
#                                     [--meetings 8] [--meeting-minutes "1 3"] [--long-meeting-minutes 20]
#                                     [--trainings "ct_scratch ct_continue ..."]
# Never add the packages that ../shared/FACTS.md reserves for independent evaluation (asterisk-*,
# fillets-ng-data-*, codec2-examples, pocketsphinx-testdata, the alsa channel-test voices, the pyannote
# sample): they must stay unseen. Every stage is safe to re-run.
set -euo pipefail

stage=0
stop_stage=100
data=exp/debian-voices/data
work=exp/debian-voices
encoders="lstm conv-transformer whisper-head"
# stage 7, in order (conf/NAME.json; ct_average is the weight average of local/average_checkpoints.py): the
# lineage of the shipped conv-transformer and whisper head (whisper_head_finetune starts from the synthetic
# head of recipes/synthetic stage 7, exp/synthetic/whisper-head); README.md has the ablation runs
trainings="ct_scratch ct_continue ct_continue_distil ct_average ct_groups whisper_head_finetune"
dev_languages="fr es nl de"
trial_nontargets=3000
meetings=8                # of 1-3 minutes (--meeting-minutes), plus one long one
meeting_minutes="1 3"
long_meeting_minutes=20   # 0: no long meeting
packages="tuxpaint-stamps-default klettres-data ktuberling-data gcin-voice festvox-ru hedgewars-data megaglest-data warzone2100-data openarena-data"
spk=${SPK:-spk}
python=${PYTHON:-python}
. "$(dirname "$0")/../parse_options.sh"
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "$(date '+%H:%M:%S') [debian-voices] $*"; }
mkdir -p "$data" "$work"

if run_stage 0; then
  mkdir -p "$data/debs"
  for package in $packages; do
    if ls "$data/debs/${package}"_*.deb >/dev/null 2>&1; then continue; fi
    log "stage 0: downloading $package"
    (cd "$data/debs" && apt-get download "$package")
  done
fi

if run_stage 1; then
  for deb in "$data"/debs/*.deb; do
    package=$(basename "$deb"); package=${package%%_*}
    [ -d "$data/unpacked/$package" ] && continue
    log "stage 1: unpacking $package"
    rm -rf "$data/unpacked/$package.partial"; mkdir -p "$data/unpacked/$package.partial"
    dpkg-deb -x "$deb" "$data/unpacked/$package.partial"
    mv "$data/unpacked/$package.partial" "$data/unpacked/$package"
  done
fi

if run_stage 2; then
  if [ -f "$data/corpus/labels.tsv" ]; then
    log "stage 2: corpus exists, skipping"
  else
    log "stage 2: building the folder corpus"
    rm -rf "$data/corpus.partial"
    "$python" "$here/local/build_corpus.py" "$data/unpacked" "$data/corpus.partial" --dev-languages "$dev_languages"
    mv "$data/corpus.partial" "$data/corpus"
  fi
fi

if run_stage 3; then
  if [ -f "$data/eval/trials.txt" ]; then
    log "stage 3: trials exist, skipping"
  else
    log "stage 3: dev trials"
    rm -rf "$data/eval.partial"
    "$python" "$here/local/make_trials.py" "$data/corpus" "$data/eval.partial" --nontargets "$trial_nontargets"
    mv "$data/eval.partial" "$data/eval"
  fi
  if [ ! -f "$data/eval-channels/telephone/trials.txt" ]; then
    log "stage 3: the dev trials through a room and a telephone line"
    rm -rf "$data/eval-channels.partial"
    "$python" "$here/local/channel_trials.py" "$data/eval" "$data/eval-channels.partial"
    mv "$data/eval-channels.partial" "$data/eval-channels"
  fi
fi

if run_stage 4; then
  for encoder in $encoders; do
    log "stage 4: $encoder"
    "$spk" embed "$data/eval/audio" --out "$work/$encoder/embeddings" --encoder "$encoder" -q
    "$spk" verify --trials "$data/eval/trials.txt" --embeddings "$work/$encoder/embeddings" --out "$work/$encoder/scores.parquet"
    "$spk" evaluate verification --embeddings "$work/$encoder/embeddings" --trials "$data/eval/trials.txt" --out "$work/$encoder/report"
  done
fi

if run_stage 5; then
  # 10 % of the train speakers are held out (split dev) for the trainer's own dev EER; the real dev
  # trials (stage 3) are never seen. --keep-speech keeps the waveforms for waveform augmentation.
  log "stage 5: features of the train split (lstm/conv-transformer frontend, then Whisper's)"
  "$spk" preprocess folder "$data/corpus/train" --out "$work/train-data" --vad silero --test-fraction 0 --keep-speech -q
  "$spk" preprocess folder "$data/corpus/train" --out "$work/train-data-whisper" --frontend whisper --vad silero \
    --test-fraction 0 -q
fi

if run_stage 6; then
  if [ -f "$data/meetings/meetings.tsv" ]; then
    log "stage 6: meetings exist, skipping"
  else
    log "stage 6: meetings of the dev voices"
    rm -rf "$data/meetings.partial"
    "$python" "$here/local/make_meetings.py" "$data/corpus" "$data/meetings.partial" --meetings "$meetings" \
      --minutes "$meeting_minutes" --long-minutes "$long_meeting_minutes"
    mv "$data/meetings.partial" "$data/meetings"
  fi
fi

train() {  # train CONFIG: conf/CONFIG.json -> $work/train/CONFIG (a killed run resumes)
  local config=$1 out=$work/train/$1 data=$work/train-data
  case $config in whisper*) data=$work/train-data-whisper ;; esac
  if [ -f "$out/model.safetensors" ]; then log "$out exists, skipping"; return; fi
  local resume=""
  [ -d "$out/checkpoints" ] && resume="--resume"
  log "training $config"
  "$spk" train --data "$data" --out "$out" --config "$here/conf/$config.json" $resume -q
}

average_ct() {  # the mean of step 1000 of ct_scratch and the +250/+500 checkpoints of both continuations
  local out=$work/train/ct_average
  if [ -f "$out/model.safetensors" ]; then log "$out exists, skipping"; return; fi
  "$python" "$here/local/average_checkpoints.py" "$out" "$work/train/ct_scratch" \
    "$work/train/ct_continue/checkpoints/step-0000250" "$work/train/ct_continue/checkpoints/step-0000500" \
    "$work/train/ct_continue_distil/checkpoints/step-0000250" "$work/train/ct_continue_distil"
}

if run_stage 7; then
  for config in $trainings; do
    case $config in ct_average) average_ct ;; *) train "$config" ;; esac
  done
fi

if run_stage 8; then
  for config in $trainings; do
    log "stage 8: $config on the real dev trials"
    for variant in clean reverb telephone; do
      trials=$data/eval-channels/$variant
      [ "$variant" = clean ] && trials=$data/eval
      "$spk" embed "$trials/audio" --out "$work/eval/$config/$variant/embeddings" --checkpoint "$work/train/$config" -q
      "$spk" evaluate verification --embeddings "$work/eval/$config/$variant/embeddings" --trials "$trials/trials.txt" \
        --out "$work/eval/$config/$variant/report"
    done
  done
fi
