"""SpeakEmbed: speaker embeddings, verification and diarisation (`spk`).

The Python API (speakembed_cli/api.py): `from speakembed import Encoder, SpeakerDB`. Both are
imported on first use, so `import speakembed` (and `spk --help`) stays instant, without torch.
"""

__version__ = "0.1.0"
__all__ = ["Encoder", "SpeakerDB", "__version__"]


def __getattr__(name: str):
    """`speakembed.Encoder` and `speakembed.SpeakerDB`, imported from speakembed.api when first asked for."""
    if name in ("Encoder", "SpeakerDB"):
        from speakembed import api

        return getattr(api, name)
    raise AttributeError(f"module 'speakembed' has no attribute {name!r}")
