"""`spk embed` killed part way resumes from its last complete chunk and ends with the store a clean
run writes; clips the VAD rejects are embedded and flagged; --shard and --out mistakes fail early."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

import synth
from helpers import spk
from speakembed.pipelines import embed as pipeline
from speakembed.pipelines.data.stores import ChunkedStoreWriter, read_store

RATE = 16000
SPK = Path(sys.executable).with_name("spk")


@pytest.fixture(scope="module")
def twelve_clips(tmp_path_factory) -> Path:
    """12 tiny clips of 3 speakers (1 s each)."""
    folder = tmp_path_factory.mktemp("twelve")
    for index in range(12):
        voice = synth.speaker_voice("ABC"[index % 3], 1.0, RATE, seed=index)
        soundfile.write(str(folder / f"clip{index:02d}.wav"), voice, RATE, subtype="PCM_16")
    return folder


def assert_same_store(folder: Path, reference: Path) -> None:
    store, clean = read_store(folder), read_store(reference)
    assert store.item_ids == clean.item_ids
    np.testing.assert_array_equal(store.valid, clean.valid)
    np.testing.assert_array_equal(store.vad_fallback, clean.vad_fallback)
    np.testing.assert_allclose(store.embeddings, clean.embeddings, atol=1e-5)
    assert store.attrs["num_embedded"] == clean.attrs["num_embedded"]


def test_interrupted_run_resumes_from_its_last_complete_chunk(twelve_clips, tmp_path, monkeypatch):
    assert spk("embed", twelve_clips, "--out", tmp_path / "clean", "--vad", "energy", "-q").exit_code == 0
    original = ChunkedStoreWriter.write_chunk
    written = []

    def interrupt_after_two_chunks(self, first, *args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt  # as Ctrl-C while the third chunk was being embedded
        original(self, first, *args, **kwargs)
        written.append(first)

    monkeypatch.setattr(ChunkedStoreWriter, "write_chunk", interrupt_after_two_chunks)
    args = ("embed", twelve_clips, "--out", tmp_path / "emb", "--vad", "energy", "--chunk-size", "4", "--files-per-batch", "2")
    killed = spk(*args)
    assert killed.exit_code == 130 and "run the same command again to resume" in killed.output
    assert written == [0, 4] and not (tmp_path / "emb" / "embeddings.zarr").exists()
    monkeypatch.setattr(ChunkedStoreWriter, "write_chunk", original)

    resumed = spk(*args)
    assert resumed.exit_code == 0, resumed.output
    assert "12/12" in resumed.stdout and "8 reused from the interrupted run" in resumed.stdout
    assert_same_store(tmp_path / "emb", tmp_path / "clean")
    assert not (tmp_path / "emb" / ".embeddings.zarr.partial").exists()
    again = spk(*args)
    assert again.exit_code == 0 and "up to date" in again.stdout


def test_partial_store_of_other_settings_is_not_reused(twelve_clips, tmp_path):
    def kill(step, *, completed, total):
        if completed >= 6:
            raise KeyboardInterrupt

    config = pipeline.EmbedConfig(vad="energy", chunk_size=4, files_per_batch=2)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run([twelve_clips], tmp_path / "emb", config=config, progress=kill)
    other = pipeline.run([twelve_clips], tmp_path / "emb", config=pipeline.EmbedConfig(vad="none", chunk_size=4))
    assert other.num_reused == 0 and other.num_embedded == 12
    assert read_store(tmp_path / "emb").attrs["config"]["vad"] == "none"
    with pytest.raises(KeyboardInterrupt):  # an interrupted re-embedding keeps the finished store
        pipeline.run([twelve_clips], tmp_path / "emb", config=config, progress=kill)
    assert read_store(tmp_path / "emb").attrs["config"]["vad"] == "none"
    resumed = pipeline.run([twelve_clips], tmp_path / "emb", config=config)
    assert resumed.num_reused == 4 and resumed.num_embedded == 12


def test_sigkilled_process_resumes(twelve_clips, tmp_path):
    """A real process killed with SIGKILL once its partial store holds a chunk. Longer clips after
    the first chunk (2 s: some 0.1-0.4 s of work each) keep it busy long enough to be killed
    before it finishes; the poll notices the chunk within 10 ms."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for clip in sorted(twelve_clips.iterdir())[:2]:
        (folder / clip.name).write_bytes(clip.read_bytes())
    for index in range(2, 12):
        voice = synth.speaker_voice("ABC"[index % 3], 2.0, RATE, seed=index)
        soundfile.write(str(folder / f"clip{index:02d}.wav"), voice, RATE, subtype="PCM_16")
    command = [str(SPK), "embed", str(folder), "--out", str(tmp_path / "emb"), "--vad", "energy",
               "--chunk-size", "2", "--files-per-batch", "1", "-q"]
    records = tmp_path / "emb" / ".embeddings.zarr.partial" / ".resume"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (records.is_dir() and any(records.glob("*.json"))):
            assert process.poll() is None and time.monotonic() < deadline, "spk embed ended before a chunk was written"
            time.sleep(0.01)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "emb" / "embeddings.zarr").exists()
    resumed = subprocess.run(command[:-1], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "reused from the interrupted run" in resumed.stdout and "12/12" in resumed.stdout
    assert spk("embed", folder, "--out", tmp_path / "clean", "--vad", "energy", "-q").exit_code == 0
    assert_same_store(tmp_path / "emb", tmp_path / "clean")


def test_clip_the_vad_rejects_is_embedded_and_counted(make_wav, tmp_path):
    folder = tmp_path / "mixed"
    make_wav("mixed/voice.wav", speaker="A", duration_s=2.5)
    time_s = np.arange(int(1.5 * RATE)) / RATE
    tone = 0.01 * sum(np.sin(2 * np.pi * k * 220 * time_s) / k for k in range(1, 6))  # steady: no speech to Silero
    soundfile.write(str(folder / "cartoon.wav"), tone.astype(np.float32), RATE, subtype="PCM_16")
    soundfile.write(str(folder / "silent.wav"), np.zeros(RATE, np.float32), RATE, subtype="PCM_16")
    result = spk("embed", folder, "--out", tmp_path / "emb", "--vad", "silero")
    assert result.exit_code == 0, result.output
    assert "embedded 2/3" in result.stdout and "1 embedded without VAD" in result.stdout
    assert "1 items not embedded (1 silent)" in result.stdout
    store = read_store(tmp_path / "emb")
    flags = dict(zip(store.item_ids, store.vad_fallback.tolist()))
    assert flags == {"cartoon.wav": True, "silent.wav": False, "voice.wav": False}
    assert set(store.lookup()) == {"cartoon.wav", "voice.wav"} and store.attrs["num_vad_fallback"] == 1


@pytest.mark.parametrize("shard", ["3/2", "x", "0/3", "2/", "1/2/3"])
def test_bad_shard_is_a_usage_error(bad_audio, tmp_path, shard):
    result = spk("embed", bad_audio["clipped"], "--out", tmp_path / "o", "--shard", shard)
    assert result.exit_code == 2, result.output
    assert "--shard" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()  # refused before anything was created


def test_out_under_a_file_fails_before_any_work(bad_audio, tmp_path, monkeypatch):
    from speakembed.models import registry

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder was loaded before --out was checked")

    monkeypatch.setattr(registry, "load_encoder", no_encoder)
    result = spk("embed", bad_audio["clipped"], "--out", bad_audio["clipped"] / "o")
    assert result.exit_code == 8 and "cannot create the output folder" in result.output
