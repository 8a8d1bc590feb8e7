"""Views of a diarisation: a static PNG timeline, and a self-contained interactive HTML page.

Both take the two tables `spk diarise` produces (schemas in manifests.py):
  segments  recording_id, start_s, duration_s (seconds), speaker, confidence (0-1), overlap (bool)
  curves    recording_id, time_s (window centre, seconds), speaker, similarity (cosine, about -0.2..1)
and share the speaker colours, the time ticks and the time formatting defined here, so the PNG and
the page of one recording look alike.

The HTML page works offline: inline CSS and vanilla JS, the plots as server-side SVG (readable
without JS), the audio embedded as a base64 OGG Vorbis data URI when small enough, else referenced
by a path relative to the page. Outputs are written atomically (temporary name, then os.replace).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from speakembed.pipelines.base.outputs import write_bytes_atomically

UNKNOWN_SPEAKER = "unknown"
UNKNOWN_COLOR = "#9e9e9e"
# Qualitative palette: tab10 without its grey (kept for `unknown`), then the light tab20 partners,
# then a few tab20b darks, so that up to 23 speakers get distinct colours before any repeats.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)
LONG_AUDIO_S = 120.0  # from here on, times read as m:ss (or h:mm:ss) rather than plain seconds
TICK_STEPS_S = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600)
MAX_CURVE_POINTS = 4000  # per speaker: more than a screen's width of pixels, and keeps the page light
SIMILARITY_RANGE = (-0.2, 1.0)  # default y range of the curves, widened if the data leave it
EMBED_SAMPLE_RATE = 16000  # Hz; speech stays intelligible and the embedded audio stays small
MIN_VORBIS_BYTES_PER_S = 2500  # low estimate of 16 kHz mono Vorbis; longer audio is not even encoded
# libsndfile 1.2.2 overflows its stack (segmentation fault) on one Vorbis write of more than about
# 2.5 min, so the audio is decoded and encoded in blocks of this many seconds.
ENCODE_BLOCK_S = 30.0
MAX_LABEL_CHARS = 18  # lane labels longer than this are cut with an ellipsis (full name in the tooltip)

SEGMENT_COLUMNS = ("start_s", "duration_s", "speaker", "confidence", "overlap")
CURVE_COLUMNS = ("time_s", "speaker", "similarity")


# ---------------------------------------------------------------------------------------------
# Shared pieces: speakers and colours, times and ticks, input checks, atomic writes.


def speaker_colors(speakers) -> dict[str, str]:
    """Map each speaker name to a hex colour, stable for a given set of names.

    Names are sorted and take palette colours in that order (cycling past its end);
    `unknown` is always grey and comes last. The dict's order is the display order.
    """
    names = sorted({str(name) for name in speakers} - {UNKNOWN_SPEAKER})
    colors = {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}
    if UNKNOWN_SPEAKER in {str(name) for name in speakers}:
        colors[UNKNOWN_SPEAKER] = UNKNOWN_COLOR
    return colors


def format_time(seconds: float, duration_s: float, decimals: int = 0) -> str:
    """`seconds` as text: plain seconds ("12.5") for audio shorter than LONG_AUDIO_S, else
    "m:ss" or "h:mm:ss" (with `decimals` digits after the seconds in every form)."""
    if duration_s < LONG_AUDIO_S:
        return f"{seconds:.{decimals}f}"
    sign = "-" if seconds < 0 else ""
    scale = 10**decimals
    total = round(abs(seconds) * scale)  # round once, so that 59.96 s shows as 1:00.0, not 0:60.0
    whole, fraction = divmod(total, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours or duration_s >= 3600 else f"{minutes}:{secs:02d}"
    return sign + text + (f".{fraction:0{decimals}d}" if decimals else "")


def time_axis_label(duration_s: float) -> str:
    """The x-axis label matching format_time for audio of `duration_s` seconds."""
    if duration_s < LONG_AUDIO_S:
        return "time (s)"
    return "time (h:mm:ss)" if duration_s >= 3600 else "time (m:ss)"


def time_with_unit(seconds: float, duration_s: float, decimals: int = 2) -> str:
    """format_time plus an " s" unit where the plain-seconds form is used (tooltips)."""
    suffix = " s" if duration_s < LONG_AUDIO_S else ""
    return format_time(seconds, duration_s, decimals) + suffix


def time_ticks(duration_s: float, max_ticks: int = 12) -> list[float]:
    """Tick positions in seconds over [0, duration_s]: a round step giving at most `max_ticks`."""
    step = next((s for s in TICK_STEPS_S if duration_s / s <= max_ticks), None)
    if step is None:  # longer than the table covers: whole hours
        step = 3600.0 * math.ceil(duration_s / 3600 / max_ticks)
    return [float(t) for t in np.arange(0.0, duration_s + step * 1e-6, step)]


def similarity_axis(curves: pd.DataFrame) -> tuple[float, float, list[float]]:
    """The y limits of the curves and their ticks: SIMILARITY_RANGE widened to include every finite
    value, plus a 0.05 margin so that no line runs along the frame; ticks at multiples of 0.2."""
    values = curves["similarity"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    low, high = SIMILARITY_RANGE
    if len(values):
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    # rounded so that labels read 0.2, not 0.20000000000000004
    ticks = [round(v, 1) for v in np.arange(math.ceil(low / 0.2 - 1e-9) * 0.2, high + 1e-9, 0.2)]
    return low - 0.05, high + 0.05, ticks


def bar_opacity(confidence: float) -> float:
    """Opacity of a segment bar: faint for confidence 0, solid for 1 (NaN reads as fully confident)."""
    if not np.isfinite(confidence):
        return 1.0
    return 0.35 + 0.65 * float(np.clip(confidence, 0.0, 1.0))


def short_label(name: str) -> str:
    """`name` cut to MAX_LABEL_CHARS with an ellipsis, so that long names do not overrun the plot."""
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class _View:
    """Validated inputs of a renderer: sorted tables, the x extent in seconds, colours by speaker,
    and each speaker's downsampled curve as (times in s, similarities), in colour order."""

    segments: pd.DataFrame
    curves: pd.DataFrame
    duration_s: float
    colors: dict[str, str]
    lines: dict[str, tuple[np.ndarray, np.ndarray]]


def _prepare(segments: pd.DataFrame, curves: pd.DataFrame, duration_s: float) -> _View:
    """Check the columns, drop curve rows without a time, and size the x axis to cover every row.

    The x extent is `duration_s`, stretched if a segment or curve point lies beyond it, so that a
    wrong or zero duration never hides data.
    """
    for table, columns, name in ((segments, SEGMENT_COLUMNS, "segments"), (curves, CURVE_COLUMNS, "curves")):
        missing = [column for column in columns if column not in table.columns]
        if missing:
            raise ValueError(f"{name} table lacks columns {missing}")
    segments = segments.assign(speaker=segments["speaker"].astype(str)).sort_values("start_s", kind="stable")
    curves = curves.assign(speaker=curves["speaker"].astype(str))
    curves = curves[np.isfinite(curves["time_s"].to_numpy(dtype=float))].sort_values(["speaker", "time_s"])
    ends = [float(duration_s or 0.0)]
    if len(segments):
        ends.append(float((segments["start_s"] + segments["duration_s"]).max()))
    if len(curves):
        ends.append(float(curves["time_s"].max()))
    extent = max(ends) if max(ends) > 0 else 1.0
    colors = speaker_colors([*segments["speaker"].unique(), *curves["speaker"].unique()])
    return _View(segments.reset_index(drop=True), curves.reset_index(drop=True), extent, colors,
                 _speaker_curves(curves, colors, extent))



def _curve_runs(times: np.ndarray, values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split one speaker's curve into runs to draw as separate lines: at NaN similarities, and
    at gaps in time wider than 3 typical steps (so that a line never bridges missing windows)."""
    if len(times) == 0:
        return []
    finite = np.isfinite(values)
    steps = np.diff(times)
    typical = float(np.median(steps)) if len(steps) else 0.0
    gap = np.r_[False, steps > 3 * typical] if typical > 0 else np.zeros(len(times), dtype=bool)
    starts = finite & (gap | ~np.r_[False, finite[:-1]])  # a finite point after a gap or a NaN
    run_id = np.cumsum(starts)
    return [(times[finite & (run_id == run)], values[finite & (run_id == run)]) for run in np.unique(run_id[finite])]


def downsample_curve(times: np.ndarray, values: np.ndarray, duration_s: float,
                     max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points of one curve: means over equal time bins of `duration_s`/max_points
    seconds. NaNs stay NaN where a whole bin is NaN, so that gaps survive the downsampling."""
    if len(times) <= max_points:
        return times, values
    bins = np.minimum((times / duration_s * max_points).astype(int), max_points - 1)
    frame = pd.DataFrame({"bin": bins, "time": times, "value": values}).groupby("bin", sort=True)
    return frame["time"].mean().to_numpy(), frame["value"].mean().to_numpy()


def _speaker_curves(curves: pd.DataFrame, colors: dict[str, str], duration_s: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each speaker's downsampled (times in s, similarities), in colour order."""
    result = {}
    for speaker, rows in curves.groupby("speaker", sort=False):
        result[speaker] = downsample_curve(rows["time_s"].to_numpy(dtype=float),
                                           rows["similarity"].to_numpy(dtype=float), duration_s)
    return {speaker: result[speaker] for speaker in colors if speaker in result}


def _lane_speakers(view: _View) -> list[str]:
    """Speakers with at least one segment, in colour order: one timeline lane each."""
    present = set(view.segments["speaker"])
    return [speaker for speaker in view.colors if speaker in present]


# ---------------------------------------------------------------------------------------------
# PNG


def render_timeline_png(segments: pd.DataFrame, curves: pd.DataFrame, duration_s: float,
                        path: str | Path, title: str = "") -> Path:
    """Draw the speaker timeline (top) and the similarity curves (bottom) to a PNG at `path`.

    `duration_s` (seconds) sets the shared x axis. The figure is about 12 x 4 in at 120 dpi,
    taller with many speakers. Overlapped segments are hatched; bar opacity follows confidence.
    Returns `path`; raises OutputError if its folder does not exist.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never a GUI window from library code
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter

    view = _prepare(segments, curves, duration_s)
    lanes = _lane_speakers(view)
    height = 4.0 + 0.18 * max(0, len(lanes) - 4)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, height), sharex=True, layout="constrained",
                                         gridspec_kw={"height_ratios": [float(np.clip(len(lanes) / 4, 1.0, 2.5)), 1.3]})
    try:
        if title:
            figure.suptitle(_mpl_text(title))
        _draw_png_timeline(top, view, lanes)
        _draw_png_curves(bottom, view)
        bottom.xaxis.set_major_locator(FixedLocator(time_ticks(view.duration_s)))
        bottom.xaxis.set_major_formatter(FuncFormatter(lambda t, _: format_time(t, view.duration_s)))
        bottom.set_xlim(0, view.duration_s)
        bottom.set_xlabel(time_axis_label(view.duration_s))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(figure)  # pyplot keeps every open figure alive otherwise
    return write_bytes_atomically(path, buffer.getvalue())


def _mpl_text(text: str) -> str:
    """Escape `$` so that matplotlib does not read a speaker name as mathtext, and show tabs and
    line breaks (which a file name may hold) as spaces: the fonts have no glyph for them."""
    return re.sub(r"[\t\n\r\v\f]", " ", text).replace("$", r"\$")


def _draw_png_timeline(axes, view: _View, lanes: list[str]) -> None:
    if not lanes:
        axes.text(0.5, 0.5, "no speech found", transform=axes.transAxes, ha="center", va="center", color="0.4")
        axes.set_yticks([])
        return
    from matplotlib.colors import to_rgba

    for row, speaker in enumerate(lanes):
        rows = view.segments[view.segments["speaker"] == speaker]
        band = (len(lanes) - 1 - row - 0.38, 0.76)  # first speaker on top
        spans = list(zip(rows["start_s"], rows["duration_s"]))
        axes.broken_barh(spans, band, facecolors=[to_rgba(view.colors[speaker], bar_opacity(float(c)))
                                                  for c in rows["confidence"]])
        overlapped = [span for span, overlap in zip(spans, rows["overlap"]) if overlap]
        if overlapped:  # drawn on top, unfaded, so the hatching stays visible on faint bars
            axes.broken_barh(overlapped, band, facecolors="none", edgecolors="0.15", hatch="////", linewidth=0.8)
    axes.set_yticks(range(len(lanes)), [_mpl_text(short_label(s)) for s in reversed(lanes)])
    axes.set_ylim(-0.6, len(lanes) - 0.4)
    axes.grid(axis="x", color="0.9")
    axes.set_axisbelow(True)
    if view.segments["overlap"].astype(bool).any():
        axes.set_title("hatched: overlapped speech", loc="right", fontsize="small", color="0.4")


def _draw_png_curves(axes, view: _View) -> None:
    low, high, ticks = similarity_axis(view.curves)
    for speaker, (times, values) in view.lines.items():
        for index, (run_t, run_v) in enumerate(_curve_runs(times, values)):
            axes.plot(run_t, run_v, color=view.colors[speaker], linewidth=1.2,
                      label=_mpl_text(short_label(speaker)) if index == 0 else None)
    if view.lines:
        axes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small", frameon=False,
                    ncols=math.ceil(len(view.lines) / 10))
    else:
        axes.text(0.5, 0.5, "no similarity curves", transform=axes.transAxes, ha="center", va="center", color="0.4")
    axes.set_ylim(low, high)
    axes.set_yticks(ticks)
    axes.set_ylabel("similarity")
    axes.grid(color="0.9")
    axes.set_axisbelow(True)


# ---------------------------------------------------------------------------------------------
# HTML

# SVG geometry, in viewBox units (the SVGs scale to the page width).
SVG_WIDTH = 1200
PLOT_LEFT = 150  # room for lane labels
PLOT_RIGHT = SVG_WIDTH - 40  # room for half of the last tick label, "1:30:00"
LANE_HEIGHT = 24
LANE_GAP = 6
AXIS_HEIGHT = 34  # tick labels and axis title under a plot
CURVES_HEIGHT = 230


def render_html(segments: pd.DataFrame, curves: pd.DataFrame, duration_s: float, audio_path: str | Path,
                path: str | Path, *, title: str = "", embed_audio_max_mb: float = 20.0) -> Path:
    """Write one self-contained HTML page at `path`: speaker timeline, similarity curves, audio player.

    A cursor follows playback over both plots; clicking a plot seeks to that time, clicking a
    segment plays from its start. The audio is embedded (16 kHz mono OGG Vorbis, WAV if this
    libsndfile cannot encode Vorbis) when the encoded file is at most `embed_audio_max_mb` MB
    (1e6 bytes) - 0 never embeds - otherwise the page refers to `audio_path` relative to its folder.
    The data are embedded as JSON (`<script id="spk-data" type="application/json">`).
    Returns `path`; raises OutputError if its folder does not exist.
    """
    view = _prepare(segments, curves, duration_s)
    path = Path(path)
    audio_src = _audio_source(Path(audio_path), path.parent, view.duration_s, embed_audio_max_mb)
    tips = _segment_tips(view)
    page = _PAGE.format(
        title=html.escape(title or "Diarisation"),
        heading=html.escape(title or "Diarisation"),
        audio_src=html.escape(audio_src, quote=True),
        body=_html_body(view, tips),
        data=_json_for_script(_page_data(view, tips)),
        style=_STYLE,
        script=_SCRIPT,
    )
    return write_bytes_atomically(path, page.encode("utf-8"))


def _audio_source(audio_path: Path, page_folder: Path, duration_s: float, max_mb: float) -> str:
    """A data URI of the compactly re-encoded audio if it fits in `max_mb`, else a relative URL."""
    if max_mb > 0 and duration_s * MIN_VORBIS_BYTES_PER_S <= max_mb * 1e6:
        encoded = _encode_audio(audio_path, max_bytes=int(max_mb * 1e6))
        if encoded is not None:
            data, mime = encoded
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    try:
        relative = os.path.relpath(Path(audio_path).resolve(), page_folder.resolve())
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(audio_path).resolve().as_uri()
    return quote(Path(relative).as_posix())  # spaces, '#' and '?' would otherwise break the URL


def _encode_audio(audio_path: Path, max_bytes: int) -> tuple[bytes, str] | None:
    """The audio as 16 kHz mono OGG Vorbis bytes (or WAV if Vorbis encoding fails) and its MIME
    type, or None as soon as the encoding grows beyond `max_bytes`."""
    from speakembed.pipelines.base.errors import SpeakEmbedError

    try:
        return _encode_in_blocks(audio_path, "OGG", "VORBIS", max_bytes, "audio/ogg")
    except SpeakEmbedError:  # the recording itself cannot be decoded: WAV would not help
        raise
    except Exception:  # libsndfile builds without Vorbis raise various types; WAV always works
        return _encode_in_blocks(audio_path, "WAV", "PCM_16", max_bytes, "audio/wav")


def _encode_in_blocks(audio_path: Path, format: str, subtype: str, max_bytes: int, mime: str) -> tuple[bytes, str] | None:
    """Decode and encode ENCODE_BLOCK_S seconds at a time: memory stays bounded by the encoded
    size, and no single write is long enough to crash libsndfile."""
    import soundfile

    from speakembed.pipelines.audio.decode import stream_audio

    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", EMBED_SAMPLE_RATE, 1, format=format, subtype=subtype) as out:
        for block in stream_audio(audio_path, EMBED_SAMPLE_RATE, ENCODE_BLOCK_S):
            out.write(block)
            with buffer.getbuffer() as view:  # the size so far, without moving the position libsndfile uses
                if view.nbytes > max_bytes:
                    return None
    data = buffer.getvalue()
    return (data, mime) if len(data) <= max_bytes else None


def _json_for_script(data: dict) -> str:
    """JSON safe inside a <script> element: every '<', '>' and '&' becomes a \\u escape, so no
    string (a speaker name such as '</script>') can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite_or_none(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def _json_points(times: np.ndarray, values: np.ndarray) -> list[list[float | None]]:
    """[[time_s, similarity], ...] rounded to ms and 3 digits, NaN as null (JSON has no NaN)."""
    pairs = zip(np.round(times, 3).tolist(), np.round(values, 3).tolist())
    return [[t, v if math.isfinite(v) else None] for t, v in pairs]


def _page_data(view: _View, tips: list[str]) -> dict:
    """What the page's script needs: extent, speakers and colours, segments with tooltips, curves."""
    segments = []
    rows = view.segments[list(SEGMENT_COLUMNS)].itertuples(index=False)
    for (start, length, speaker, confidence, overlap), tip in zip(rows, tips):
        segments.append({
            "start": round(float(start), 3),
            "end": round(float(start + length), 3),
            "speaker": speaker,
            "confidence": _finite_or_none(confidence, 3),
            "overlap": bool(overlap),
            "tip": tip,
        })
    curves = {speaker: _json_points(times, values) for speaker, (times, values) in view.lines.items()}
    return {"duration_s": view.duration_s, "colors": view.colors, "segments": segments, "curves": curves,
            "plot": {"left": PLOT_LEFT, "right": PLOT_RIGHT}}


def _segment_tips(view: _View) -> list[str]:
    """The tooltip text of each segment bar, in row order: speaker, start - end, confidence, overlap."""
    tips = []
    for start, length, speaker, confidence, overlap in view.segments[list(SEGMENT_COLUMNS)].itertuples(index=False):
        lines = [
            speaker,
            f"{time_with_unit(start, view.duration_s)} – {time_with_unit(start + length, view.duration_s)}",
            f"confidence {confidence:.2f}" if np.isfinite(confidence) else "confidence n/a",
        ]
        if overlap:
            lines.append("overlapped speech")
        tips.append("\n".join(lines))
    return tips


def _html_body(view: _View, tips: list[str]) -> str:
    """The plots and legend as markup, or a notice when the diarisation found no speech."""
    lanes = _lane_speakers(view)
    if not lanes:
        return '<p class="empty">No speech was found in this recording.</p>'
    return _HINT + _timeline_svg(view, lanes, tips) + _curves_svg(view) + _legend_html(view)


def _x(view: _View, seconds):
    """SVG x coordinate(s) of a time or an array of times in seconds."""
    return np.round(PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * np.asarray(seconds, dtype=float) / view.duration_s, 2)


def _time_grid(view: _View, top: float, bottom: float, labels: bool) -> list[str]:
    """Vertical grid lines at the time ticks between y=`top` and `bottom`, with labels below if asked."""
    parts = []
    for tick in time_ticks(view.duration_s):
        x = _x(view, tick)
        parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}"/>')
        if labels:
            parts.append(f'<text class="tick" x="{x}" y="{bottom + 15}" text-anchor="middle">'
                         f"{html.escape(format_time(tick, view.duration_s))}</text>")
    if labels:
        parts.append(f'<text class="axis-label" x="{(PLOT_LEFT + PLOT_RIGHT) / 2}" y="{bottom + 31}" '
                     f'text-anchor="middle">{html.escape(time_axis_label(view.duration_s))}</text>')
    return parts


def _cursor(top: float, bottom: float) -> str:
    return (f'<g class="cursor"><line x1="{PLOT_LEFT}" x2="{PLOT_LEFT}" y1="{top}" y2="{bottom}"/>'
            f'<path d="M{PLOT_LEFT - 5},{top} h10 l-5,7 z"/></g>')


def _timeline_svg(view: _View, lanes: list[str], tips: list[str]) -> str:
    """One lane per speaker with its segment bars (hatched where overlapped), grid and cursor."""
    top, bottom = 6, 6 + len(lanes) * (LANE_HEIGHT + LANE_GAP)
    lane_of = {speaker: index for index, speaker in enumerate(lanes)}
    parts = [
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" class="hatch"/></pattern></defs>',
        *_time_grid(view, top, bottom, labels=True),
    ]
    for speaker, index in lane_of.items():
        y = top + index * (LANE_HEIGHT + LANE_GAP) + LANE_GAP / 2
        name = html.escape(speaker)
        parts.append(f'<text class="lane-label" x="{PLOT_LEFT - 8}" y="{y + LANE_HEIGHT / 2 + 4}" text-anchor="end">'
                     f"<title>{name}</title>{html.escape(short_label(speaker))}</text>")
        parts.append(f'<rect class="lane" x="{PLOT_LEFT}" y="{y}" width="{PLOT_RIGHT - PLOT_LEFT}" height="{LANE_HEIGHT}"/>')
    for number, (row, tip) in enumerate(zip(view.segments.itertuples(index=False), tips)):
        y = top + lane_of[row.speaker] * (LANE_HEIGHT + LANE_GAP) + LANE_GAP / 2
        x0, x1 = _x(view, row.start_s), _x(view, row.start_s + row.duration_s)
        width = max(round(x1 - x0, 2), 1.0)  # a very short segment still shows as a 1-unit sliver
        geometry = f'x="{x0}" y="{y}" width="{width}" height="{LANE_HEIGHT}"'
        parts.append(f'<g class="seg{" overlap" if row.overlap else ""}" data-seg="{number}"><title>{html.escape(tip)}</title>'
                     f'<rect {geometry} fill="{view.colors[row.speaker]}" fill-opacity="{bar_opacity(float(row.confidence)):.2f}"/>'
                     + (f'<rect class="hatched" {geometry}/>' if row.overlap else "") + "</g>")
    parts.append(_cursor(top - 6, bottom))
    height = bottom + AXIS_HEIGHT
    return (f'<svg class="plot timeline" viewBox="0 0 {SVG_WIDTH} {height}" role="img" '
            f'aria-label="speaker timeline">{"".join(parts)}</svg>')


def _curves_svg(view: _View) -> str:
    """The similarity curves as polylines over a y grid at multiples of 0.2, with grid and cursor."""
    top, bottom = 8, CURVES_HEIGHT - AXIS_HEIGHT
    low, high, ticks = similarity_axis(view.curves)

    def y_of(value):
        return np.round(bottom - (bottom - top) * (np.asarray(value, dtype=float) - low) / (high - low), 2)

    parts = _time_grid(view, top, bottom, labels=True)
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line class="grid{" zero" if tick == 0 else ""}" x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="tick" x="{PLOT_LEFT - 6}" y="{y + 4}" text-anchor="end">{tick:g}</text>')
    parts.append(f'<text class="axis-label" transform="translate({PLOT_LEFT - 44},{(top + bottom) / 2}) rotate(-90)" '
                 'text-anchor="middle">similarity</text>')
    for speaker, (times, values) in view.lines.items():
        for run_t, run_v in _curve_runs(times, values):
            points = " ".join(f"{x:g},{y:g}" for x, y in zip(_x(view, run_t).tolist(), y_of(run_v).tolist()))
            parts.append(f'<polyline class="curve" data-speaker="{html.escape(speaker)}" stroke="{view.colors[speaker]}" '
                         f'points="{points}"/>')
    if not view.lines:
        parts.append(f'<text class="notice" x="{(PLOT_LEFT + PLOT_RIGHT) / 2}" y="{(top + bottom) / 2}" '
                     'text-anchor="middle">no similarity curves</text>')
    parts.append(f'<rect class="frame" x="{PLOT_LEFT}" y="{top}" width="{PLOT_RIGHT - PLOT_LEFT}" height="{bottom - top}"/>')
    parts.append(_cursor(top, bottom))
    return (f'<svg class="plot curves" viewBox="0 0 {SVG_WIDTH} {CURVES_HEIGHT}" role="img" '
            f'aria-label="similarity to each speaker over time">{"".join(parts)}</svg>')


def _legend_html(view: _View) -> str:
    """Swatch, name and (filled by the script) the similarity at the cursor, for each speaker."""
    items = []
    for speaker, color in view.colors.items():
        name = html.escape(speaker)
        items.append(f'<li data-speaker="{name}"><span class="swatch" style="background:{color}"></span>'
                     f'<span class="name">{name}</span> <span class="value"></span></li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


_HINT = """<p class="hint">Click a plot to seek; click a segment to play it; hover a name below to highlight its curve.
Bar opacity follows confidence; hatched bars lie in overlapped speech.</p>
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<script>
window.addEventListener("error", function (e) {{ document.body.dataset.error = String(e.message || e); }});
</script>
<h1>{heading}</h1>
<audio id="spk-audio" controls preload="metadata" src="{audio_src}"></audio>
{body}
<div id="spk-tip" hidden></div>
<script id="spk-data" type="application/json">{data}</script>
<script>{script}</script>
</body>
</html>
"""

_STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; font-weight: 600; margin: 0 0 10px; }
audio { width: 100%; margin-bottom: 4px; }
.hint { color: #666; font-size: 12px; margin: 0 0 8px; }
.empty { font-size: 16px; color: #555; padding: 24px 0; }
svg.plot { display: block; width: 100%; height: auto; cursor: crosshair; user-select: none; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #444; }
svg .lane-label { font-size: 13px; fill: #222; }
svg .axis-label { fill: #666; }
svg .notice { fill: #888; font-size: 14px; }
svg .lane { fill: #f4f4f4; }
svg .grid { stroke: #e2e2e2; stroke-width: 1; }
svg .grid.zero { stroke: #bbb; }
svg .frame { fill: none; stroke: #ccc; }
svg .seg { cursor: pointer; }
svg .seg:hover rect:first-of-type { stroke: #000; stroke-width: 1.5; }
svg .hatched { fill: url(#hatch); stroke: #333; stroke-width: 1; }
svg .hatch { stroke: rgba(0, 0, 0, 0.45); stroke-width: 2; }
svg .curve { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
svg.focus .curve { stroke-opacity: 0.12; }
svg.focus .curve.on { stroke-opacity: 1; stroke-width: 2.4; }
svg .cursor line { stroke: #d00; stroke-width: 2; }
svg .cursor path { fill: #d00; }
.legend { list-style: none; padding: 0; margin: 8px 0 0 12.5%;  /* PLOT_LEFT / SVG_WIDTH */ display: flex; flex-wrap: wrap; gap: 4px 18px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend .swatch { width: 14px; height: 14px; border-radius: 3px; display: inline-block; }
.legend .value { color: #666; font-variant-numeric: tabular-nums; min-width: 3em; }
#spk-tip { position: fixed; pointer-events: none; background: rgba(30, 30, 30, 0.92); color: #fff;
  padding: 6px 9px; border-radius: 4px; font-size: 12px; white-space: pre-line; z-index: 10; }
"""

# Builds nothing: the plots are server-side SVG. It moves the cursors, seeks, shows tooltips and
# the similarity at the cursor, then marks the body data-ready="1" (the browser test waits on it).
_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("spk-data").textContent);
  var audio = document.getElementById("spk-audio");
  var tip = document.getElementById("spk-tip");
  var plots = Array.prototype.slice.call(document.querySelectorAll("svg.plot"));
  var left = data.plot.left, right = data.plot.right, duration = data.duration_s;
  var curvesSvg = document.querySelector("svg.curves");
  var lines = Array.prototype.slice.call(document.querySelectorAll("svg.curves .curve"));
  var legend = {};

  function highlight(speaker) {  // fade every other curve; null shows them all again
    if (!curvesSvg) return;
    curvesSvg.classList.toggle("focus", speaker !== null);
    lines.forEach(function (line) { line.classList.toggle("on", line.dataset.speaker === speaker); });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".legend li"), function (li) {
    legend[li.dataset.speaker] = li.querySelector(".value");
    li.addEventListener("mouseenter", function () { highlight(li.dataset.speaker); });
    li.addEventListener("mouseleave", function () { highlight(null); });
  });

  function timeAt(svg, event) {
    var point = svg.createSVGPoint();
    point.x = event.clientX; point.y = event.clientY;
    var x = point.matrixTransform(svg.getScreenCTM().inverse()).x;
    return Math.min(Math.max((x - left) / (right - left), 0), 1) * duration;
  }

  function valueAt(curve, t) {  // the curve point nearest before or at t (binary search)
    var lo = 0, hi = curve.length - 1;
    if (hi < 0 || t < curve[0][0]) return null;
    while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (curve[mid][0] <= t) lo = mid; else hi = mid - 1; }
    return curve[lo][1];
  }

  function draw(t) {
    var x = left + (right - left) * Math.min(Math.max(t / duration, 0), 1);
    plots.forEach(function (svg) {
      var cursor = svg.querySelector(".cursor");
      if (cursor) cursor.setAttribute("transform", "translate(" + (x - left) + ",0)");
    });
    Object.keys(data.curves).forEach(function (speaker) {
      var v = valueAt(data.curves[speaker], t);
      if (legend[speaker]) legend[speaker].textContent = v === null ? "" : v.toFixed(2);
    });
  }

  function seek(t, play) {
    try { audio.currentTime = t; } catch (e) { /* no media yet: the cursor still moves */ }
    draw(t);
    if (play) { var p = audio.play(); if (p && p.catch) p.catch(function () {}); }
  }

  var frame = null;
  function follow() { draw(audio.currentTime); frame = audio.paused ? null : requestAnimationFrame(follow); }
  audio.addEventListener("play", function () { if (frame === null) frame = requestAnimationFrame(follow); });
  ["timeupdate", "seeked", "pause", "ended"].forEach(function (name) {
    audio.addEventListener(name, function () { draw(audio.currentTime); });
  });

  plots.forEach(function (svg) {
    svg.addEventListener("click", function (event) {
      var seg = event.target.closest("[data-seg]");
      if (seg) seek(data.segments[+seg.dataset.seg].start, true);
      else seek(timeAt(svg, event), false);
    });
    svg.addEventListener("mousemove", function (event) {
      var seg = event.target.closest("[data-seg]");
      if (!seg) { tip.hidden = true; return; }
      tip.textContent = data.segments[+seg.dataset.seg].tip;
      tip.style.left = (event.clientX + 14) + "px";
      tip.style.top = (event.clientY + 14) + "px";
      tip.hidden = false;
    });
    svg.addEventListener("mouseleave", function () { tip.hidden = true; });
  });
  // The native <title> tooltips serve pages without script; with it, the styled one replaces them.
  Array.prototype.forEach.call(document.querySelectorAll("[data-seg] > title"), function (t) { t.remove(); });

  draw(0);
  document.body.dataset.ready = "1";
})();
"""
