"""From window-level speaker scores to speaker turns: spread window scores onto a fine time grid,
smooth the speaker sequence with a Viterbi pass that charges for every switch, and cut the
speech regions where the speaker changes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Turn:
    """One speaker turn: start and end (s), the speaker's index (-1: unknown), a confidence in [0, 1], and whether it overlaps another turn."""
    start_s: float
    end_s: float
    speaker: int  # index into the speaker list; -1 is "unknown"
    confidence: float
    overlap: bool = False


def grid_scores(window_centres_s: np.ndarray, window_scores: np.ndarray, window_s: float, duration_s: float,
                step_s: float) -> np.ndarray:
    """Scores (grid points, speakers) at the centre of every `step_s` step of the recording.

    Each window spreads its scores over the points it covers with a triangular weight that
    peaks at its centre, since a window's embedding speaks most for the middle of its span.
    Points no window covers take the scores of the nearest window.
    """
    num_points = max(1, int(np.ceil(duration_s / step_s)))
    times = (np.arange(num_points) + 0.5) * step_s
    totals = np.zeros((num_points, window_scores.shape[1]))
    weights = np.zeros(num_points)
    half_span = window_s / 2
    reach = int(np.ceil(half_span / step_s))
    centre_points = np.floor(window_centres_s / step_s).astype(int)
    for offset in range(-reach, reach + 1):
        points = centre_points + offset
        inside = (points >= 0) & (points < num_points)
        weight = np.clip(1 - np.abs(times[points[inside]] - window_centres_s[inside]) / half_span, 0, None)
        np.add.at(totals, points[inside], weight[:, None] * window_scores[inside])
        np.add.at(weights, points[inside], weight)
    covered = weights > 0
    scores = np.zeros_like(totals)
    scores[covered] = totals[covered] / weights[covered, None]
    if (~covered).any() and covered.any():
        nearest = np.abs(times[~covered, None] - window_centres_s[None, :]).argmin(axis=1)
        scores[~covered] = window_scores[nearest]
    return scores


def viterbi(emissions: np.ndarray, switch_penalty: float) -> np.ndarray:
    """The state sequence maximising sum(emissions[t, state_t]) - switch_penalty * switches.

    emissions: (steps, states). Returns (steps,) int state indices.
    """
    steps, states = emissions.shape
    best = emissions[0].copy()
    came_from = np.zeros((steps, states), dtype=np.int64)
    for step in range(1, steps):
        leader = int(best.argmax())
        switch = best[leader] - switch_penalty
        stay_better = best >= switch
        came_from[step] = np.where(stay_better, np.arange(states), leader)
        best = np.where(stay_better, best, switch) + emissions[step]
    path = np.zeros(steps, dtype=np.int64)
    path[-1] = int(best.argmax())
    for step in range(steps - 1, 0, -1):
        path[step - 1] = came_from[step, path[step]]
    return path


def turns_in_speech(path: np.ndarray, confidence: np.ndarray, speech_s: list[tuple[float, float]], step_s: float,
                    state_speakers: np.ndarray) -> list[Turn]:
    """Cut each speech region wherever the grid's speaker changes; turns keep the exact region
    edges. `state_speakers` maps a Viterbi state to a speaker index (-1 unknown)."""
    turns: list[Turn] = []
    for region_start, region_end in speech_s:
        first = min(len(path) - 1, int(region_start / step_s))
        last = min(len(path) - 1, max(first, int(np.ceil(region_end / step_s)) - 1))
        cut_start = region_start
        for point in range(first, last + 1):
            is_last = point == last or path[point + 1] != path[point]
            if is_last:
                cut_end = region_end if point == last else (point + 1) * step_s
                segment = slice(int(cut_start / step_s), point + 1)
                turns.append(Turn(cut_start, cut_end, int(state_speakers[path[point]]),
                                  float(np.mean(confidence[segment])) if segment.stop > segment.start else float(confidence[point])))
                cut_start = cut_end
    return [turn for turn in turns if turn.end_s > turn.start_s]



def add_overlaps_at_handovers(turns: list[Turn], lead_s: float, speech_s: list[tuple[float, float]]) -> list[Turn]:
    """Mark overlapped speech where one speaker hands over to another without a pause.

    When B takes over from A inside one stretch of speech, B usually started while A was still
    finishing; the embeddings only switch to B once A stops, so the switch lands at the end of
    the overlap. B is therefore also credited with the `lead_s` seconds before the switch,
    where both are marked as overlapping. A handover is only taken as overlap when the
    voice-activity regions `speech_s` (before short pauses are bridged) show no pause there, and
    when both turns last at least `lead_s` (a shorter fragment is a decoding blip, not a turn).
    """
    if lead_s <= 0:
        return turns
    result: list[Turn] = []
    for index, turn in enumerate(turns):
        following = turns[index + 1] if index + 1 < len(turns) else None
        handover = (following is not None and following.speaker != turn.speaker
                    and abs(following.start_s - turn.end_s) < 1e-6
                    and min(turn.end_s - turn.start_s, following.end_s - following.start_s) >= lead_s
                    and _inside_one_region(turn.end_s - lead_s, turn.end_s, speech_s))
        if not handover:
            result.append(turn)
            continue
        overlap_start = max(turn.start_s, turn.end_s - lead_s)
        if overlap_start > turn.start_s:
            result.append(Turn(turn.start_s, overlap_start, turn.speaker, turn.confidence))
        result.append(Turn(overlap_start, turn.end_s, turn.speaker, turn.confidence, overlap=True))
        result.append(Turn(overlap_start, turn.end_s, following.speaker, following.confidence, overlap=True))
    return sorted(result, key=lambda turn: (turn.start_s, turn.speaker))


def _inside_one_region(start_s: float, end_s: float, regions: list[tuple[float, float]]) -> bool:
    return any(region_start <= start_s and end_s <= region_end for region_start, region_end in regions)
