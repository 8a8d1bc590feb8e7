"""GE2E softmax loss and cosine distillation."""

import math

import pytest
import torch

from speakembed.models.losses import GE2ELoss, cosine_distillation_loss, ge2e_cosine_matrix, leave_one_out_centroids
from speakembed.models.losses import TripletNTXentLoss, batch_hard_triplet_loss, nt_xent_loss, pairwise_distances
from speakembed.models.normalize import l2_normalize


def test_leave_one_out_centroid_by_hand():
    embeddings = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                               [[2.0, 0.0], [0.0, 2.0], [4.0, 4.0]]])
    centroids = leave_one_out_centroids(embeddings)
    # speaker 0, utterance 0: mean of [0, 1] and [1, 1]; speaker 1, utterance 2: mean of [2, 0] and [0, 2]
    torch.testing.assert_close(centroids[0, 0], torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(centroids[1, 2], torch.tensor([1.0, 1.0]))
    # equals (M * c_j - e_ji) / (M - 1)
    torch.testing.assert_close(centroids, (3 * embeddings.mean(1, keepdim=True) - embeddings) / 2)


def test_cosine_matrix_uses_the_leave_one_out_centroid_for_the_own_speaker():
    embeddings = l2_normalize(torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [-1.0, 1.0]]]))
    cosines = ge2e_cosine_matrix(embeddings)
    assert cosines.shape == (2, 2, 2)
    # own speaker, utterances 0 and 1 of speaker 0: the other utterance is orthogonal
    torch.testing.assert_close(cosines[0, :, 0], torch.zeros(2))
    # other speaker: the full centroid of speaker 1 points along [0, 1]
    torch.testing.assert_close(cosines[0, :, 1], torch.tensor([0.0, 1.0]))


def test_loss_by_hand_for_orthogonal_speakers():
    """Two speakers on orthogonal axes: S = w * I + b in every row, so loss = log(1 + e^-w)."""
    embeddings = torch.tensor([[[1.0, 0.0]] * 3, [[0.0, 1.0]] * 3])
    loss, accuracy = GE2ELoss()(embeddings, return_accuracy=True)
    torch.testing.assert_close(loss, torch.tensor(math.log1p(math.exp(-10.0))))
    assert accuracy.item() == 1.0


def test_loss_decreases_as_embeddings_cluster_by_speaker():
    generator = torch.Generator().manual_seed(0)
    centres = l2_normalize(torch.randn(4, 1, 16, generator=generator))
    noise = torch.randn(4, 5, 16, generator=generator)
    criterion = GE2ELoss()
    losses = [criterion(l2_normalize(centres + spread * noise)).item() for spread in (4.0, 1.0, 0.3, 0.05)]
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 0.01 < 1.0 < losses[0]


def test_gradients_flow_to_scale_bias_and_embeddings():
    embeddings = l2_normalize(torch.randn(3, 4, 8)).requires_grad_()
    criterion = GE2ELoss()
    criterion(embeddings).backward()
    assert criterion.weight.grad is not None and criterion.weight.grad.abs() > 0
    assert criterion.bias.grad is not None and criterion.bias.grad.abs() > 0
    assert embeddings.grad.abs().sum() > 0


def test_scale_stays_positive():
    criterion = GE2ELoss()
    with torch.no_grad():
        criterion.weight.fill_(-3.0)  # e.g. after a large optimiser step
    assert criterion.scale.item() == pytest.approx(1e-6)
    embeddings = torch.tensor([[[1.0, 0.0]] * 2, [[0.0, 1.0]] * 2])
    # S is ~b everywhere, so each row is a uniform softmax over the 2 speakers
    assert criterion(embeddings).item() == pytest.approx(math.log(2), abs=1e-5)


@pytest.mark.parametrize("shape", [(1, 4, 8), (4, 1, 8), (4, 8)])
def test_bad_batch_shapes_raise(shape):
    with pytest.raises(ValueError):
        GE2ELoss()(torch.randn(*shape))


def test_cosine_distillation():
    student = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    teacher = torch.tensor([[3.0, 0.0], [1.0, 0.0]], requires_grad=True)
    loss = cosine_distillation_loss(student, teacher)
    torch.testing.assert_close(loss, torch.tensor(0.5))  # (0 + 1) / 2
    loss.backward()
    assert student.grad is not None and teacher.grad is None
    with pytest.raises(ValueError):
        cosine_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))


# ----------------------------------------------------------------------------- batch-hard triplet and NT-Xent


def on_a_line(*xs: float) -> torch.Tensor:
    """Embeddings (len(xs), 2) on the x axis, so distances are |x_i - x_j|."""
    return torch.tensor([[x, 0.0] for x in xs])


@pytest.mark.parametrize(("margin", "expected"), [(1.0, 1 / 4), (2.0, 3 / 4)])
def test_batch_hard_triplet_by_hand(margin, expected):
    # speaker 0 at 0 and 1, speaker 1 at 3 and 5; the lone speaker 2 at 100 only serves as a negative.
    # hardest (positive, negative) distances: a0 (1, 3), a1 (1, 2), b0 (2, 2), b1 (2, 4)
    embeddings, labels = on_a_line(0, 1, 3, 5, 100), torch.tensor([0, 0, 1, 1, 2])
    loss = batch_hard_triplet_loss(embeddings, labels, margin=margin)
    torch.testing.assert_close(loss, torch.tensor(expected))


def test_batch_hard_triplet_is_zero_when_speakers_are_separated_by_the_margin():
    embeddings, labels = on_a_line(0, 0.5, 10, 10.5), torch.tensor([0, 0, 1, 1])
    assert float(batch_hard_triplet_loss(embeddings, labels)) == 0.0
    no_pairs = batch_hard_triplet_loss(on_a_line(0, 1).requires_grad_(), torch.tensor([0, 1]))  # no positives
    assert float(no_pairs.detach()) == 0.0 and no_pairs.requires_grad


def test_batch_hard_triplet_gradients_stay_finite_for_coinciding_embeddings():
    embeddings = on_a_line(1, 1, 1, 2).requires_grad_()
    batch_hard_triplet_loss(embeddings, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(embeddings.grad).all() and embeddings.grad.abs().sum() > 0


def test_pairwise_distances_match_torch_cdist():
    embeddings = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pairwise_distances(embeddings), torch.cdist(embeddings, embeddings), atol=1e-5, rtol=0)


@pytest.mark.parametrize("temperature", [0.5, 0.1])
def test_nt_xent_by_hand_for_identical_orthogonal_views(temperature):
    # Each of the 4 embeddings has its partner at cosine 1 and two others at cosine 0 (itself excluded).
    views = torch.eye(2)
    expected = math.log(1 + 2 * math.exp(-1 / temperature))
    torch.testing.assert_close(nt_xent_loss(views, views.clone(), temperature), torch.tensor(expected))


def test_nt_xent_matches_a_loop_over_anchors():
    generator = torch.Generator().manual_seed(1)
    views, other = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    both = l2_normalize(torch.cat([views, other]))
    losses = []
    for anchor in range(8):
        partner = (anchor + 4) % 8
        logits = torch.stack([both[anchor] @ both[other_index] / 0.5 for other_index in range(8) if other_index != anchor])
        target = partner - (partner > anchor)
        losses.append(-torch.log_softmax(logits, dim=0)[target])
    torch.testing.assert_close(nt_xent_loss(views, other), torch.stack(losses).mean())


def test_triplet_nt_xent_total_and_bad_inputs():
    generator = torch.Generator().manual_seed(2)
    embeddings, augmented = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    total = TripletNTXentLoss(margin=0.5, temperature=0.2, nt_xent_weight=0.3)(embeddings, augmented, labels)
    expected = 0.3 * nt_xent_loss(embeddings, augmented, 0.2) + batch_hard_triplet_loss(embeddings, labels, 0.5)
    torch.testing.assert_close(total, expected)
    with pytest.raises(ValueError, match="labels"):
        batch_hard_triplet_loss(embeddings, labels[:5])
    with pytest.raises(ValueError, match="two views"):
        nt_xent_loss(embeddings, augmented[:5])
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(embeddings, augmented, temperature=0.0)
