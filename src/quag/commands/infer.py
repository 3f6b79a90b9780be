"""``quag infer CKPT --split val``: decode a split with a checkpoint; write the official prediction files.

Outputs in ``--out`` (default ``<run>/predictions``): ``<split>_<task>.json`` in the official HiREST formats,
``<split>_predictions.jsonl`` (one record per video), and with ``--end-to-end`` ``<split>_end_to_end.jsonl``
(moment -> steps of that moment -> a caption per step). ``--evaluate`` scores them with the official metrics.

``--tasks video_retrieval`` (also spelled ``--task``) ranks the split's videos for each query, zero-shot, by
pooled features (:mod:`quag.inference.retrieval`) and writes ``<split>_video_retrieval.json``; it needs no
checkpoint: ``quag infer --task video_retrieval --data ROOT --split val --evaluate``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quag.commands import add_device_argument
from quag.tasks import TASKS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        nargs="?",
        help="checkpoint folder (runs/<name>/checkpoints/best); optional for --task video_retrieval with --data",
    )
    parser.add_argument("--split", default="val", help="split to decode")
    parser.add_argument("--data", help="dataset root (default: the checkpoint's data.root)")
    parser.add_argument("--out", help="output folder (default: <run>/predictions, or predictions without a checkpoint)")
    parser.add_argument(
        "--tasks",
        "--task",
        nargs="+",
        choices=[*TASKS, "video_retrieval"],
        help="tasks to decode (default: the tasks the model was trained on); video_retrieval ranks the split's "
        "videos for each query, zero-shot",
    )
    parser.add_argument(
        "--retrieval-stream",
        choices=["auto", "visual", "transcript"],
        default="auto",
        help="features pooled by video_retrieval: frames (needs queries from the frame encoder's text tower), "
        "transcript (needs queries from the transcript encoder), or auto (frames when possible)",
    )
    parser.add_argument("--end-to-end", action="store_true", help="also run retrieval -> segmentation -> captioning")
    parser.add_argument("--evaluate", action="store_true", help="score the predictions against the split")
    add_device_argument(parser, "decoding device")
    parser.add_argument("overrides", nargs="*", help="eval.key=value decoding overrides (e.g. eval.num_beams=5)")


def run(args: argparse.Namespace) -> int:
    from quag.inference.api import run_inference

    summary = run_inference(
        args.checkpoint,
        split=args.split,
        data_root=args.data,
        out_dir=args.out,
        tasks=args.tasks,
        end_to_end=args.end_to_end,
        evaluate=args.evaluate,
        device=args.device,
        overrides=args.overrides,
        retrieval_stream=args.retrieval_stream,
    )
    for path in summary["files"]:
        print(f"wrote {path}")
    if summary.get("metrics"):
        print(json.dumps(summary["metrics"], indent=2))
        if summary.get("metrics_file"):
            print(f"metrics written to {Path(summary['metrics_file'])}")
    return 0
