"""The real `spk` commands through Typer's CliRunner: happy paths and every kind of bad input."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile

from speakembed import __version__
from speakembed.pipelines.data.manifests import read_table, write_table
from speakembed.pipelines.data.stores import read_store
from helpers import REPOSITORY, spk

EXAMPLES = REPOSITORY / "examples"


def test_version_and_help():
    assert spk("--version").stdout.strip() == f"spk {__version__}"
    result = spk("--help")
    assert result.exit_code == 0 and "embed" in result.stdout and "verify" in result.stdout


def test_help_keeps_the_brackets_of_install_hints():
    """Rich markup would eat `[clone]` / `[whisper]` in help texts unless escaped."""
    def flat(*args):  # help is wrapped to the terminal width: join the words again
        return " ".join(spk(*args, "--help").stdout.replace("│", " ").split())

    assert "speakembed[clone]" in flat("clone") and "speakembed[clone]" in flat("evaluate", "clone")
    assert "speakembed[whisper]" in flat("embed")


def test_errors_print_square_brackets_verbatim(tmp_path):
    """A path like `take[1].wav` (or `[/x]`, which rich would reject as a closing tag) is shown as is."""
    for name in ("take[1].wav", "[/x].wav"):
        result = spk("verify", tmp_path / name, tmp_path / name)
        assert result.exit_code != 0 and name in result.output and "Traceback" not in result.output


def test_embed_folder_writes_store_with_relative_ids(audio_dir, tmp_path):
    result = spk("embed", audio_dir, "--out", tmp_path / "emb", "--vad", "energy")
    assert result.exit_code == 0, result.output
    store = read_store(tmp_path / "emb")
    expected = sorted(p.relative_to(audio_dir).as_posix() for p in audio_dir.rglob("*") if p.is_file())
    assert sorted(store.item_ids) == expected
    assert store.valid.all(), read_table(tmp_path / "emb" / "failures.parquet", "failures")
    np.testing.assert_allclose(np.linalg.norm(store.embeddings, axis=1), 1.0, atol=1e-5)
    assert store.encoder.startswith("lstm@") and store.attrs["config"]["vad"] == "energy"
    assert json.loads((tmp_path / "emb" / "report.json").read_text())["num_embedded"] == len(expected)


def test_embed_again_is_a_no_op(audio_dir, tmp_path):
    spk("embed", audio_dir, "--out", tmp_path / "emb", "--vad", "energy")
    before = (tmp_path / "emb" / "embeddings.zarr" / "zarr.json").stat().st_mtime_ns
    result = spk("embed", audio_dir, "--out", tmp_path / "emb", "--vad", "energy")
    assert result.exit_code == 0 and "up to date" in result.stdout
    assert (tmp_path / "emb" / "embeddings.zarr" / "zarr.json").stat().st_mtime_ns == before


def test_bad_items_are_recorded_and_do_not_stop_the_batch(bad_audio, make_wav, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = make_wav("mixed/good.wav", speaker="A", duration_s=2.5)
    for name in ("empty", "silent", "too_short", "corrupt", "clipped"):
        shutil.copy(bad_audio[name], folder / bad_audio[name].name)
    result = spk("embed", folder, "--out", tmp_path / "emb", "--vad", "energy")
    assert result.exit_code == 0, result.output
    assert "4 items not embedded" in result.stdout
    failures = read_table(tmp_path / "emb" / "failures.parquet", "failures").set_index("item_id")["reason"].to_dict()
    assert failures == {"empty.wav": "empty", "silent.wav": "silent", "too_short.wav": "too_short", "corrupt.wav": "unreadable"}
    valid = read_store(tmp_path / "emb").lookup()
    assert set(valid) == {good.name, "clipped.wav"}


def test_embed_segments_manifest_uses_segment_ids(make_wav, tmp_path):
    recording = make_wav("corpus/rec1.wav", speaker="A", duration_s=6.0)
    recordings = pd.DataFrame({"recording_id": ["rec1"], "path": ["rec1.wav"], "sample_rate": [16000],
                               "num_samples": [96000], "num_channels": [1], "duration_s": [6.0]})
    segments = pd.DataFrame({"segment_id": ["rec1-a", "rec1-b"], "recording_id": ["rec1", "rec1"],
                             "start_s": [0.0, 3.0], "duration_s": [3.0, 3.0], "speaker": ["A", "A"],
                             "split": ["test", "test"], "text": ["", ""], "language": ["en", "en"]})
    write_table(recordings, recording.parent / "recordings.parquet", "recordings")
    write_table(segments, recording.parent / "segments.parquet", "segments")
    result = spk("embed", recording.parent / "segments.parquet", "--out", tmp_path / "emb", "--vad", "energy")
    assert result.exit_code == 0, result.output
    assert read_store(tmp_path / "emb").item_ids == ["rec1-a", "rec1-b"]


@pytest.mark.parametrize(
    "make_args, code, message",
    [
        (lambda bad, tmp: ["embed", tmp / "absent.wav", "--out", tmp / "o"], 3, "no such file"),
        (lambda bad, tmp: ["embed", tmp / "empty_dir", "--out", tmp / "o"], 3, "no audio files"),
        (lambda bad, tmp: ["embed", bad["silent"], "--out", tmp / "o", "--vad", "energy"], 5, "not embedded"),
        (lambda bad, tmp: ["embed", tmp / "wrong.parquet", "--out", tmp / "o"], 6, "expected a 'segments' manifest"),
        (lambda bad, tmp: ["embed", bad["clipped"], "--out", bad["clipped"] / "o"], 8, "cannot create the output folder"),
        (lambda bad, tmp: ["verify", tmp / "absent.wav", bad["clipped"]], 3, "no such file"),
        (lambda bad, tmp: ["verify", bad["corrupt"], bad["clipped"]], 4, "cannot decode"),
        (lambda bad, tmp: ["verify", bad["not_audio"], bad["clipped"]], 4, "unsupported format"),
        (lambda bad, tmp: ["verify", bad["empty"], bad["clipped"]], 5, "no audio samples"),
        (lambda bad, tmp: ["verify", bad["silent"], bad["clipped"]], 5, "silent"),
        (lambda bad, tmp: ["verify", bad["too_short"], bad["clipped"], "--vad", "energy"], 5, "shorter than"),
        (lambda bad, tmp: ["verify", bad["clipped"]], 2, "exactly two recordings"),
        (lambda bad, tmp: ["verify", bad["clipped"], bad["clipped"], "--vad", "webrtc"], 2, "is not one of"),
        (lambda bad, tmp: ["verify", bad["clipped"], bad["clipped"], "--encoder", "xvector"], 2, "unknown encoder 'xvector'"),
        (lambda bad, tmp: ["embed", bad["clipped"], "--out", tmp / "o", "--checkpoint", tmp], 3, "not a checkpoint folder"),
        (lambda bad, tmp: ["verify", "--trials", tmp / "absent.txt", "--embeddings", tmp, "--out", tmp / "s.parquet"], 3, "no such trial list"),
    ],
    ids=["missing-file", "folder-without-audio", "only-silence", "wrong-manifest", "out-under-a-file",
         "verify-missing", "verify-corrupt", "verify-text-file", "verify-empty", "verify-silent",
         "verify-too-short", "verify-one-file", "unknown-vad", "unknown-encoder", "not-a-checkpoint", "missing-trials"],
)
def test_bad_input_gets_one_line_error_and_exit_code(bad_audio, tmp_path, make_args, code, message):
    (tmp_path / "empty_dir").mkdir()
    write_table(pd.DataFrame({"item_id": ["x"], "stage": ["s"], "reason": ["r"], "detail": ["d"]}),
                tmp_path / "wrong.parquet", "failures")
    result = spk(*make_args(bad_audio, tmp_path))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_failed_run_leaves_previous_store_intact(audio_dir, tmp_path):
    spk("embed", audio_dir, "--out", tmp_path / "emb", "--vad", "energy")
    before = read_store(tmp_path / "emb").item_ids
    result = spk("embed", tmp_path / "absent", "--out", tmp_path / "emb")
    assert result.exit_code == 3
    assert read_store(tmp_path / "emb").item_ids == before


@pytest.mark.skipif(not (EXAMPLES / "audio" / "slt_1.flac").exists(), reason="examples/audio missing")
def test_verify_pair_on_example_voices_with_default_silero_vad():
    same = spk("verify", EXAMPLES / "audio" / "slt_1.flac", EXAMPLES / "audio" / "slt_2.flac", "--json")
    different = spk("verify", EXAMPLES / "audio" / "slt_1.flac", EXAMPLES / "audio" / "awb_1.flac", "--json")
    assert same.exit_code == 0 and different.exit_code == 0, same.output + different.output
    same, different = json.loads(same.stdout), json.loads(different.stdout)
    assert set(same) == {"probability", "llr", "score", "cosine", "prior", "threshold", "same_speaker", "encoder",
                         "scoring", "vad_fallback", "notes"}
    assert same["same_speaker"] is True and different["same_speaker"] is False
    assert same["score"] > different["score"] and same["cosine"] > different["cosine"]
    assert same["scoring"]["backend"] is not None and same["probability"] > 0.5 > different["probability"]
    assert same["llr"] > 0 > different["llr"]
    override = json.loads(spk("verify", EXAMPLES / "audio" / "slt_1.flac", EXAMPLES / "audio" / "slt_2.flac",
                              "--json", "--threshold", "0.9999").stdout)
    assert override["threshold"] == 0.9999 and override["same_speaker"] is False


@pytest.mark.skipif(not (EXAMPLES / "trials.txt").exists(), reason="examples missing")
def test_trial_list_scored_against_store(tmp_path):
    assert spk("embed", EXAMPLES / "audio", "--out", tmp_path / "emb").exit_code == 0
    result = spk("verify", "--trials", EXAMPLES / "trials.txt", "--embeddings", tmp_path / "emb",
                 "--out", tmp_path / "scores.parquet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scored"] == summary["trials"] == 9 and summary["eer"] == 0.0
    scores = read_table(tmp_path / "scores.parquet", "scores")
    assert set(scores.columns) >= {"enroll", "test", "score", "encoder", "label"}
    targets = scores[scores["label"] == 1]["score"]
    assert targets.min() > scores[scores["label"] == 0]["score"].max()


@pytest.mark.skipif(not (EXAMPLES / "trials.txt").exists(), reason="examples missing")
@pytest.mark.parametrize("encoder", ["conv-transformer", "whisper-head"])
def test_shipped_encoder_separates_the_example_voices(encoder, tmp_path):
    """Each encoder trained and shipped by the project loads from its package data, embeds, and ranks
    every same-voice trial of the bundled examples above every different-voice one."""
    from speakembed.models.registry import ENCODERS

    if encoder not in ENCODERS:
        pytest.skip(f"{encoder} is not shipped in models/pretrained/")
    if encoder.startswith("whisper"):
        pytest.importorskip("transformers")
    assert spk("embed", EXAMPLES / "audio", "--out", tmp_path / "emb", "--encoder", encoder, "-q").exit_code == 0
    result = spk("verify", "--trials", EXAMPLES / "trials.txt", "--embeddings", tmp_path / "emb",
                 "--out", tmp_path / "scores.parquet", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["eer"] == 0.0
    store = read_store(tmp_path / "emb")
    assert store.encoder.startswith(f"{encoder}@")
    np.testing.assert_allclose(np.linalg.norm(store.embeddings, axis=1), 1.0, rtol=1e-5)


def test_trials_with_unknown_ids_are_refused(audio_dir, tmp_path):
    spk("embed", audio_dir, "--out", tmp_path / "emb", "--vad", "energy")
    (tmp_path / "trials.txt").write_text("nobody.wav other.wav target\n")
    result = spk("verify", "--trials", tmp_path / "trials.txt", "--embeddings", tmp_path / "emb", "--out", tmp_path / "s.parquet")
    assert result.exit_code == 6 and "none of the trials' ids" in result.output
    assert not (tmp_path / "s.parquet").exists()


def test_sharded_embedding_combines_into_one_store(audio_dir, tmp_path):
    whole = spk("embed", audio_dir, "--out", tmp_path / "whole", "--vad", "energy", "-q")
    assert whole.exit_code == 0, whole.output
    for part in (1, 2):
        result = spk("embed", audio_dir, "--out", tmp_path / "parts", "--vad", "energy", "--shard", f"{part}/3", "-q")
        assert result.exit_code == 0, result.output
    with pytest.raises(Exception, match=r"parts \[3\] of 3 are missing"):
        read_store(tmp_path / "parts")
    assert spk("embed", audio_dir, "--out", tmp_path / "parts", "--vad", "energy", "--shard", "3/3", "-q").exit_code == 0
    combined, reference = read_store(tmp_path / "parts"), read_store(tmp_path / "whole")
    assert sorted(combined.item_ids) == sorted(reference.item_ids)
    rows = combined.lookup()
    for item_id, row in reference.lookup().items():
        np.testing.assert_allclose(combined.embeddings[rows[item_id]], reference.embeddings[row], atol=1e-5)
    assert spk("embed", audio_dir, "--out", tmp_path / "x", "--shard", "4/3").exit_code == 2


def test_verify_notes_a_recording_embedded_without_vad(make_wav, tmp_path):
    """A steady tone (a dubbed cartoon voice, say) holds sound but no speech to Silero: verify still
    scores it, and says that its energy-trimmed audio was used."""
    voice = make_wav("voice.wav", speaker="A", duration_s=2.5)
    time_s = np.arange(int(1.5 * 16000)) / 16000
    tone = 0.01 * sum(np.sin(2 * np.pi * k * 220 * time_s) / k for k in range(1, 6))
    soundfile.write(str(tmp_path / "cartoon.wav"), tone.astype(np.float32), 16000, subtype="PCM_16")
    result = spk("verify", voice, tmp_path / "cartoon.wav", "--vad", "silero")
    assert result.exit_code == 0, result.output
    assert "note: the VAD kept too little speech in" in result.stdout and "cartoon.wav" in result.stdout
    as_json = spk("verify", voice, tmp_path / "cartoon.wav", "--vad", "silero", "--json")
    assert json.loads(as_json.stdout)["vad_fallback"] == [False, True]
