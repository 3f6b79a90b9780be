"""``quag predict VIDEO --query "..." --checkpoint CKPT``: moment, steps and captions for one video.

Runs :class:`quag.pipeline.predictor.Predictor`: the video is encoded once (frames with EVA-CLIP unless the
checkpoint is speech-only, Whisper transcript, MiniLM cue embeddings; cached by content in ``--cache-dir``), then
each ``--query`` is answered. Writes ``<out>/<video stem>.json`` (one end-to-end record per query, the format
``quag infer --end-to-end`` writes) and ``<out>/<video stem>.html`` (a timeline per query: moment, captioned steps,
transcript).

Arguments are checked before any model is loaded or any video decoded: an empty ``--query``, a missing video or
checkpoint, an ``--out`` that cannot be written. A speech-only checkpoint refuses a video without speech.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from quag.commands import add_device_argument


def query_text(text: str) -> str:
    """A ``--query`` value: any text with a word in it (checked while parsing, before any work)."""
    if not text.strip():
        raise argparse.ArgumentTypeError('empty query; give the words to look for, e.g. -q "crack the eggs"')
    return text


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path} is not a file" if path.exists() else f"{path} not found")
    return path


def existing_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path} not found")
    return path


def checkpoint_folder(text: str) -> Path:
    path = Path(text)
    if not (path / "model.safetensors").is_file():
        why = "holds no model.safetensors" if path.is_dir() else "not found"
        raise argparse.ArgumentTypeError(f"{path}: {why}; pass a checkpoint folder, e.g. runs/<name>/checkpoints/best")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=existing_file, help="video file (.mp4, ...)")
    parser.add_argument(
        "--query", "-q", action="append", required=True, type=query_text, help="text query (repeat for several)"
    )
    parser.add_argument(
        "--checkpoint", required=True, type=checkpoint_folder, help="checkpoint folder (runs/<name>/checkpoints/best)"
    )
    parser.add_argument(
        "--eva-clip-checkpoint",
        type=existing_file,
        default=None,
        help="EVA-CLIP-g/14 weights (eva_clip_psz14.pt); not needed for a speech-only checkpoint with MiniLM queries",
    )
    parser.add_argument(
        "--whisper-model",
        type=existing_path,
        default=None,
        help="faster-whisper model directory (default: Whisper tiny.en)",
    )
    parser.add_argument(
        "--whisper-compute-type",
        default="default",
        help="CTranslate2 compute type: default (the model's own), int8 (faster on CPU)",
    )
    parser.add_argument("--bpe", type=existing_file, default=None, help="CLIP BPE merges file (EVA-CLIP text queries)")
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="output folder")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache (default: $QUAG_CACHE_DIR or ~/.cache/quag/features)",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    add_device_argument(parser, "device of the model and the encoders")


def run(args: argparse.Namespace) -> int:
    from quag.inference.device import resolve_device
    from quag.io import prepare_output_folder
    from quag.pipeline.asr import WhisperOptions
    from quag.pipeline.predictor import Predictor, default_cache_dir, write_prediction_files

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    prepare_output_folder(args.out, f"--out {args.out}")  # before the video is encoded
    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    predictor = Predictor.from_checkpoint(
        args.checkpoint,
        eva_clip_checkpoint=args.eva_clip_checkpoint,
        whisper_model=args.whisper_model,
        bpe=args.bpe,
        device=str(resolve_device(args.device)),
        cache_dir=cache,
        whisper_options=WhisperOptions(compute_type=args.whisper_compute_type),
    )
    video = predictor.encode_video(args.video)
    predictions = [predictor.predict(q, video) for q in args.query]
    mode = "speech-only" if predictor.spec.speech_only else "frames + speech"
    note = f"checkpoint {args.checkpoint} ({mode}); {len(video.cues)} transcript cues"
    json_path, html_path = write_prediction_files(args.out, predictions, video, Path(args.video).stem, note=note)
    print(f"{video.video}: {video.duration:.1f} s, {len(video.cues)} transcript cues ({mode})")
    for p in predictions:
        print(f"query {p.query!r}: moment {p.moment[0]:.0f}-{p.moment[1]:.0f} s, {len(p.steps)} steps")
        for s in p.steps:
            print(f"  {s.start:6.0f}-{s.end:<6.0f} {s.caption}")
    print(f"wrote {json_path} and {html_path}")
    return 0
