"""PyAV reading: the official 1-fps frame rule, probing, 16 kHz audio and the failure reasons."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from quag.data.timestamps import num_frames
from quag.pipeline.video import VideoError, decode_audio, iter_frames_1fps, official_frame_count, probe_video
from tests.pipeline.helpers import break_codec, frame_index_of, load_speech, make_video, truncate

# (frames, fps): fractional durations 2.0 .. 3.0 s, a drop-frame rate and rates where t * fps falls half-way
CASES = [
    (20, 10),
    (23, 10),
    (25, 10),
    (27, 10),
    (30, 10),
    (70, Fraction(30000, 1001)),
    (17, Fraction(15, 2)),
    (10, 4),
    (9, 4),
]


def opencv_rule(n_frames: int, fps: Fraction) -> list[int]:
    """The official extractor, simulated: seek to t*1000 ms = frame floor(t*fps + 0.5), read until past the end."""
    picked, t = [], 0
    while math.floor(t * fps + Fraction(1, 2)) <= n_frames - 1:
        picked.append(math.floor(t * fps + Fraction(1, 2)))
        t += 1
    return picked


@pytest.mark.parametrize(("n_frames", "fps"), CASES)
def test_one_frame_per_second_follows_the_official_rule(tmp_path: Path, n_frames: int, fps: Fraction) -> None:
    fps = Fraction(fps)
    path = make_video(tmp_path / "v.mp4", n_frames, fps)
    picked = [(t, frame_index_of(f.to_ndarray(format="rgb24"))) for t, f in iter_frames_1fps(path)]
    expected = opencv_rule(n_frames, fps)
    assert [t for t, _ in picked] == list(range(len(expected)))
    assert [i for _, i in picked] == expected
    # closed form: rows = ceil((N - 1/2) / fps) = ceil(D - 1/(2 fps))
    duration = Fraction(n_frames) / fps
    assert len(picked) == official_frame_count(n_frames, float(fps)) == math.ceil(duration - 1 / (2 * fps))
    # ... which is round(D) or round(D) + 1 (the extra row when frac(D) lies in (1/(2 fps), 1/2], see video.py)
    rows_minus_model = len(picked) - num_frames(float(duration))
    frac = duration - math.floor(duration)
    assert rows_minus_model == (
        1 if 1 / (2 * fps) < frac < Fraction(1, 2) or (frac == Fraction(1, 2) and math.floor(duration) % 2 == 0) else 0
    )


def test_probe_reports_duration_rate_and_audio(tmp_path: Path) -> None:
    silent = probe_video(make_video(tmp_path / "a.mp4", 23, 10))
    assert silent.duration == pytest.approx(2.3) and silent.fps == 10 and not silent.has_audio
    assert (silent.width, silent.height, silent.codec) == (64, 48, "h264")
    talking = probe_video(make_video(tmp_path / "b.mp4", 31, 10, audio=load_speech()))
    assert talking.has_audio and talking.duration == pytest.approx(3.1)


def test_audio_is_16khz_mono_float(tmp_path: Path) -> None:
    speech = load_speech()
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert len(speech) / 16000 == pytest.approx(3.0, abs=0.05)
    assert 0.05 < np.abs(speech).max() <= 1.0
    path = make_video(tmp_path / "v.mp4", 30, 10, audio=speech)
    remuxed = decode_audio(path)
    assert len(remuxed) / 16000 == pytest.approx(len(speech) / 16000, abs=0.1)  # AAC adds a little priming


@pytest.mark.parametrize(
    ("name", "reason"),
    [("corrupt", "corrupt"), ("empty", "zero_length"), ("codec", "unreadable_codec"), ("missing", "missing")],
)
def test_unusable_files_raise_with_a_reason(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / f"{name}.mp4"
    if name == "corrupt":
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    elif name == "empty":
        path.write_bytes(b"")
    elif name == "codec":
        break_codec(make_video(tmp_path / "ok.mp4", 12, 10), path)
    with pytest.raises(VideoError) as info:
        probe_video(path)
        list(iter_frames_1fps(path))
    assert info.value.reason == reason


def test_no_audio_track_is_its_own_reason(tmp_path: Path) -> None:
    with pytest.raises(VideoError) as info:
        decode_audio(make_video(tmp_path / "v.mp4", 10, 10))
    assert info.value.reason == "no_audio_track"


def test_truncated_download_decodes_short_without_raising(tmp_path: Path) -> None:
    """As the reference's failed OpenCV read, a decoding error after some frames ends the video."""
    full = make_video(tmp_path / "full.mp4", 100, 10, options={"movflags": "faststart"})
    short = truncate(full, tmp_path / "short.mp4", keep=0.75)
    assert probe_video(short).duration == pytest.approx(10.0)  # the index still declares 10 s
    assert 0 < len(list(iter_frames_1fps(short))) < 8
