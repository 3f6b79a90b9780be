"""``quag evaluate --task TASK PRED GT``: score a prediction file with the official HiREST metrics.

Prints a table and writes the report JSON (default: ``<PRED stem>.metrics.json`` beside the predictions).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from quag.commands import add_device_argument
from quag.evaluation.predictions import EVAL_TASKS

if TYPE_CHECKING:
    from quag.evaluation.captions import CaptionOptions


def caption_metric(name: str) -> str:
    """A ``--caption-metrics`` value in any case, or any output key of a scorer, as the scorer's name."""
    from quag.evaluation.metrics.captioning import SCORER_OF

    return SCORER_OF.get(name.lower(), name)  # argparse's choices check rejects unknown names


def add_caption_arguments(parser: argparse.ArgumentParser) -> None:
    """Step-captioning scorer options (shared with ``quag baselines``)."""
    from quag.evaluation.metrics.captioning import COCO_METRICS

    group = parser.add_argument_group("step captioning")
    group.add_argument(
        "--caption-metrics",
        nargs="+",
        type=caption_metric,
        choices=COCO_METRICS,
        default=list(COCO_METRICS),
        metavar="METRIC",
        help=f"coco-caption scorers to run, of {', '.join(COCO_METRICS)}; Bleu_4 also reports Bleu_1..Bleu_3, "
        "METEOR starts a Java process that loads for ~15 s",
    )
    group.add_argument(
        "--spice-corenlp",
        default=None,
        metavar="DIR",
        help="folder with stanford-corenlp-3.6.0.jar and -models.jar for SPICE, never downloaded "
        "(default: $QUAG_CORENLP_DIR, then pycocoevalcap's spice/lib)",
    )
    group.add_argument(
        "--nli-model",
        default=None,
        metavar="DIR",
        help="local transformers NLI sequence classifier for Entailment (default: none, Entailment not computed)",
    )
    group.add_argument(
        "--nli-entailment-label",
        default=None,
        help="entailment class name in the model's id2label (default: the label starting with 'entail')",
    )
    group.add_argument(
        "--bertscore-model",
        default=None,
        metavar="DIR",
        help="local transformers encoder for BERTScore_F1, officially roberta-large "
        "(default: none, BERTScore_F1 not computed)",
    )
    group.add_argument(
        "--bertscore-layer",
        type=int,
        default=None,
        help="hidden state for BERTScore (default: 17 for a 24-layer RoBERTa like roberta-large, else the last)",
    )
    add_device_argument(group, "device of the NLI and BERTScore models")
    group.add_argument("--java", default="java", help="Java executable")


def caption_options_from_args(args: argparse.Namespace) -> CaptionOptions:
    """Build :class:`~quag.evaluation.captions.CaptionOptions` from :func:`add_caption_arguments` flags."""
    from quag.evaluation.captions import CaptionOptions
    from quag.inference.device import resolve_device

    return CaptionOptions(
        metrics=tuple(args.caption_metrics),
        java=args.java,
        spice_corenlp_dir=args.spice_corenlp,
        nli_model=args.nli_model,
        nli_entailment_label=args.nli_entailment_label,
        bertscore_model=args.bertscore_model,
        bertscore_layer=args.bertscore_layer,
        device=str(resolve_device(args.device)),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=EVAL_TASKS, help="task of the predictions")
    parser.add_argument("pred", type=Path, help="predictions: official JSON, or JSONL records (.jsonl)")
    parser.add_argument(
        "gt",
        type=Path,
        help="ground truth: splits/all_data_<split>.json (VR, MR; also accepted for MS, SC) or the "
        "formatted step file (MS, SC), e.g. val_testing/formated_moment_evaluation_gt.json",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report JSON (default: <PRED stem>.metrics.json beside the predictions)",
    )
    parser.add_argument("--per-category", action="store_true", help="add one row per HiREST category")
    parser.add_argument(
        "--categories",
        type=Path,
        default=None,
        help="categories.json (default: evaluation/categories.json of the GT file's dataset root)",
    )
    parser.add_argument(
        "--preprocess-moment-bounds",
        action="store_true",
        help="moment_segmentation: the official GT-span clipping + NMS + gap refill before scoring "
        "(the official scripts always use it)",
    )
    parser.add_argument(
        "--write-preprocessed",
        type=Path,
        default=None,
        metavar="PATH",
        help="with --preprocess-moment-bounds: also write the processed predictions here "
        "(the official --replace_pred_moment_bounds overwrote the input file)",
    )
    add_caption_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from quag.evaluation.evaluate import evaluate_files, format_table, preprocess_segmentation
    from quag.evaluation.ground_truth import step_ground_truth
    from quag.evaluation.predictions import load_predictions, write_predictions
    from quag.io import atomic_write_json, prepare_output_folder

    if args.write_preprocessed is not None and not (
        args.task == "moment_segmentation" and args.preprocess_moment_bounds
    ):
        raise ValueError("--write-preprocessed needs --task moment_segmentation and --preprocess-moment-bounds")
    out = args.out or args.pred.with_name(f"{args.pred.stem}.metrics.json")
    # outputs are checked before any work starts (caption scorers can take minutes)
    prepare_output_folder(out.parent, f"--out {out}" if args.out else f"report {out}")
    if args.write_preprocessed is not None:
        prepare_output_folder(args.write_preprocessed.parent, f"--write-preprocessed {args.write_preprocessed}")
    options = {}
    if args.task == "moment_segmentation":
        options["preprocess_moment_bounds"] = args.preprocess_moment_bounds
    if args.task == "step_captioning":
        options["caption_options"] = caption_options_from_args(args)
    start = time.perf_counter()
    report = evaluate_files(
        args.pred, args.gt, args.task, categories_path=args.categories, per_category=args.per_category, **options
    )
    elapsed = time.perf_counter() - start
    atomic_write_json(out, report)
    if args.write_preprocessed is not None:
        processed = preprocess_segmentation(load_predictions(args.pred, args.task), step_ground_truth(args.gt))
        write_predictions(args.write_preprocessed, processed)
    print(format_table(report))
    outside = report["counts"].get("out_of_range", 0)
    if outside:
        query, video, bounds, duration = report["out_of_range_items"][0]
        print(
            f"warning: {outside} predicted moment(s) lie outside their video (e.g. {bounds} for {video!r}, "
            f"{duration:.1f} s, query {query!r}); scored as given, as the official protocol does",
            file=sys.stderr,
        )
    print(f"evaluated in {elapsed:.1f} s; report: {out}")
    return 0
