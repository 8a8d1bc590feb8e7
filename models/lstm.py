"""GE2E d-vector encoder: 3 stacked LSTMs over mel frames, last hidden state, projection, ReLU, L2.

Architecture of Wan et al. (2018), "Generalized End-to-End Loss for Speaker Verification", with
the sizes of Resemblyzer's pretrained model (40 mels -> 3 x LSTM 256 -> linear 256).
"""

from __future__ import annotations

import torch
from torch import nn

from speakembed.models.normalize import l2_normalize


class LSTMEncoder(nn.Module):
    """Mel windows (batch, frames, n_mels) -> embeddings (batch, embedding_size), unit length."""

    def __init__(self, n_mels: int = 40, hidden_size: int = 256, num_layers: int = 3, embedding_size: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden_size, num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, embedding_size)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """Mel frames (batch, frames, n_mels) -> unit embeddings (batch, embedding_size)."""
        _, (hidden, _) = self.lstm(mels)
        return l2_normalize(torch.relu(self.linear(hidden[-1])))
