"""recipes/debian-voices/run.sh stages 0-3 and 6 on tiny fake Debian packages built with `dpkg-deb --build`
(synthetic clips in the real packages' layouts, named as `apt-get download` names them): stage 0 finds every
.deb there and fetches nothing (an `apt-get` that fails is first on PATH), stage 1 unpacks, stage 2 builds
the corpus, stage 3 the trials, stage 6 the meetings, whose audio, RTTM, references and tables must agree."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import synth

from speakembed.pipelines.data.rttm import read_rttm

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

RECIPE = Path(__file__).parents[2] / "recipes" / "debian-voices"
RATE = 16000
CLIP_S = 2.2
VERSIONS = {"tuxpaint-stamps-default": "2022.06.04-1", "klettres-data": "4:22.12.3-1", "ktuberling-data": "4:22.12.3-1"}
DEV_SPEAKERS = {"tuxpaint_fr", "klettres_fr", "ktuberling_fr"}  # the three French persons; `da` is not a dev language
VARIANT_RATES = {"clean": 16000, "reverb": 16000, "telephone": 8000}


def _voice(f0_hz: float, seed: int) -> np.ndarray:
    return synth.voice(f0_hz, (500 + f0_hz, 1400 + 2 * f0_hz, 2500 + f0_hz), CLIP_S, RATE, seed=seed)


def _package_files() -> dict[str, dict[str, tuple[np.ndarray, str]]]:
    """package -> {path inside the package: (waveform, format)}, in the layouts build_corpus.py reads."""
    tuxpaint, klettres, ktuberling = {}, {}, {}
    for index in range(7):
        folder = "animals" if index < 4 else "vehicles"
        tuxpaint[f"usr/share/tuxpaint/stamps/{folder}/thing{index}_desc_fr.ogg"] = (_voice(110, index), "OGG")
        klettres[f"usr/share/klettres/fr/alpha/{'abcdefg'[index]}.ogg"] = (_voice(210, 10 + index), "OGG")
        ktuberling[f"usr/share/ktuberling/sounds/fr/word{index}.wav"] = (_voice(300, 20 + index), "WAV")
    for index in range(2):  # train speakers, and a TTS folder that stage 2 drops
        tuxpaint[f"usr/share/tuxpaint/stamps/animals/thing{index}_desc_da.ogg"] = (_voice(140, 30 + index), "OGG")
        klettres[f"usr/share/klettres/da/alpha/{'ab'[index]}.ogg"] = (_voice(180, 40 + index), "OGG")
        ktuberling[f"usr/share/ktuberling/sounds/nn/word{index}.wav"] = (_voice(250, 50 + index), "WAV")
    return {"tuxpaint-stamps-default": tuxpaint, "klettres-data": klettres, "ktuberling-data": ktuberling}


def _build_debs(staging: Path, debs: Path) -> dict[str, dict]:
    debs.mkdir(parents=True)
    packages = _package_files()
    for package, files in packages.items():
        root = staging / package
        for relative, (waveform, format) in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(root / relative), waveform, RATE, format=format)
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN" / "control").write_text(
            f"Package: {package}\nVersion: {VERSIONS[package]}\nArchitecture: all\n"
            f"Maintainer: Test <test@example.org>\nDescription: fake {package} for the recipe test\n")
        name = f"{package}_{VERSIONS[package].replace(':', '%3a')}_all.deb"  # as apt-get download names it
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(debs / name)],
                       check=True, capture_output=True)
    return packages


def _run(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path / "apt-get-called"}"\nexit 1\n')
    (fake_bin / "apt-get").chmod(0o755)
    environment = {**os.environ, "PYTHON": sys.executable, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}
    command = ["bash", str(RECIPE / "run.sh"), "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"),
               "--packages", " ".join(VERSIONS), *options]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _table(path: Path) -> list[dict]:
    with open(path) as table:
        return list(csv.DictReader(table, delimiter="\t"))


def test_stages_0_to_3_and_6_on_fake_debs(tmp_path):
    data = tmp_path / "data"
    packages = _build_debs(tmp_path / "staging", data / "debs")
    _run(tmp_path, "--stage", "0", "--stop-stage", "3", "--trial-nontargets", "20")
    assert not (tmp_path / "apt-get-called").exists()  # every .deb was there: nothing fetched
    for package, files in packages.items():
        assert all((data / "unpacked" / package / relative).is_file() for relative in files)

    labels = {row["speaker"]: row for row in _table(data / "corpus" / "labels.tsv")}
    assert {name for name, row in labels.items() if row["split"] == "dev"} == DEV_SPEAKERS
    assert "ktuberling_nn" not in labels
    assert {labels["tuxpaint_da"]["split"], labels["klettres_da"]["split"]} == {"train"}
    trials = [line.split() for line in (data / "eval" / "trials.txt").read_text().splitlines()]
    assert {label for *_, label in trials} == {"target", "nontarget"}
    for enroll, test, label in trials:
        assert (enroll.split("/")[0] == test.split("/")[0]) == (label == "target")

    _run(tmp_path, "--stage", "6", "--stop-stage", "6", "--meetings", "2", "--meeting-minutes", "0.25 0.35",
         "--long-meeting-minutes", "0.5")
    meetings = data / "meetings"
    rows = _table(meetings / "meetings.tsv")
    assert sorted({(row["meeting"], row["variant"]) for row in rows}) == sorted(
        (meeting, variant) for meeting in ("deb_m01", "deb_m02", "deb_long") for variant in VARIANT_RATES)
    clean_rttm = {}
    for row in rows:
        _check_meeting(meetings / row["variant"], row)
        text = (meetings / row["variant"] / f"{row['meeting']}.rttm").read_text()
        assert clean_rttm.setdefault(row["meeting"], text) == text  # one RTTM for every variant
    assert sum(float(row["overlap_fraction"]) for row in rows) > 0  # some turns overlap
    _check_sources(_table(meetings / "sources.tsv"), data / "corpus" / "dev", {row["meeting"] for row in rows})

    again = _run(tmp_path, "--stage", "6", "--stop-stage", "6")
    assert "meetings exist, skipping" in again.stdout


def _check_meeting(folder: Path, row: dict) -> None:
    """Audio, RTTM and references of one meeting variant against its meetings.tsv row."""
    audio, rate = soundfile.read(str(folder / f"{row['meeting']}.flac"))
    assert rate == VARIANT_RATES[row["variant"]] == int(row["sample_rate"])
    duration_s = len(audio) / rate
    assert duration_s == pytest.approx(float(row["duration_s"]), abs=0.01)
    speakers = row["speakers"].split(",")
    assert len(speakers) == int(row["n_speakers"]) == 3 and set(speakers) == DEV_SPEAKERS
    turns = read_rttm(folder / f"{row['meeting']}.rttm")
    assert set(turns["recording_id"]) == {row["meeting"]}  # the id `spk diarise` gives the file
    assert set(turns["speaker"]) == set(speakers)
    assert turns["start_s"].min() >= 0 and (turns["start_s"] + turns["duration_s"]).max() <= duration_s
    talking = np.zeros(len(audio) * 1000 // rate, np.int8)  # milliseconds
    for turn in turns.itertuples():
        talking[round(turn.start_s * 1000): round((turn.start_s + turn.duration_s) * 1000)] += 1
    assert np.count_nonzero(talking) / 1000 == pytest.approx(float(row["speech_s"]), abs=0.05)
    assert np.count_nonzero(talking > 1) / 1000 == pytest.approx(float(row["overlap_s"]), abs=0.05)
    assert 0 <= float(row["overlap_fraction"]) < 0.2
    refs = sorted((folder / row["meeting"] / "refs").glob("*.flac"))
    assert [ref.stem for ref in refs] == sorted(speakers)
    assert all(4.0 <= soundfile.info(str(ref)).duration <= 8.0 and soundfile.info(str(ref)).samplerate == 16000
               for ref in refs)  # the references are clean in every variant
    if row["variant"] == "clean":
        _check_labels_match_audio(audio, rate, talking)


def _check_labels_match_audio(audio: np.ndarray, rate: int, talking: np.ndarray) -> None:
    """The RTTM marks the sound: away from its edges, labelled speech is far louder than the pauses."""
    frames = audio[: len(talking) * rate // 1000].reshape(-1, rate // 1000)
    power_db = 10 * np.log10(np.mean(np.square(frames), axis=1) + 1e-12)
    inside = np.convolve(talking > 0, np.ones(101), mode="same") == 101  # 50 ms from any edge
    outside = np.convolve(talking > 0, np.ones(101), mode="same") == 0
    assert inside.any() and outside.any()
    assert np.mean(power_db[inside]) > np.mean(power_db[outside]) + 30


def _check_sources(sources: list[dict], dev: Path, meetings: set[str]) -> None:
    """Every clip is a dev clip of its own speaker, and no reference clip is also spoken in its meeting."""
    assert {row["meeting"] for row in sources} == meetings
    for row in sources:
        assert row["clip"].split("/")[0] == row["speaker"] and (dev / row["clip"]).is_file()
    for meeting in meetings:
        used = {row["use"]: set() for row in sources}
        for row in sources:
            if row["meeting"] == meeting:
                used[row["use"]].add(row["clip"])
        assert used["turn"] and used["reference"] and not used["turn"] & used["reference"]


def test_meetings_refuse_a_corpus_without_labels(tmp_path):
    result = subprocess.run([sys.executable, str(RECIPE / "local" / "make_meetings.py"), str(tmp_path / "none"),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "build the corpus first" in result.stderr
    assert "Traceback" not in result.stderr
