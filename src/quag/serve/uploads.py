"""What the server accepts as a video: a PyAV probe before anything decodes it, and names for display only."""

from __future__ import annotations

from pathlib import Path

from quag.data.timestamps import num_frames

CONTAINERS: dict[str, tuple[str, str]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": (".mp4", "video/mp4"),
    "matroska,webm": (".webm", "video/webm"),
    "ogg": (".ogv", "video/ogg"),
    "avi": (".avi", "video/x-msvideo"),
    "mpegts": (".ts", "video/mp2t"),
    "flv": (".flv", "video/x-flv"),
}
"""PyAV container format -> (stored extension, media type). Any other container is refused."""

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".ogv", ".avi")
"""File name endings listed as example videos."""


class VideoRejected(ValueError):
    """A file that is not a usable video; the message says why and what to upload instead."""


def display_name(filename: str | None, fallback: str = "video") -> str:
    """A short printable name for an uploaded file: its last path part, without control characters.

    Only shown to people and put into answers; the stored file is named by its content hash.
    """
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:120] or fallback


def probe_upload(path: Path, name: str) -> tuple[float, str, str]:
    """Check with PyAV that ``path`` is a video the predictor can read, before anything decodes it.

    Args:
        path: the received file.
        name: its display name, for messages (the server path is never shown).

    Returns:
        ``(duration in seconds, stored extension, media type)``.

    Raises:
        VideoRejected: not a media file, an unsupported container, no video stream, or too short.
    """
    import av

    from quag.pipeline.video import VideoError, probe_video

    hint = "upload a video file (.mp4, .webm, .mkv, .mov) with a video stream"
    try:
        info = probe_video(path)  # the checks and messages of `quag predict`
    except VideoError as e:
        raise VideoRejected(f"{str(e).replace(str(path), name)}; {hint}") from e
    with av.open(str(path), mode="r") as container:
        fmt = container.format.name
    if fmt not in CONTAINERS:
        raise VideoRejected(f"{name}: a {fmt!r} container, which this server does not accept; {hint}")
    if num_frames(info.duration) < 1:
        raise VideoRejected(f"{name}: {info.duration:.2f} s is too short to ask about (less than one second)")
    ext, media_type = CONTAINERS[fmt]
    return info.duration, ext, media_type
