"""Every back-end and calibration shipped in models/pretrained/<encoder>/ belongs to the weights that
ship today: a retrained encoder whose back-end was not refitted (recipes/debian-voices/backend.sh
--stage 1 --encoders NAME) fails here instead of silently scoring with raw cosine."""

import pytest

from speakembed.models import registry
from speakembed.pipelines.scoring.backend import Backend
from speakembed.pipelines.scoring.calibration import Calibration

SHIPPED = sorted(path.parent.name for path in registry.PRETRAINED.glob(f"*/{registry.BACKEND_FILE}"))


def current_encoder_id(name: str) -> str:
    """`name@hash` of the weights `--encoder name` loads, without building the network."""
    if name == "whisper":
        pytest.skip("the frozen Whisper's weights are converted on first use; not checked here")
    weights = registry.encoder_spec(name).locate_weights()
    return f"{name}@{registry.file_sha256(weights)[:12]}"


def test_the_default_encoder_ships_a_backend():
    assert registry.DEFAULT_ENCODER in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_backend_and_calibration_match_the_shipped_weights(name):
    folder = registry.scoring_folder(name)
    backend = Backend.load(folder)
    assert backend.encoder_id == current_encoder_id(name), f"refit: recipes/debian-voices/backend.sh --stage 1 --encoders {name}"
    calibration = Calibration.load(folder / registry.CALIBRATION_FILE)
    assert calibration.encoder == backend.encoder_id
    assert {backend.id, "none", f"{backend.id}+s-norm", "none+s-norm"} <= set(calibration.maps)
