"""Verify page: two clips -> same speaker or not, in large type, with the score, the threshold and
the calibrated probability, through `pipelines.verify.verify_pair` (what `spk verify A B` runs)."""

from __future__ import annotations

import html

import streamlit as st

from speakembed.models.registry import DEFAULT_ENCODER
from speakembed.pipelines.studio import resources
from speakembed.pipelines.studio.session import AUDIO_TYPES, save_upload, shown_errors

TITLE, ICON, URL_PATH = "Verify", ":material/how_to_reg:", "verify"
RESULT_KEY = "verify_result"
VERDICT_STYLE = """<style>
.spk-verdict {font-size: 3rem; font-weight: 700; line-height: 1.2; padding: 0.6rem 1rem; border-radius: 0.5rem;
  text-align: center; margin: 0.5rem 0 1rem;}
.spk-verdict.same {background: #e3f4e8; color: #1b6b34;}
.spk-verdict.different {background: #fde7e7; color: #9b1c1c;}
</style>"""


def render() -> None:
    """Draw the Verify page."""
    st.title("Verify: same speaker or not?")
    first, second = st.columns(2)
    paths = []
    for column, label, key in ((first, "First clip", "verify_first"), (second, "Second clip", "verify_second")):
        with column:
            upload = st.file_uploader(label, type=AUDIO_TYPES, key=key)
            if upload is not None:
                paths.append(save_upload(upload))
                st.audio(str(paths[-1]))
    names = resources.encoder_choices()
    encoder = st.selectbox("Encoder", names, index=names.index(DEFAULT_ENCODER), key="verify_encoder")
    prior = st.slider("Prior probability of same speaker", 0.01, 0.99, 0.5, 0.01, key="verify_prior",
                      help="What you believed before listening; the verdict is 'same' when the probability after "
                           "the evidence reaches 0.5.")
    if st.button("Verify", type="primary", disabled=len(paths) < 2, key="verify_go"):
        st.session_state.pop(RESULT_KEY, None)
        with shown_errors():
            st.session_state[RESULT_KEY] = compare(paths[0], paths[1], encoder, prior)
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        show_verdict(result)


def compare(first, second, encoder: str, prior: float):
    """verify_pair of two recordings with a cached encoder: a pipelines.verify.PairResult."""
    from speakembed.pipelines.verify import VerifyConfig, verify_pair

    return verify_pair(first, second, config=VerifyConfig(encoder=encoder, prior=prior),
                       embedder=resources.encoder(encoder))


def verdict_text(result) -> str:
    """'Same speaker' or 'Different speakers'."""
    return "Same speaker" if result.same_speaker else "Different speakers"


def show_verdict(result) -> None:
    """The verdict in large type, then the numbers behind it and how the threshold decides."""
    kind = "same" if result.same_speaker else "different"
    st.html(f'{VERDICT_STYLE}<div class="spk-verdict {kind}" data-testid="spk-verdict">{html.escape(verdict_text(result))}</div>')
    probability, score, threshold = st.columns(3)
    probability.metric("Probability of same speaker", "n/a" if result.probability is None else f"{result.probability:.3f}")
    score.metric("Score", f"{result.score:.4f}")
    threshold.metric("Threshold", "n/a" if result.threshold is None else f"{result.threshold:.4f}")
    scoring = result.scoring.get("key", "none")
    how = "cosine of the embeddings" if scoring == "none" else f"cosine after the encoder's back-end, {scoring}"
    if result.probability is not None:
        rule = (f"The score ({how}) is calibrated into a log-likelihood ratio (LLR {result.llr:+.2f}); at prior "
                f"{result.prior:g} the verdict is 'same' when the probability reaches 0.5, that is when the score "
                f"reaches the threshold {result.threshold:.4f}.")
    else:
        rule = f"Uncalibrated: the verdict is 'same' when the score ({how}) reaches the threshold {result.threshold:.4f}."
    st.caption(f"{rule} Raw cosine {result.cosine:.4f}; encoder {result.encoder}.")
    for note in result.notes:
        st.caption(f"note: {note}")
    if any(result.vad_fallback):
        st.warning("The voice-activity detector kept too little speech in a clip; its energy-trimmed audio was used.")
