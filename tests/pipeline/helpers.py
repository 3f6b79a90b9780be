"""Helpers of the pipeline tests: generated videos (PyAV), the tiny EVA-CLIP configuration, the speech clip.

Videos encode their frame index in the colour of every pixel, ``(16 (i % 16) + 8, 16 (i // 16) + 8, 128)``, so a
test can tell which frame the extractor picked (:func:`frame_index_of`).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from quag.pipeline.eva_clip import ClipTextConfig, EvaClipConfig, EvaVisionConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"
SPEECH_CLIP = FIXTURES / "speech.ogg"
SPEECH_TEXT = "Pour the milk into a bowl and stir it."
MANIFEST = FIXTURES / "eva_clip_g14_state_dict.txt"

TINY_EVA = EvaClipConfig(
    name="eva-clip-tiny-test",
    embed_dim=24,
    vision=EvaVisionConfig(image_size=28, patch_size=14, width=32, layers=2, head_width=16, mlp_ratio=2.0),
    text=ClipTextConfig(context_length=16, vocab_size=49408, width=32, heads=2, layers=2),
)


def frame_colour(i: int) -> tuple[int, int, int]:
    return 16 * (i % 16) + 8, 16 * (i // 16) + 8, 128


def frame_index_of(rgb: np.ndarray) -> int:
    """Inverse of :func:`frame_colour` on a decoded (H, W, 3) frame."""
    r, g = rgb[..., 0].mean(), rgb[..., 1].mean()
    return int(round((r - 8) / 16)) + 16 * int(round((g - 8) / 16))


def load_speech(rate: int = 16000) -> np.ndarray:
    from quag.pipeline.video import decode_audio

    return decode_audio(SPEECH_CLIP, rate)


def make_video(
    path: Path,
    n_frames: int,
    fps: Fraction | int = 10,
    size: tuple[int, int] = (64, 48),
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    fmt: str | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Write an H.264 video of ``n_frames`` coloured frames, optionally with an AAC track of ``audio`` (mono float)."""
    import av

    w, h = size
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        astream = container.add_stream("aac", rate=audio_rate, layout="mono") if audio is not None else None
        for i in range(n_frames):
            img = np.empty((h, w, 3), np.uint8)
            img[:] = frame_colour(i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None and audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1024
            for start in range(0, len(pcm), step):
                frame = av.AudioFrame.from_ndarray(pcm[None, start : start + step], format="s16", layout="mono")
                frame.sample_rate = audio_rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` of a faststart mp4 (index first): it opens, but decodes short (a partial download)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def break_codec(src: Path, dst: Path) -> Path:
    """Copy an H.264 mp4 with its codec tag renamed so that no decoder matches (an 'unreadable codec' file)."""
    data = src.read_bytes()
    assert b"avc1" in data
    dst.write_bytes(data.replace(b"avc1", b"qzqz"))
    return dst
