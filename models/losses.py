"""Training losses: the GE2E softmax loss, cosine distillation towards a teacher encoder, and
the batch-hard triplet and NT-Xent losses of the Whisper encoder."""

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


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between all rows: (batch, D) -> (batch, batch).

    From the differences themselves (exact, unlike the Gram-matrix shortcut for close pairs), with
    the squares floored at 1e-12 before the square root, so the gradient stays finite where two
    embeddings coincide (the diagonal among them).
    """
    differences = embeddings[:, None, :] - embeddings[None, :, :]
    return differences.square().sum(dim=-1).clamp_min(1e-12).sqrt()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Online batch-hard triplet loss (Hermans et al. 2017), a scalar tensor.

    embeddings (batch, D); labels (batch,) speaker ids. For each anchor, the hardest positive is
    the farthest embedding of the same speaker and the hardest negative the nearest embedding of
    another speaker (Euclidean); the loss is the mean of max(0, d_pos - d_neg + margin) over the
    anchors that have both. A batch where no anchor has both gives 0 (still part of the graph).
    """
    _check_pair_inputs(embeddings, labels)
    distances = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    positives = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_positive = distances.masked_fill(~positives, float("-inf")).amax(dim=1)
    hardest_negative = distances.masked_fill(same, float("inf")).amin(dim=1)
    usable = positives.any(dim=1) & (~same).any(dim=1)
    if not bool(usable.any()):
        return embeddings.sum() * 0.0
    return torch.relu(hardest_positive[usable] - hardest_negative[usable] + margin).mean()


def nt_xent_loss(views: torch.Tensor, other_views: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR, Chen et al. 2020), a scalar tensor.

    views, other_views: (batch, D), row i of both from the same utterance (e.g. clean and
    augmented). Each of the 2 * batch embeddings must pick its partner among the other
    2 * batch - 1 by cosine similarity / temperature; the loss is the mean cross entropy.
    """
    if views.dim() != 2 or views.shape != other_views.shape or len(views) < 2:
        raise ValueError(f"NT-Xent expects two views of one shape (batch >= 2, D), got {tuple(views.shape)} "
                         f"and {tuple(other_views.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    embeddings = l2_normalize(torch.cat([views, other_views]))
    logits = (embeddings @ embeddings.T) / temperature
    count = len(embeddings)
    logits = logits.masked_fill(torch.eye(count, dtype=torch.bool, device=logits.device), float("-inf"))
    half = len(views)
    partners = torch.cat([torch.arange(half, count), torch.arange(0, half)]).to(logits.device)
    return nn.functional.cross_entropy(logits, partners)


class TripletNTXentLoss(nn.Module):
    """total = nt_xent_weight * NT-Xent(utterances, augmented views) + batch-hard triplet(utterances).

    The triplet term sees the utterance embeddings with their speaker labels; the NT-Xent term pulls
    each utterance towards its own augmented view and away from every other embedding of the batch.
    """

    def __init__(self, margin: float = 1.0, temperature: float = 0.5, nt_xent_weight: float = 1.0):
        super().__init__()
        self.margin, self.temperature, self.nt_xent_weight = margin, temperature, nt_xent_weight

    def forward(self, embeddings: torch.Tensor, augmented: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """embeddings, augmented (batch, D); labels (batch,). A scalar tensor."""
        triplet = batch_hard_triplet_loss(embeddings, labels, self.margin)
        return self.nt_xent_weight * nt_xent_loss(embeddings, augmented, self.temperature) + triplet


def _check_pair_inputs(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    if embeddings.dim() != 2 or labels.shape != (len(embeddings),):
        raise ValueError(f"expected embeddings (batch, D) and labels (batch,), got {tuple(embeddings.shape)} "
                         f"and {tuple(labels.shape)}")
