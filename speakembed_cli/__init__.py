"""SpeakEmbed: speaker embeddings, verification and diarisation (`spk`)."""

__version__ = "0.1.0"
