"""Pictures of a speaker-verification evaluation (`spk evaluate verification --out DIR`):

    det.png            DET curve: false rejection vs false acceptance rate on probit (normal
                       deviate) axes, ticks labelled in %, with the EER and minDCF points marked
    scores.png         target and non-target score histograms, the EER threshold marked
    embeddings_2d.png  a t-SNE projection of the embeddings coloured by speaker

Speaker colours come from diarisation_view.speaker_colors, so a speaker looks the same in every
picture. Each figure is drawn with matplotlib's Agg backend and written atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from speakembed.pipelines.reports.diarisation_page import _mpl_text, speaker_colors
from speakembed.pipelines.base.outputs import write_bytes_atomically
from speakembed.pipelines.scoring.metrics import DetectionCost, EqualErrorRate, error_rates, unit_rows

DPI = 120
TARGET_COLOR, NONTARGET_COLOR = "#1f77b4", "#ff7f0e"
DET_TICKS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)
DET_FLOOR = 0.0001  # lowest rate (fraction) a DET axis ever shows
MIN_TSNE_POINTS = 5  # below this, t-SNE says nothing: embeddings_2d.png is not drawn
MAX_TSNE_POINTS = 2000  # above this, a fixed random sample is projected (2000 points: about 30 s)
MAX_LEGEND_SPEAKERS = 40  # more speakers than this: no legend, colours only
MAX_LEGEND_CHARS = 40  # speaker names are cut here in the legend (short enough names stay distinct)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never a GUI window from library code
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    """Render `figure` to PNG at `path` (atomically) and close it."""
    plt = _pyplot()
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(figure)  # pyplot keeps every open figure alive otherwise
    return write_bytes_atomically(path, buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# DET curve


def det_axis_range(labels: np.ndarray, marked_rates) -> tuple[float, float]:
    """Rates (fractions) the DET axes span: from a little below the DET_TICKS value at or below the
    smallest non-zero rate the trials resolve (1 / trials of the larger class), so that points
    there sit inside the frame, up to 40 % or, to show every marked rate (EER, minDCF
    operating points), the first DET_TICKS value 10 % above the largest of them."""
    labels = np.asarray(labels).astype(bool)
    resolution = 1.0 / max(int(labels.sum()), int((~labels).sum()))
    low = 0.7 * max([tick for tick in DET_TICKS if tick <= resolution * 1.0001], default=DET_FLOOR)
    needed = max([0.4, *(1.1 * float(rate) for rate in marked_rates)])
    return low, min([tick for tick in DET_TICKS if tick >= needed], default=DET_TICKS[-1])


def render_det(scores: np.ndarray, labels: np.ndarray, path: str | Path, *, eer: EqualErrorRate,
               costs: tuple[DetectionCost, ...] = (), title: str = "") -> Path:
    """Draw the DET curve of `scores` (higher = more likely the same speaker) against `labels`
    (1 target, 0 non-target) to a PNG at `path`: FRR (miss) over FAR (false alarm), both on
    probit axes in %, the EER point on the diagonal and each minDCF operating point marked."""
    from scipy.stats import norm

    plt = _pyplot()
    thresholds, frr, far = error_rates(scores, labels)
    points = [int(np.searchsorted(thresholds, cost.threshold)) for cost in costs]  # minDCF operating points
    low, high = det_axis_range(labels, [eer.eer, *frr[points], *far[points]])

    def probit(rate):  # rates of 0 or 1 land just outside the axes instead of at infinity
        return norm.ppf(np.clip(rate, 1e-9, 1 - 1e-9))

    figure, axes = plt.subplots(figsize=(6, 6), layout="constrained")
    axes.plot(probit(far), probit(frr), color=TARGET_COLOR, linewidth=1.6, label="DET")
    axes.plot(probit([low, high]), probit([low, high]), color="0.75", linewidth=0.8, linestyle=":")
    axes.plot(probit(eer.eer), probit(eer.eer), "o", color="black", markersize=6,
              label=f"EER {100 * eer.eer:.2f} %")
    for cost, point, marker in zip(costs, points, ("s", "D", "^", "v")):
        # An operating point off the axes (often FAR = 0 at a low p_target) is drawn on their edge.
        axes.plot(probit(np.clip(far[point], low, high)), probit(np.clip(frr[point], low, high)), marker,
                  color=NONTARGET_COLOR, markersize=7, markerfacecolor="none", markeredgewidth=1.5, clip_on=False,
                  label=f"minDCF(p={cost.p_target:g}) {cost.min_dcf:.3f}: FAR {100 * far[point]:.2g} %, "
                        f"FRR {100 * frr[point]:.2g} %")
    ticks = [tick for tick in DET_TICKS if low <= tick <= high]
    for set_ticks, set_limits in ((axes.set_xticks, axes.set_xlim), (axes.set_yticks, axes.set_ylim)):
        set_ticks(probit(ticks), [f"{100 * tick:g}" for tick in ticks])
        set_limits(probit(low), probit(high))
    axes.set_xlabel("false acceptance rate (%)")
    axes.set_ylabel("false rejection rate (%)")
    axes.set_aspect("equal")
    axes.grid(color="0.9")
    axes.set_axisbelow(True)
    axes.legend(loc="upper right", fontsize="small")
    axes.set_title(_mpl_text(title or "DET curve"))
    return _save(figure, path)


# ---------------------------------------------------------------------------------------------
# Score histograms


def render_score_histograms(scores: np.ndarray, labels: np.ndarray, path: str | Path, *, eer: EqualErrorRate,
                            title: str = "") -> Path:
    """Draw the target and non-target score distributions (densities over shared bins) to a PNG at
    `path`, with the EER threshold as a dashed line."""
    plt = _pyplot()
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    bins = np.histogram_bin_edges(scores, bins=int(np.clip(math.sqrt(len(scores)), 10, 60)))
    figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for mask, color, name in ((~labels, NONTARGET_COLOR, "non-target"), (labels, TARGET_COLOR, "target")):
        axes.hist(scores[mask], bins=bins, density=True, color=color, alpha=0.55,
                  label=f"{name} ({int(mask.sum())} trials)")
    axes.axvline(eer.threshold, color="black", linestyle="--", linewidth=1.2,
                 label=f"EER threshold {eer.threshold:.3f} (EER {100 * eer.eer:.2f} %)")
    axes.set_xlabel("score (cosine similarity)")
    axes.set_ylabel("density")
    axes.grid(axis="y", color="0.9")
    axes.set_axisbelow(True)
    axes.legend(loc="upper left", fontsize="small")
    axes.set_title(_mpl_text(title or "scores of target and non-target trials"))
    return _save(figure, path)


# ---------------------------------------------------------------------------------------------
# 2-D projection of the embeddings


def tsne_perplexity(num_points: int) -> float:
    """t-SNE perplexity for `num_points` points: 30, less for small sets ((N - 1) / 3), so that it
    stays well below the number of neighbours each point has."""
    return float(min(30.0, (num_points - 1) / 3))


def render_embeddings_2d(embeddings: np.ndarray, speakers, path: str | Path, *, random_state: int = 0,
                         title: str = "") -> tuple[Path | None, str | None]:
    """Project `embeddings` (N, D) to 2-D with t-SNE (cosine geometry: rows are L2-normalised,
    perplexity from tsne_perplexity, fixed `random_state`) and draw them coloured by speaker.

    Returns (path, note): path is None when N < MIN_TSNE_POINTS (nothing drawn); the note says
    why, or that a random sample of MAX_TSNE_POINTS was projected; None when there is nothing to say.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    vectors, speakers = unit_rows(embeddings), np.asarray([str(name) for name in speakers])
    if len(vectors) < MIN_TSNE_POINTS:
        return None, f"embeddings_2d.png not drawn: t-SNE needs at least {MIN_TSNE_POINTS} embeddings, got {len(vectors)}"
    note = None
    if len(vectors) > MAX_TSNE_POINTS:
        keep = np.sort(np.random.default_rng(random_state).choice(len(vectors), MAX_TSNE_POINTS, replace=False))
        vectors, speakers = vectors[keep], speakers[keep]
        note = f"embeddings_2d.png shows a random sample of {MAX_TSNE_POINTS} embeddings"
    perplexity = tsne_perplexity(len(vectors))
    # One thread: t-SNE's OpenMP threads busy-wait, and on a loaded machine they made it 2-50 times
    # slower than a single thread at every size up to MAX_TSNE_POINTS.
    with threadpool_limits(limits=1):
        points = TSNE(n_components=2, perplexity=perplexity, init="pca",
                      random_state=random_state).fit_transform(vectors)
    _draw_projection(points, speakers, path, title or f"t-SNE of {len(vectors)} embeddings (perplexity {perplexity:.3g})")
    return Path(path), note


def _draw_projection(points: np.ndarray, speakers: np.ndarray, path: str | Path, title: str) -> Path:
    plt = _pyplot()
    colors = speaker_colors(speakers)
    figure, axes = plt.subplots(figsize=(9, 6.5), layout="constrained")
    size = float(np.clip(3000 / len(points), 6, 40))
    for speaker, color in colors.items():
        mask = speakers == speaker
        axes.scatter(points[mask, 0], points[mask, 1], s=size, color=color, alpha=0.85, linewidths=0,
                     label=_mpl_text(speaker if len(speaker) <= MAX_LEGEND_CHARS else speaker[:MAX_LEGEND_CHARS - 1] + "…"))
    if len(colors) <= MAX_LEGEND_SPEAKERS:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False,
                    markerscale=max(1.0, 30 / size) ** 0.5, ncols=math.ceil(len(colors) / 20))
    axes.set_xticks([])
    axes.set_yticks([])  # t-SNE coordinates carry no units
    axes.set_title(_mpl_text(title))
    return _save(figure, path)
