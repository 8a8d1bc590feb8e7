"""Diarisation views: the PNG timeline and the self-contained HTML page, on hand-made tables.

The browser test (headless Chromium, skipped when absent) checks that the page renders something
and that its script runs to the end without an error.
"""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import soundfile

import browser
from speakembed.pipelines.reports import diarisation_page as view
from speakembed.pipelines.base.errors import OutputError

RATE = 16000
DURATION_S = 10.0
NASTY = "<b>o'b&b</b>"  # must be escaped in markup and in the embedded JSON
NASTY_ESCAPED = "&lt;b&gt;o&#x27;b&amp;b&lt;/b&gt;"
VOID_ELEMENTS = {"meta", "link", "br", "hr", "img", "input", "source", "track", "wbr", "area", "base", "col", "embed"}


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    """10 s of a 16 kHz mono tone with a 3 Hz tremolo (anything decodable will do)."""
    time = np.arange(int(DURATION_S * RATE)) / RATE
    signal = 0.3 * np.sin(2 * np.pi * 220 * time) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * time))
    path = tmp_path / "meeting.wav"
    soundfile.write(path, signal.astype(np.float32), RATE)
    return path


def make_segments(rows: list[tuple[float, float, str, float, bool]]) -> pd.DataFrame:
    start, length, speaker, confidence, overlap = zip(*rows) if rows else ((),) * 5
    return pd.DataFrame({"recording_id": "meeting", "start_s": pd.Series(start, dtype="float64"),
                         "duration_s": pd.Series(length, dtype="float64"), "speaker": pd.Series(speaker, dtype="string"),
                         "confidence": pd.Series(confidence, dtype="float32"), "overlap": pd.Series(overlap, dtype="bool")})


def make_curves(speakers: list[str], duration_s: float = DURATION_S, step_s: float = 0.25) -> pd.DataFrame:
    """One smooth curve per speaker, each peaking at a different time, in long format."""
    times = np.arange(step_s / 2, duration_s, step_s)
    frames = [
        pd.DataFrame({"recording_id": "meeting", "time_s": times, "speaker": speaker,
                      "similarity": (0.4 + 0.5 * np.cos(2 * np.pi * (times / duration_s - k / len(speakers)))).astype(np.float32)})
        for k, speaker in enumerate(speakers)
    ]
    columns = {"recording_id": [], "time_s": [], "speaker": [], "similarity": []}
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns)


@pytest.fixture
def segments() -> pd.DataFrame:
    return make_segments([
        (0.2, 2.3, "alice", 0.95, False),
        (2.3, 0.6, "bob", 0.55, True),  # overlaps the end of alice's turn
        (3.0, 2.5, "bob", 0.9, False),
        (5.8, 1.7, NASTY, 0.8, False),
        (7.6, 0.8, "unknown", 0.3, False),
        (8.5, 1.3, "alice", 0.88, False),
    ])


@pytest.fixture
def curves() -> pd.DataFrame:
    return make_curves(["alice", "bob", NASTY])


class NestingChecker(HTMLParser):
    """Records every start tag that is closed out of order, or never closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def check_well_formed(page: str) -> None:
    checker = NestingChecker()
    checker.feed(page)
    checker.close()
    assert checker.problems == [] and checker.stack == []


def embedded_data(page: str) -> dict:
    match = re.search(r'<script id="spk-data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no JSON data block"
    return json.loads(match.group(1))


def audio_src(page: str) -> str:
    return re.search(r'<audio [^>]*src="([^"]*)"', page).group(1)


# --- shared pieces ------------------------------------------------------------------------------


def test_speaker_colors_are_stable_distinct_and_unknown_is_grey():
    colors = view.speaker_colors(["bob", "unknown", "alice", "bob"])
    assert list(colors) == ["alice", "bob", "unknown"]
    assert colors == view.speaker_colors(["unknown", "alice", "bob"])
    assert colors["unknown"] == view.UNKNOWN_COLOR
    many = view.speaker_colors([f"s{i:02d}" for i in range(20)])
    assert len(set(many.values())) == 20 and view.UNKNOWN_COLOR not in many.values()


@pytest.mark.parametrize("seconds, duration_s, decimals, expected", [
    (12.345, 10, 2, "12.35"),
    (65, 300, 0, "1:05"),
    (59.96, 300, 1, "1:00.0"),
    (3725, 7200, 0, "1:02:05"),
    (65, 7200, 0, "0:01:05"),
])
def test_format_time(seconds, duration_s, decimals, expected):
    assert view.format_time(seconds, duration_s, decimals) == expected


def test_time_ticks_are_round_and_few():
    assert view.time_ticks(10) == [float(t) for t in range(11)]
    hour = view.time_ticks(3600)
    assert len(hour) <= 13 and hour[1] == 300
    assert len(view.time_ticks(24 * 3600)) <= 13


def test_downsampling_keeps_at_most_the_limit():
    times = np.linspace(0, 3600, 50_000)
    t, v = view.downsample_curve(times, np.sin(times), 3600, max_points=4000)
    assert len(t) <= 4000 and np.all(np.diff(t) > 0)


# --- PNG ----------------------------------------------------------------------------------------


def test_png_is_a_valid_image(tmp_path, segments, curves):
    path = view.render_timeline_png(segments, curves, DURATION_S, tmp_path / "timeline.png", title=NASTY)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[1] >= 1200 and image.shape[0] >= 400
    assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 20  # coloured bars and curves
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_png_without_speech(tmp_path):
    path = view.render_timeline_png(make_segments([]), make_curves([]), DURATION_S, tmp_path / "empty.png")
    assert matplotlib.image.imread(path).ndim == 3


def test_png_into_a_missing_folder_is_an_output_error(tmp_path, segments, curves):
    with pytest.raises(OutputError):
        view.render_timeline_png(segments, curves, DURATION_S, tmp_path / "nope" / "t.png")


# --- HTML ---------------------------------------------------------------------------------------


def test_html_is_self_contained_with_embedded_audio(tmp_path, wav, segments, curves):
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html", title="meeting").read_text()
    assert re.search(r"https?://", page) is None
    assert re.search(r"<(link|img|iframe)\b|<script[^>]+src=", page) is None
    src = audio_src(page)
    assert src.startswith(("data:audio/ogg;base64,", "data:audio/wav;base64,"))
    assert len(src) < 200_000  # 10 s at 16 kHz mono, compactly encoded
    check_well_formed(page)


def test_html_refers_to_large_audio_by_relative_path(tmp_path, wav, segments, curves):
    audio_dir = tmp_path / "audio files"
    audio_dir.mkdir()
    audio = wav.rename(audio_dir / "meeting #1.wav")
    (tmp_path / "pages").mkdir()
    page = view.render_html(segments, curves, DURATION_S, audio, tmp_path / "pages" / "view.html",
                            embed_audio_max_mb=0).read_text()
    assert audio_src(page) == "../audio%20files/meeting%20%231.wav"


def test_embedded_audio_is_encoded_block_by_block_into_one_stream(tmp_path, wav, segments, curves, monkeypatch):
    """Blocks of 0.7 s (instead of 30 s: a one-call Vorbis write of long audio crashes libsndfile)
    join into one stream of the whole length."""
    monkeypatch.setattr(view, "ENCODE_BLOCK_S", 0.7)
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html").read_text()
    mime, encoded = re.fullmatch(r"data:(audio/\w+);base64,(.+)", audio_src(page)).groups()
    decoded, rate = soundfile.read(io.BytesIO(base64.b64decode(encoded)))
    assert rate == view.EMBED_SAMPLE_RATE and abs(len(decoded) / rate - DURATION_S) < 0.01


def test_audio_over_the_size_limit_is_referred_to_not_embedded(tmp_path, wav, segments, curves, monkeypatch):
    monkeypatch.setattr(view, "ENCODE_BLOCK_S", 1.0)
    assert view._encode_audio(wav, max_bytes=2_000) is None  # stops at the first block over the limit
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html", embed_audio_max_mb=0.002).read_text()
    assert audio_src(page) == "meeting.wav"


def test_file_name_with_tabs_and_dollars_makes_a_clean_png_title(tmp_path, segments, curves):
    assert view._mpl_text("a\tb\nc $x$") == r"a b c \$x\$"
    assert view.render_timeline_png(segments, curves, DURATION_S, tmp_path / "t.png", title="a\tb").stat().st_size > 0


def test_html_escapes_speaker_names(tmp_path, wav, segments, curves):
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html", title=NASTY).read_text()
    assert NASTY not in page
    assert NASTY_ESCAPED in page
    assert "</b>" not in page and "<b>" not in page


def test_json_block_round_trips(tmp_path, wav, segments, curves):
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html").read_text()
    data = embedded_data(page)
    assert data["duration_s"] == DURATION_S
    assert list(data["colors"]) == ["<b>o'b&b</b>", "alice", "bob", "unknown"]
    assert [s["speaker"] for s in data["segments"]] == list(segments["speaker"])
    assert data["segments"][1] | {"tip": None} == {"start": 2.3, "end": 2.9, "speaker": "bob", "confidence": 0.55,
                                                   "overlap": True, "tip": None}
    assert set(data["curves"]) == {"alice", "bob", NASTY}
    assert len(data["curves"]["alice"]) == len(curves[curves["speaker"] == "alice"])


def test_curve_gaps_and_nans_break_the_lines(tmp_path, wav, segments):
    curves = make_curves(["alice"])
    curves = curves[(curves["time_s"] < 3) | (curves["time_s"] > 6)].reset_index(drop=True)  # a 3 s gap
    curves.loc[2, "similarity"] = np.nan
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html").read_text()
    assert page.count('<polyline class="curve" data-speaker="alice"') == 3
    assert embedded_data(page)["curves"]["alice"][2][1] is None
    view.render_timeline_png(segments, curves, DURATION_S, tmp_path / "timeline.png")


def test_html_without_speech_says_so(tmp_path, wav):
    page = view.render_html(make_segments([]), make_curves([]), DURATION_S, wav, tmp_path / "view.html").read_text()
    assert "No speech was found" in page
    check_well_formed(page)


def test_html_with_many_speakers_and_long_curves(tmp_path, wav):
    speakers = [f"speaker {i:02d}" for i in range(20)]
    duration_s = 4 * 3600.0
    rows = [(i * 60.0, 50.0, speakers[i % 20], 0.9, i % 7 == 0) for i in range(int(duration_s // 60))]
    page = view.render_html(make_segments(rows), make_curves(speakers, duration_s, step_s=1.0), duration_s, wav,
                            tmp_path / "view.html", embed_audio_max_mb=0).read_text()
    data = embedded_data(page)
    assert all(len(points) <= view.MAX_CURVE_POINTS for points in data["curves"].values())
    assert len(set(data["colors"].values())) == 20
    assert len(page) < 10_000_000
    check_well_formed(page)


def test_missing_columns_are_rejected(tmp_path, wav, segments, curves):
    with pytest.raises(ValueError, match="confidence"):
        view.render_html(segments.drop(columns="confidence"), curves, DURATION_S, wav, tmp_path / "v.html")


# --- in a browser -------------------------------------------------------------------------------


@pytest.mark.skipif(not browser.available(), reason="chromium is not installed (apt-get install chromium)")
def test_page_renders_and_its_script_runs_in_chromium(tmp_path, wav, segments, curves):
    page = view.render_html(segments, curves, DURATION_S, wav, tmp_path / "view.html", title="meeting")
    dom = browser.dump_dom(page, tmp_path)
    assert 'data-ready="1"' in dom
    assert "data-error" not in dom
    shot = matplotlib.image.imread(browser.screenshot(page, tmp_path))
    assert shot.shape[:2] == (900, 1400)
    assert len(np.unique(shot[..., :3].reshape(-1, 3), axis=0)) > 20
