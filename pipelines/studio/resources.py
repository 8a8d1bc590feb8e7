"""The models of the studio, loaded once per server process (st.cache_resource) and shared by every
session: speaker encoders by name (or checkpoint folder), and voice cloners by the settings that
change what `Cloner.load` loads. The pipelines take them as their `embedder=` / `cloner=`."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from speakembed.models.registry import DEFAULT_ENCODER, PRETRAINED, encoder_names


def encoder(name: str = DEFAULT_ENCODER, checkpoint: str | None = None):
    """The loaded encoder `name` (or of a `spk train` checkpoint folder), as models.registry.load_encoder gives it."""
    return _encoder(name, checkpoint)


@st.cache_resource(show_spinner="Loading the speaker encoder…", max_entries=8)
def _encoder(name: str, checkpoint: str | None):
    from speakembed.models.registry import load_encoder

    return load_encoder(name, None, checkpoint)


def database_encoder(database):
    """The loaded encoder a speaker database (pipelines.data.speaker_db.SpeakerDatabase) was made with."""
    return encoder(database.encoder.name, database.encoder.checkpoint)


def cloner(config):
    """The loaded Cloner (pipelines/clone.py) for a CloneConfig. Speed, seed, search size and the
    other per-call settings do not change what is loaded: one Cloner serves them all (`clone`
    applies the call's config), so it is cached under the config with those at their defaults."""
    loading = replace(config, speed=1.0, seed=0, refine=min(config.refine, 1))
    return _cloner(repr(loading), loading)


@st.cache_resource(show_spinner="Loading the voice cloner (encoder, adapter, Kokoro-82M)…", max_entries=4)
def _cloner(key: str, _config):
    from speakembed.pipelines.clone import Cloner

    return Cloner.load(_config)


def encoder_choices() -> tuple[str, ...]:
    """The `--encoder` names available here (registry order)."""
    return encoder_names()


def has_clone_adapter(name: str) -> bool:
    """Whether a clone adapter for encoder `name` ships with the package (what `spk clone --encoder NAME` uses)."""
    return (PRETRAINED / f"clone-adapter-{name}").is_dir() or (PRETRAINED / f"clone-adapter-{name}-5voices").is_dir()
