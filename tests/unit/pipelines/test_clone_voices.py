"""The voice space of `spk clone`: voices over N stock voices with the two halves of the style
mixed apart, voice specs (--voice), the seeded bank and the search's steps, the adapter's voice in
a larger space, and the scripts each language accepts. No synthesis: Kokoro is faked."""

from types import SimpleNamespace

import numpy as np
import pytest

from speakembed.pipelines.base.errors import UsageError
from speakembed.pipelines.clone import (
    CloneConfig, Cloner, Reference, Voice, _perturb, language_scripts, split_sentences, voice_bank, voice_weights,
)

SPACE = ["af_heart", "am_adam", "bm_george", "ff_siwis", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
JAPANESE = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def cloner(config: CloneConfig = CloneConfig(), adapter_voices=JAPANESE) -> Cloner:
    """A Cloner over the SPACE voices whose adapter knows `adapter_voices`; logits favour the first."""
    import torch

    class Adapter:
        voices = list(adapter_voices)

        def heads(self, embeddings):  # no prosody head: mixes both halves alike, as the five-voice adapter does
            return torch.arange(len(self.voices), 0, -1, dtype=torch.float32)[None], torch.tensor([0.1]), None

    return Cloner(embedder=None, kokoro=SimpleNamespace(voices=dict.fromkeys(SPACE)), adapter=Adapter(), config=config)


def test_voice_specs_name_a_voice_or_a_mixture():
    assert voice_weights("bm_george", SPACE).tolist() == np.eye(len(SPACE))[2].tolist()
    mixed = voice_weights(" af_heart:3, bm_george:1 ", SPACE)
    assert mixed[0] == pytest.approx(0.75) and mixed[2] == pytest.approx(0.25) and mixed.sum() == pytest.approx(1.0)
    triple = voice_weights("af_heart,bm_george,jf_alpha:2", SPACE)  # a weight left out counts 1
    assert triple[[0, 2, 4]] == pytest.approx([0.25, 0.25, 0.5])


@pytest.mark.parametrize("spec, message", [
    ("af_hart", "no stock voice 'af_hart' \\(did you mean af_heart"), ("zz_nobody", "--list-voices lists the 9 voices"),
    ("af_heart:x", "non-negative weight"), ("af_heart:-1,bm_george", "non-negative weight"), ("af_heart:nan", "non-negative"),
    ("af_heart,af_heart", "named once"), ("af_heart:0", "give a stock voice"), (" , ", "give a stock voice"),
])
def test_bad_voice_specs_are_one_line_usage_errors(spec, message):
    with pytest.raises(UsageError, match=message) as error:
        voice_weights(spec, SPACE, "--prosody-voice")
    assert "\n" not in str(error.value) and str(error.value).startswith("--prosody-voice")


def test_the_halves_key_and_describe_apart():
    pair = voice_weights("af_heart:0.5,bm_george:0.5", SPACE)
    same = Voice(pair)
    assert Voice(pair, prosody_weights=pair.copy()).key() == same.key() and not same.split_halves
    apart = Voice(pair, 1.05, 0.9, prosody_weights=np.eye(len(SPACE))[4])
    assert apart.split_halves and apart.key() != same.key() and np.array_equal(apart.prosody, np.eye(len(SPACE))[4])
    assert apart.describe(SPACE) == "af_heart 0.50, bm_george 0.50; prosody jf_alpha 1.00; factor 1.050; pitch 0.900"
    assert same.describe(SPACE) == "af_heart 0.50, bm_george 0.50; factor 1.000; pitch 1.000"
    assert Voice(pair, 1.0, 1.0).key() == (*np.round(pair, 6).tolist(), 1.0, 1.0)  # unchanged for unsplit voices


def test_the_bank_mixes_pairs_and_triples_and_the_prosody_half_apart():
    bank = voice_bank(54, 12)
    assert [voice.key() for voice in bank[:5]] == [voice.key() for voice in voice_bank(54, 5)]
    assert [int((voice.weights > 0).sum()) for voice in bank] == [2, 3] * 6
    assert [voice.split_halves for voice in bank] == [index % 3 == 2 for index in range(12)]
    for voice in bank:
        assert voice.weights.sum() == pytest.approx(1.0) and voice.prosody.sum() == pytest.approx(1.0)
    assert voice_bank(1, 2)[0].weights.tolist() == [1.0]  # a one-voice space still works


def test_perturbed_voices_stay_sparse_normalised_and_in_range():
    rng = np.random.default_rng(0)
    voice = Voice(voice_weights("af_heart:0.7,bm_george:0.3", SPACE * 6))  # a 54-voice space
    splits = 0
    for _ in range(200):
        step = _perturb(voice, rng)
        assert step.weights.sum() == pytest.approx(1.0) and step.prosody.sum() == pytest.approx(1.0)
        assert (step.weights > 0).sum() <= 3 and (step.prosody > 0).sum() <= 3  # the pair, and at most one voice brought in
        assert 0.82 <= step.factor <= 1.22 and 0.5 <= step.pitch <= 2.0
        splits += step.split_halves
    assert 60 < splits < 140  # a voice with shared weights splits its halves about half the time
    assert _perturb(Voice(np.eye(len(SPACE))[0], prosody_weights=np.eye(len(SPACE))[1]), rng).split_halves


def test_the_adapters_voice_is_placed_in_the_larger_space():
    voice = cloner().predict_voice(np.zeros(256, np.float32))
    assert voice.weights.shape == (len(SPACE),) and voice.weights.sum() == pytest.approx(1.0)
    assert voice.weights[:4].tolist() == [0.0] * 4 and np.argmax(voice.weights) == SPACE.index("jf_alpha")
    assert voice.factor == pytest.approx(np.exp(0.1))
    leading = cloner().leading_stock_voices(voice)
    assert [SPACE[int(np.argmax(stock.weights))] for stock in leading] == JAPANESE  # heaviest first


def test_a_requested_voice_replaces_the_adapters_and_needs_no_reference():
    config = CloneConfig(voice="af_heart:0.6,am_adam:0.4", prosody_voice="bm_george")
    voice = cloner(config).choose_voice(None)
    assert voice.describe(SPACE) == "af_heart 0.60, am_adam 0.40; prosody bm_george 1.00; factor 1.000; pitch 1.000"
    only_prosody = cloner(CloneConfig(prosody_voice="ff_siwis")).choose_voice(Reference(np.zeros(256, np.float32), None))
    assert np.argmax(only_prosody.weights) == SPACE.index("jf_alpha") and only_prosody.prosody[SPACE.index("ff_siwis")] == 1.0
    with pytest.raises(UsageError, match="reference recording, or a stock voice with --voice"):
        cloner().choose_voice(None)
    with pytest.raises(UsageError, match="no stock voice 'nobody'"):
        cloner(CloneConfig(voice="nobody")).requested_weights()


@pytest.mark.parametrize("language, text", [
    ("en-us", "Café au lait, naïve résumé."), ("fr-fr", "Le café est prêt."), ("ru", "Привет, как дела? Hello."),
    ("el", "Καλημέρα κόσμε."), ("ja", "こんにちは。カタカナも。"), ("cmn", "你好，我是老师。"), ("hi", "नमस्ते, आप कैसे हैं?"),
    ("ar", "مرحبا بالعالم"), ("ko", "안녕하세요."),
])
def test_each_language_accepts_its_own_script(language, text):
    assert split_sentences(text, language)


@pytest.mark.parametrize("language, text, shown", [
    ("en-us", "Привет", "Привет"), ("en-us", "こんにちは world", "こにはんち"), ("fr-fr", "你好", "你好"),
    ("ja", "東京へ行きます", "東行"),  # espeak-ng's Japanese reads kana, not kanji
    ("ru", "Καλημέρα", "Κ"),
])
def test_letters_espeak_cannot_read_in_the_language_are_refused(language, text, shown):
    with pytest.raises(UsageError, match=f"unsupported script .*--language {language} reads") as error:
        split_sentences(text, language)
    assert all(char in str(error.value) for char in shown) and "\n" not in str(error.value)


def test_sentences_split_after_the_punctuation_of_each_script():
    assert split_sentences("こんにちは。げんきですか？はい！", "ja") == ["こんにちは。", "げんきですか？", "はい！"]
    assert split_sentences("One. Two? Three!") == ["One.", "Two?", "Three!"]
    assert language_scripts("EN-GB") == ("LATIN",) and language_scripts("fa-latn") == ("LATIN",)
    assert language_scripts("ru-lv") == ("CYRILLIC", "LATIN")
