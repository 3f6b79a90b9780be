"""Seconds <-> frame indices. The only place in the package that converts (besides prediction post-processing).

HiREST features have one frame per second, and a video of ``v_duration`` seconds has
``T = round(v_duration)`` frames (Python's ``round``, i.e. half to even, as the official loader).
The official ``timestamp_to_frame_index`` is ``digitize(ts, linspace(0, T-1, T), right=True)`` clipped to
``T-1``, which equals::

    frame(ts) = clip(ceil(ts), 0, T - 1)

so integer seconds map to themselves, 10.5 -> 11, anything >= T-1 -> T-1 and negative times -> 0.
``frame_index_to_timestamp(i)`` is ``i`` seconds.
"""

from __future__ import annotations

import math

import numpy as np

FPS = 1.0
"""Frames per second of the official features (and of everything this package extracts)."""


def num_frames(duration: float) -> int:
    """Number of 1-fps frames of a video lasting ``duration`` seconds: ``round(duration)`` (at least 1)."""
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"video duration must be a finite number >= 0 seconds, got {duration!r}")
    return max(1, int(round(duration * FPS)))


def seconds_to_frame(seconds: float, n_frames: int) -> int:
    """Frame index of a time in seconds: ``clip(ceil(t), 0, n_frames - 1)`` (the official rule)."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if not math.isfinite(seconds):
        raise ValueError(f"timestamp must be finite, got {seconds!r}")
    return int(min(max(math.ceil(seconds * FPS), 0), n_frames - 1))


def seconds_to_frames(seconds: np.ndarray, n_frames: int | np.ndarray) -> np.ndarray:
    """Vectorised :func:`seconds_to_frame` (``n_frames`` may be per element)."""
    s = np.asarray(seconds, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError("timestamps must be finite")
    hi = np.asarray(n_frames) - 1
    return np.clip(np.ceil(s * FPS), 0, hi).astype(np.int64)


def frame_to_seconds(frame: int | np.ndarray) -> float | np.ndarray:
    """Start time in seconds of a frame index (``i / fps``, i.e. ``i`` at 1 fps)."""
    if isinstance(frame, np.ndarray):
        return frame.astype(np.float64) / FPS
    return float(frame) / FPS


def window_indices(start: int, end: int, n: int, mode: str) -> np.ndarray:
    """Frame indices that squeeze the inclusive window ``[start, end]`` into exactly ``n`` rows.

    Modes:
        ``reference``: the official ``trim_feats``: keep the first ``n`` frames of a longer window;
            a shorter one (N <= n) is repeated nearest-neighbour style, source frame k filling output slots
            ``[floor(k n / N), floor((k+1) n / N))``.
        ``resample``: like ``reference`` for short windows, but longer ones are sampled uniformly over the
            whole window (``linspace(start, end, n)`` rounded down), so long steps are not cut off.
        ``full``: every frame of the window, whatever its length.
    """
    if end < start:
        raise ValueError(f"window end {end} precedes its start {start}")
    length = end - start + 1
    if mode == "full":
        return np.arange(start, end + 1, dtype=np.int64)
    if mode not in ("reference", "resample"):
        raise ValueError(f"unknown window mode {mode!r}; expected reference, resample or full")
    if length > n:
        if mode == "reference":
            return np.arange(start, start + n, dtype=np.int64)
        return np.linspace(start, end, n).astype(np.int64)
    # nearest-neighbour repetition: output slot j takes source k with floor(k n / N) <= j < floor((k+1) n / N)
    k = np.arange(length)
    counts = (k + 1) * n // length - k * n // length
    return start + np.repeat(k, counts).astype(np.int64)
