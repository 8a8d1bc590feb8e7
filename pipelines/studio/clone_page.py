"""Clone page: a reference voice (uploaded or recorded) and a text -> speech in that voice, through
`pipelines.clone.clone` (what `spk clone` runs), with its similarity to the reference measured by
an independent encoder (`pipelines.verify.verify_pair`), and the session's outputs listed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from speakembed.pipelines.base.errors import UsageError
from speakembed.pipelines.studio import resources
from speakembed.pipelines.studio.session import (AUDIO_TYPES, progress_bar, readable, save_upload, session_folder,
                                                 shown_errors)

TITLE, ICON, URL_PATH = "Clone a voice", ":material/record_voice_over:", "clone"
DEFAULT_TEXT = "Hello! This is my cloned voice, speaking a sentence I never recorded."
MAX_TEXT_CHARS = 2000
CHARACTERS_PER_SECOND = 10.0  # Kokoro at speed 1.0, pauses included: the 69-character default text is 6.7 s
LONG_TEXT_S = 60.0  # from here on the hint warns that synthesis takes a while on a CPU
ENCODER_ORDER = ("lstm", "conv-transformer", "whisper-head")  # the conditioning encoders offered, first = default
JUDGES = ("conv-transformer", "lstm", "whisper-head")  # the independent encoder: the first that neither conditions nor searches
MAX_REFINE = 80
HISTORY_KEY = "clone_history"
ETHICS_NOTE = (
    "**Only clone a voice with its owner's consent.** A cloned voice can deceive people who know the speaker: never "
    "use it to impersonate anyone, to defraud, or to put words in someone's mouth. Every file made here is tagged as "
    "synthetic speech in its metadata."
)


@dataclass(frozen=True)
class CloneOutput:
    """One clone of the session: the tagged WAV, what it says, the settings, the pipeline's result,
    the judge's verdict on it against the reference, and the wall time (s)."""

    path: Path
    text: str
    config: object  # pipelines.clone.CloneConfig
    result: object  # pipelines.clone.CloneResult
    judge: str
    judged: object | None  # pipelines.verify.PairResult of reference vs clone; None when the judge failed
    seconds: float


def render() -> None:
    """Draw the Clone page."""
    st.title(TITLE)
    st.info(ETHICS_NOTE)
    inputs, output = st.columns(2, gap="large")
    with inputs:
        references = _reference_inputs()
        text = st.text_area("Text to speak", DEFAULT_TEXT, max_chars=MAX_TEXT_CHARS, height=120, key="clone_text")
        config = _settings()
        st.caption(length_hint(text, config.speed, config.language))
        consent = st.checkbox("I have the consent of the person whose voice this is to clone it", key="clone_consent")
        clicked = st.button("Clone the voice", type="primary", disabled=not (consent and references),
                            key="clone_go")
    with output:
        if clicked:
            with shown_errors():
                _remember(make_clone(references, text, config))
        history = st.session_state.get(HISTORY_KEY, [])
        if history:
            show_output(history[-1], latest=True)
        else:
            st.caption("The clone appears here: upload or record a reference, type a text, confirm consent and clone.")
    if len(history) > 1:
        st.subheader("This session's clones")
        for number, item in reversed(list(enumerate(history[:-1], start=1))):
            with st.expander(f"{number}. {item.text[:80]}"):
                show_output(item, latest=False)


def _reference_inputs() -> list[Path]:
    """The reference recordings given (saved in the session folder): uploads or a microphone take."""
    source = st.radio("Reference voice", ["Upload recordings", "Record with the microphone"], horizontal=True,
                      key="clone_source")
    if source.startswith("Upload"):
        uploads = st.file_uploader("Recordings of the voice (5-30 s of clear speech in all)", type=AUDIO_TYPES,
                                   accept_multiple_files=True, key="clone_references")
        paths = [save_upload(upload) for upload in uploads or []]
    else:
        take = st.audio_input("Record 10 s or more of speech", key="clone_microphone")
        paths = [save_upload(take)] if take is not None else []
    for path in paths:
        st.audio(str(path))
    return paths


def _settings():
    """The CloneConfig of the encoder choice and the advanced settings."""
    from speakembed.pipelines.clone import DEFAULT_LANGUAGE, CloneConfig

    choices = [name for name in ENCODER_ORDER if name in resources.encoder_choices()]
    encoder = st.selectbox("Conditioning encoder", choices, key="clone_encoder", format_func=_encoder_label,
                           help="Embeds the reference; the clone adapter trained on its embeddings picks the voice.")
    with st.expander("Advanced settings"):
        speed = st.slider("Speed", 0.5, 2.0, 1.0, 0.05, key="clone_speed", help="Speaking rate: 1.0 natural, 1.2 faster.")
        refine = st.number_input("Refine: voices searched", 0, MAX_REFINE, 0, key="clone_refine",
                                 help="0: the adapter's voice. N: search N voices for the one most like the reference "
                                      "(40 takes ~3 min on 2 CPU cores).")
        seed = st.number_input("Seed of the refine search", 0, 2**31 - 1, 0, key="clone_seed")
        language = st.text_input("Language of the text (as espeak-ng names it: en-us, en-gb, fr-fr, es, de, ...)",
                                 DEFAULT_LANGUAGE, key="clone_language")
        match_pitch = st.checkbox("Match the reference's median pitch", key="clone_match_pitch",
                                  help="Off by default: it lowered the measured similarity (see README).")
        voices = st.file_uploader("Kokoro voices archive (voices-v1.0.bin), with an adapter trained on its voices",
                                  type=["bin", "npz"], key="clone_voices")
    return CloneConfig(encoder=encoder, speed=float(speed), seed=int(seed), refine=int(refine), match_pitch=match_pitch,
                       language=language.strip() or DEFAULT_LANGUAGE,
                       kokoro_voices=str(save_upload(voices)) if voices is not None else None)


def _encoder_label(name: str) -> str:
    return name if resources.has_clone_adapter(name) else f"{name} (no clone adapter shipped)"


def length_hint(text: str, speed: float, language: str) -> str:
    """How long `text` is: characters, sentences (as the pipeline splits them) and about how many seconds of speech."""
    from speakembed.pipelines.clone import split_sentences

    try:
        sentences = split_sentences(text, language)
    except UsageError as error:
        return readable(str(error))
    seconds = len(" ".join(text.split())) / CHARACTERS_PER_SECOND / speed
    hint = (f"{len(text)}/{MAX_TEXT_CHARS} characters, {len(sentences)} sentence{'s' if len(sentences) != 1 else ''} "
            f"(spoken one by one), about {seconds:.0f} s of speech.")
    if seconds > LONG_TEXT_S:
        hint += " Long texts take a while on a CPU: try a few sentences first."
    return hint


def judge_for(config) -> str:
    """The independent encoder that rates the clone: neither the conditioning encoder nor one that guided the search."""
    guides = {config.encoder, *(config.refine_with if config.refine else ())}
    return next(name for name in JUDGES if name not in guides)


def make_clone(references: list[Path], text: str, config) -> CloneOutput:
    """Clone `text` in the voice of `references` into the session folder, then rate it with the judge encoder."""
    from speakembed.pipelines.clone import clone
    from speakembed.pipelines.verify import VerifyConfig, verify_pair

    started = time.perf_counter()
    number = len(st.session_state.get(HISTORY_KEY, [])) + 1
    out = session_folder() / "clones" / f"clone-{number:03d}.wav"
    cloner = resources.cloner(config)
    with progress_bar("cloning") as progress:
        result = clone(references, text, out, config=config, cloner=cloner, progress=progress)
    judge, judged = judge_for(config), None
    with shown_errors():
        judged = verify_pair(references[0], out, config=VerifyConfig(encoder=judge), embedder=resources.encoder(judge))
    return CloneOutput(out, text, config, result, judge, judged, time.perf_counter() - started)


def _remember(output: CloneOutput) -> None:
    st.session_state.setdefault(HISTORY_KEY, []).append(output)


def show_output(item: CloneOutput, latest: bool) -> None:
    """The clone's player, download button, similarities and voice."""
    data = item.path.read_bytes()
    st.audio(data, format="audio/wav")
    st.download_button("Download the WAV (tagged as synthetic speech)", data, file_name=item.path.name,
                       mime="audio/wav", on_click="ignore", key=f"clone_download_{item.path.stem}_{latest}")
    result = item.result
    judge_column, own_column, speed_column = st.columns(3)
    if item.judged is not None:
        judge_column.metric("Similarity (judge)", f"{item.judged.score:.3f}",
                            help=f"{item.judge}, independent of the conditioning encoder, scores the reference against "
                                 "the clone as `spk verify` does.")
    own_column.metric("Similarity (own)", f"{result.similarity:.3f}",
                      help=f"Cosine by {item.config.encoder}, the encoder that chose the voice: it grades its own work, "
                           "so it flatters.")
    speed_column.metric("Real-time factor", f"{result.synthesis_s / max(result.duration_s, 1e-9):.2f}",
                        help="Synthesis time / audio duration.")
    if item.judged is not None and item.judged.probability is not None:
        st.caption(f"Judge {item.judge}: probability {item.judged.probability:.2f} that the clone is the reference speaker "
                   f"(verdict: {'same speaker' if item.judged.same_speaker else 'different speakers'}); own: "
                   f"{item.config.encoder}.")
    st.caption(f"{result.duration_s:.1f} s of speech, {len(result.sentences)} sentence(s), made in {item.seconds:.1f} s; "
               f"voice: {result.voice.describe(result.voice_names)}; seed {item.config.seed}, refine {item.config.refine}, "
               f"speed {item.config.speed:g}.")
