"""Run ``quag serve``: load the checkpoint once, then serve the app with uvicorn (one process, one model)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quag.serve.service import VideoService

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeOptions:
    """What ``quag serve`` takes (its command-line options)."""

    checkpoint: Path
    host: str = "127.0.0.1"
    port: int = 8000
    examples: Path | None = Path("examples")
    cache_dir: Path | None = None
    """The server's folder; None = ``$QUAG_CACHE_DIR/../serve`` or ``~/.cache/quag/serve``."""
    max_upload_mb: float = 200.0
    max_videos: int = 32
    device: str = "cpu"
    eva_clip_checkpoint: Path | None = None
    whisper_model: Path | None = None
    whisper_compute_type: str = "default"
    bpe: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {self.port}")
        if self.max_upload_mb <= 0:
            raise ValueError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.max_videos < 1:
            raise ValueError(f"--max-videos must be at least 1, got {self.max_videos}")


def default_serve_dir() -> Path:
    """``serve/`` beside the predictor's default feature cache (``~/.cache/quag/serve``)."""
    from quag.pipeline.predictor import default_cache_dir

    return default_cache_dir().parent / "serve"


def build_service(options: ServeOptions) -> VideoService:
    """Load the checkpoint (once) into a :class:`~quag.serve.service.VideoService` and warm its query encoder."""
    from quag.pipeline.asr import WhisperOptions
    from quag.pipeline.predictor import Predictor
    from quag.serve.service import VideoService

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = Path(options.cache_dir) if options.cache_dir is not None else default_serve_dir()
    predictor = Predictor.from_checkpoint(
        options.checkpoint,
        eva_clip_checkpoint=options.eva_clip_checkpoint,
        whisper_model=options.whisper_model,
        bpe=options.bpe,
        device=options.device,
        cache_dir=cache / "features",
        whisper_options=WhisperOptions(compute_type=options.whisper_compute_type),
    )
    service = VideoService(
        predictor, cache, examples_dir=options.examples, max_videos=options.max_videos, checkpoint=options.checkpoint
    )
    service.warm_up()
    return service


def url(options: ServeOptions) -> str:
    """The page's address."""
    host = f"[{options.host}]" if ":" in options.host else options.host
    return f"http://{host}:{options.port}/"


def run_server(options: ServeOptions, service: VideoService) -> None:
    """Serve ``service`` until interrupted (Ctrl-C); the model stays loaded for the life of the process."""
    import uvicorn

    from quag.serve.app import create_app

    if options.host not in LOOPBACK:
        logger.warning(
            "listening on %s: anyone who can reach this machine can upload videos and ask questions; "
            "the server has no authentication (use 127.0.0.1 unless you mean it)",
            options.host,
        )
    app = create_app(service, max_upload_bytes=int(options.max_upload_mb * 2**20))
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
