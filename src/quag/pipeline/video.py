"""Reading videos with PyAV: probing, 1-fps frame selection (the official rule) and 16 kHz mono audio.

Frame rule. The official ``extract_frames.py`` seeks OpenCV to ``t * 1000`` ms for t = 0, 1, 2, ... and reads one
frame per second until a read fails (docs/pipeline.md). OpenCV's FFmpeg backend turns a millisecond position
into the frame index ``floor(t * fps + 0.5)`` and the read fails once that index reaches the frame count N. So
second t yields the frame nearest to t (ties to the later one) and the number of rows is::

    rows = #{t >= 0 : floor(t * fps + 0.5) <= N - 1} = ceil((N - 0.5) / fps) = ceil(D - 1 / (2 fps))

for a constant-rate video of D = N / fps seconds. This module decodes sequentially and picks, for every whole
second t, the first frame whose presentation time (relative to the first frame) is **strictly greater than**
``t - 1 / (2 fps)``; t stops at the first second with no such frame. For constant frame rates this selects exactly
OpenCV's frame and count; for variable rates it is the nearest-frame rule in time rather than in frame index.

Relation to the model's length ``round(D)``: ``rows - round(D)`` is 0 or 1. It is 1 when the fractional part of D
lies in ``(1/(2 fps), 1/2)`` (plus D ending in exactly .5 with an even integer part, as ``round`` goes to even):
the official files have the same extra row, which :class:`quag.data.features.FeatureStore` drops.

Audio is resampled to 16 kHz mono signed 16-bit by libswresample and scaled by 1/32768, which is what the
reference's ``ffmpeg -ac 1 -ar 16000`` WAV followed by Whisper's loader gives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import av

REASONS = {
    "missing": "the file does not exist",
    "zero_length": "the file is empty or holds no video frames",
    "corrupt": "the container or stream data cannot be parsed",
    "unreadable_codec": "no decoder for the stream's codec",
    "truncated": "fewer seconds decode than the container declares (an incomplete download?)",
    "no_video_stream": "the file has no video stream",
    "no_audio_track": "the file has no audio stream (no transcript can be made)",
    "error": "unexpected error",
}
"""Failure reasons recorded in ``extraction_failures.json``."""

AUDIO_RATE = 16000

logger = logging.getLogger(__name__)


class VideoError(RuntimeError):
    """A video that cannot be used; ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise RuntimeError("reading videos needs PyAV: pip install quag[extract]") from e
    return av


def official_frame_count(n_frames: int, fps: float) -> int:
    """Rows the official OpenCV extractor gives for ``n_frames`` frames at ``fps``: ``ceil((N - 0.5) / fps)``."""
    if n_frames <= 0:
        return 0
    # Count t >= 0 with floor(t * fps + 0.5) <= N - 1, i.e. t * fps < N - 0.5, in exact arithmetic.
    limit = (Fraction(n_frames) - Fraction(1, 2)) / Fraction(fps).limit_denominator(1_000_000)
    return math.ceil(limit)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns from the container without decoding."""

    path: Path
    duration: float
    """Seconds: the video stream's duration (container duration if the stream has none)."""
    fps: float
    """Average frame rate (0 if unknown)."""
    width: int
    height: int
    codec: str
    has_audio: bool


def _open(path: Path) -> av.container.InputContainer:
    av = _av()
    if not path.is_file():
        raise VideoError("missing", f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VideoError("zero_length", f"{path}: the file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise VideoError("corrupt", f"{path}: cannot be opened as a media file ({e})") from e


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoError("no_video_stream", f"{path}: no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VideoError("unreadable_codec", f"{path}: no decoder for the video codec (stream {stream.index})")
    return stream


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and describe its first video stream; raises :class:`VideoError` when unusable."""
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        rate = stream.average_rate or stream.guessed_rate
        cc = stream.codec_context
        info = VideoInfo(
            path=path,
            duration=duration,
            fps=float(rate) if rate else 0.0,
            width=cc.width,
            height=cc.height,
            codec=cc.name,
            has_audio=bool(container.streams.audio),
        )
    if info.duration <= 0:
        raise VideoError("zero_length", f"{path}: the video stream lasts 0 seconds")
    return info


def iter_frames_1fps(path: str | Path) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield ``(t, frame)`` for t = 0, 1, 2, ... with the official 1-fps selection rule (module docstring).

    Raises:
        VideoError: unreadable, corrupt or frameless video.
    """
    av = _av()
    path = Path(path)
    with _open(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        half = Fraction(1, 2) / Fraction(rate) if rate else Fraction(0)
        time_base = stream.time_base or Fraction(1, 1)
        first_pts: int | None = None
        t = 0
        n_decoded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                n_decoded += 1
                if frame.pts is None:  # no timestamps: fall back to the frame index at the nominal rate
                    time = Fraction(index) / Fraction(rate) if rate else Fraction(index)
                else:
                    if first_pts is None:
                        first_pts = frame.pts
                    time = (frame.pts - first_pts) * Fraction(time_base)
                while time > t - half:  # first frame strictly after t - 1/(2 fps): OpenCV's nearest frame
                    yield t, frame
                    t += 1
        except av.error.DecoderNotFoundError as e:
            raise VideoError("unreadable_codec", f"{path}: no decoder for the video codec ({e})") from e
        except av.error.FFmpegError as e:
            if n_decoded == 0:
                raise VideoError("corrupt", f"{path}: no frame decodes ({e})") from e
            # As OpenCV's failed read in the reference: the video ends here (the caller checks the length).
            logger.warning("%s: decoding stopped after %d frames (%s)", path, n_decoded, e)
    if n_decoded == 0:
        raise VideoError("zero_length", f"{path}: the video stream holds no decodable frame")


def decode_audio(path: str | Path, sample_rate: int = AUDIO_RATE) -> np.ndarray:
    """The first audio stream as mono float32 samples at ``sample_rate`` in [-1, 1).

    Raises:
        VideoError: ``no_audio_track`` when the file has no audio stream, or a decoding failure.
    """
    av = _av()
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise VideoError("no_audio_track", f"{path}: no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:
            raise VideoError("unreadable_codec", f"{path}: no decoder for the audio codec (stream {stream.index})")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler ignore timestamp gaps, as ffmpeg's CLI default does
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
        except av.error.DecoderNotFoundError as e:
            raise VideoError("unreadable_codec", f"{path}: no decoder for the audio codec ({e})") from e
        except av.error.FFmpegError as e:
            raise VideoError("corrupt", f"{path}: audio decoding failed ({e})") from e
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32) / 32768.0
