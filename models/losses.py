"""Training losses: the GE2E softmax loss and cosine distillation towards a teacher encoder."""

from __future__ import annotations

import torch
from torch import nn

from speakembed.models.normalize import l2_normalize

MIN_SCALE = 1e-6  # GE2E's similarity scale must stay positive (Wan et al. 2018, section 2.1)


def leave_one_out_centroids(embeddings: torch.Tensor) -> torch.Tensor:
    """Each utterance's own-speaker centroid without it: (N, M, D) -> (N, M, D).

    c_j^(-i) = (M * c_j - e_ji) / (M - 1). Excluding the utterance avoids the trivial solution
    in which an utterance is similar to its centroid because it is part of it.
    """
    count = embeddings.shape[1]
    return (embeddings.sum(dim=1, keepdim=True) - embeddings) / (count - 1)


def ge2e_cosine_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """cos(e_ji, c_k) for every utterance and speaker centroid: (N, M, D) -> (N, M, N).

    Entry [j, i, k] compares utterance i of speaker j with the centroid of speaker k; the entries
    with k == j use the leave-one-out centroid.
    """
    _check_batch(embeddings)
    speakers = embeddings.shape[0]
    utterances = l2_normalize(embeddings)
    centroids = l2_normalize(embeddings.mean(dim=1))
    cosines = torch.einsum("jid,kd->jik", utterances, centroids)
    own = (utterances * l2_normalize(leave_one_out_centroids(embeddings))).sum(dim=-1)
    is_own = torch.eye(speakers, dtype=torch.bool, device=embeddings.device).unsqueeze(1)
    return torch.where(is_own, own.unsqueeze(-1), cosines)


class GE2ELoss(nn.Module):
    """Generalized end-to-end softmax loss (Wan et al. 2018) over an N x M batch.

    S[j, i, k] = w * cos(e_ji, c_k) + b, with learnable w (init 10, clamped at >= 1e-6 in the
    forward pass, as in the paper) and b (init -5); each row S[j, i, :] is a softmax over the N
    speakers whose target is j. The trainer optimises w and b together with the encoder.
    """

    def __init__(self, init_scale: float = 10.0, init_bias: float = -5.0):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(float(init_scale)))
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))

    @property
    def scale(self) -> torch.Tensor:
        """The similarity scale w actually used, always >= MIN_SCALE."""
        return self.weight.clamp(min=MIN_SCALE)

    def similarity(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Scaled similarity logits (N, M, N) of embeddings (N speakers, M utterances, D)."""
        return self.scale * ge2e_cosine_matrix(embeddings) + self.bias

    def forward(self, embeddings: torch.Tensor,
                return_accuracy: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Mean loss over the N * M utterances (a scalar tensor).

        embeddings: (N speakers, M utterances, D), unit length, N >= 2 and M >= 2.
        With `return_accuracy`, also the fraction of utterances whose most similar centroid is
        their own speaker's (a detached scalar; a cheap training signal that needs no EER).
        """
        logits = self.similarity(embeddings)
        speakers, utterances, _ = logits.shape
        targets = torch.arange(speakers, device=logits.device).repeat_interleave(utterances)
        flat = logits.reshape(speakers * utterances, speakers)
        loss = nn.functional.cross_entropy(flat, targets)
        if not return_accuracy:
            return loss
        return loss, (flat.detach().argmax(dim=1) == targets).float().mean()


def cosine_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos(student_b, teacher_b)) over a batch of embeddings (batch, D): 0 when aligned.

    The teacher is a fixed target: no gradient flows into it.
    """
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(f"expected student and teacher embeddings of one shape (batch, D), got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")
    cosines = (l2_normalize(student) * l2_normalize(teacher.detach())).sum(dim=-1)
    return (1.0 - cosines).mean()


def _check_batch(embeddings: torch.Tensor) -> None:
    if embeddings.dim() != 3:
        raise ValueError(f"GE2E expects embeddings of shape (N speakers, M utterances, D), got {tuple(embeddings.shape)}")
    speakers, utterances, _ = embeddings.shape
    if speakers < 2 or utterances < 2:
        raise ValueError(f"GE2E needs N >= 2 speakers and M >= 2 utterances each, got N={speakers}, M={utterances}")
