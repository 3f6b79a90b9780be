"""``quag encode-queries ROOT``: embed every query of a dataset root once (see :mod:`quag.pipeline.queries`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from quag.commands import add_device_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="dataset root with splits/all_data_<split>.json")
    parser.add_argument(
        "--encoder",
        choices=("auto", "eva-clip-text", "minilm"),
        default="auto",
        help="eva-clip-text (the reference; needs --checkpoint) or minilm; auto = eva-clip-text "
        "when --checkpoint is given, else minilm",
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="EVA-CLIP checkpoint (eva_clip_psz14.pt)")
    parser.add_argument(
        "--bpe",
        type=Path,
        default=None,
        help="CLIP BPE vocabulary bpe_simple_vocab_16e6.txt.gz (default: the one of the openai-clip package)",
    )
    add_device_argument(parser, "device of the query encoder")


def run(args: argparse.Namespace) -> int:
    from quag.inference.device import resolve_device
    from quag.pipeline.queries import encode_queries, load_query_encoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = args.encoder
    if name == "auto":
        name = "eva-clip-text" if args.checkpoint is not None else "minilm"
    device = str(resolve_device(args.device))
    encoder = load_query_encoder(name, checkpoint=args.checkpoint, bpe_path=args.bpe, device=device)
    path = encode_queries(args.root, encoder)
    print(f"wrote {path} ({encoder.name}, {encoder.dim}-d); feature_spec.json updated")
    return 0
