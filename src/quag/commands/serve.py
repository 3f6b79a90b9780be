"""``quag serve [--checkpoint CKPT] [--host 127.0.0.1] [--port N]``: a web page and a JSON API for asking questions
of a video.

Loads the checkpoint once (:func:`quag.serve.server.build_service`), then serves the page and ``/api`` with
uvicorn (:func:`quag.serve.server.run_server`) until Ctrl-C. docs/serve.md describes the page and the API.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quag.commands import add_device_argument

DEFAULT_CHECKPOINT = Path("runs/sim_speech_cpu/checkpoints/best")
"""The example model (``make example``): speech-only QUAG trained on HiREST-sim."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help="checkpoint folder; the default is the example model that `make example` trains",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; anything but 127.0.0.1 exposes the server"
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument(
        "--examples", type=Path, default=Path("examples"), help="folder of example videos offered on the page"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="the server's folder: stored videos and their features (default: ~/.cache/quag/serve)",
    )
    parser.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted upload, in MiB")
    parser.add_argument(
        "--max-videos", type=int, default=32, help="videos kept; the least recently used is dropped beyond it"
    )
    parser.add_argument(
        "--eva-clip-checkpoint",
        type=Path,
        default=None,
        help="EVA-CLIP-g/14 weights (eva_clip_psz14.pt); not needed for a speech-only checkpoint with MiniLM queries",
    )
    parser.add_argument(
        "--whisper-model", type=Path, default=None, help="faster-whisper model directory (default: Whisper tiny.en)"
    )
    parser.add_argument(
        "--whisper-compute-type",
        default="default",
        help="CTranslate2 compute type: default (the model's own), int8 (faster on CPU)",
    )
    parser.add_argument("--bpe", type=Path, default=None, help="CLIP BPE merges file (EVA-CLIP text queries)")
    add_device_argument(parser, "device of the model and the encoders")


def run(args: argparse.Namespace) -> int:
    from quag.inference.device import resolve_device
    from quag.serve.server import ServeOptions, build_service, run_server, url

    if not args.checkpoint.is_dir():
        hint = " (train the example model with `make example`)" if args.checkpoint == DEFAULT_CHECKPOINT else ""
        raise FileNotFoundError(f"checkpoint folder {args.checkpoint} not found{hint}; pass --checkpoint CKPT")
    options = ServeOptions(
        checkpoint=args.checkpoint,
        host=args.host,
        port=args.port,
        examples=args.examples,
        cache_dir=args.cache_dir,
        max_upload_mb=args.max_upload_mb,
        max_videos=args.max_videos,
        device=str(resolve_device(args.device)),
        eva_clip_checkpoint=args.eva_clip_checkpoint,
        whisper_model=args.whisper_model,
        whisper_compute_type=args.whisper_compute_type,
        bpe=args.bpe,
    )
    service = build_service(options)
    examples = len(service.examples())
    print(f"quag serve: {url(options)}  (checkpoint {options.checkpoint}; {examples} example videos; Ctrl-C stops)")
    run_server(options, service)
    return 0
