"""Shared numeric guards for embeddings."""

from __future__ import annotations

import numpy as np
import torch

EPSILON = 1e-8


def l2_normalize(vectors: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Unit-length rows; an all-zero row (e.g. every ReLU unit off) stays zero instead of NaN."""
    return vectors / vectors.norm(dim=dim, keepdim=True).clamp_min(EPSILON)


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """NumPy twin of `l2_normalize` over the last axis, float32."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, EPSILON)).astype(np.float32)
