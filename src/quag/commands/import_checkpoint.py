"""``quag import-checkpoint PATH OUT --arch {joint,quag}``: the authors' checkpoint as a quag checkpoint folder.

``PATH`` is the released ``HiREST_BEST.pth`` (the Joint baseline) or a QUAG checkpoint of the authors' code; ``OUT``
is the folder to write, which ``quag infer``, ``quag predict`` and ``Predictor.from_checkpoint`` then accept
(:mod:`quag.inference.reference_import`; docs/pipeline.md shows the commands from the file to predictions).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the authors' checkpoint file (HiREST_BEST.pth, a QUAG .pth)")
    parser.add_argument("out", type=Path, help="checkpoint folder to write (e.g. runs/hirest_joint_release)")
    parser.add_argument(
        "--arch",
        choices=["joint", "quag"],
        default=None,
        help="architecture of the file: joint (HiREST_BEST.pth) or quag (default: detected from its keys)",
    )


def run(args: argparse.Namespace) -> int:
    from quag.inference.reference_import import import_reference_checkpoint

    result = import_reference_checkpoint(args.path, args.out, args.arch)
    extra = f", {len(result.dropped)} frozen EVA-CLIP keys left out" if result.dropped else ""
    print(
        f"imported {args.path} ({result.arch}): {result.tensors} tensors, {len(result.skipped)} keys of unused "
        f"modules skipped{extra}"
    )
    print(f"wrote {result.folder}: use it with `quag predict VIDEO -q QUERY --checkpoint {result.folder} "
          "--eva-clip-checkpoint eva_clip_psz14.pt` or `quag infer`")  # fmt: skip
    return 0
