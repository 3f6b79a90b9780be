"""Trivial baselines that every report can print beside a model, built from train annotations only.

Each baseline writes predictions in the official formats (:mod:`quag.evaluation.predictions`) for the evaluated
split's ground truth, and is scored by the same evaluator as a model:

==================== =================== ===================================================================
task                 baseline            definition
==================== =================== ===================================================================
moment_retrieval     ``whole_video``     ``[0, v_duration]`` for every clip video
moment_retrieval     ``mean_span``       ``[a * D, b * D]`` with ``a``, ``b`` the mean of ``start / v_duration``
                                         and ``end / v_duration`` over the train moments (relevant and clip)
moment_segmentation  ``uniform_steps``   the GT moment ``[first step start, last step end]`` (which the
                                         official protocol gives the model) cut into ``K`` equal segments,
                                         ``K`` = the train median number of steps per video (rounded half up)
step_captioning      ``nearest_caption`` for an evaluated video with query ``q``: the train video with steps
                                         whose query is most similar to ``q`` (cosine of sentence embeddings,
                                         all-MiniLM-L6-v2 in ``quag baselines``; ties -> first in the train
                                         file); its step
                                         headings are assigned to the evaluated steps in order, repeating its
                                         last heading when it has fewer steps
step_captioning      ``frequent_caption`` the most frequent train step heading (lowercased, stripped; ties ->
                                         first seen) for every step
==================== =================== ===================================================================

Nothing here reads features; the baselines need only the annotation files.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quag.data.annotations import EVAL_GT_FILES, VideoAnnotation, load_split
from quag.data.text_encoder import Encode, TextEncoder, encode_function
from quag.evaluation.captions import CaptionOptions
from quag.evaluation.evaluate import evaluate_predictions
from quag.evaluation.ground_truth import Categories, StepGroundTruth, step_ground_truth, steps_from_split
from quag.evaluation.metrics.captioning import MeteorScorer

QueryEmbedding = TextEncoder | Encode | Mapping[str, np.ndarray]
"""A sentence encoder, its ``texts -> (N, D)`` function, or a precomputed ``{text: vector}`` table."""


def _train_step_videos(train: Iterable[VideoAnnotation]) -> list[VideoAnnotation]:
    return [v for v in train if v.relevant and v.clip and v.steps]


def whole_video_moments(videos: Iterable[VideoAnnotation]) -> dict[str, Any]:
    """Official moment-retrieval predictions ``[0, v_duration]`` for every relevant clip video."""
    out: dict[str, Any] = {}
    for v in videos:
        if v.relevant and v.clip:
            out.setdefault(v.query, {})[v.video] = {"bounds": [0.0, v.duration]}
    return out


def mean_relative_span(train: Iterable[VideoAnnotation]) -> tuple[float, float]:
    """Mean of ``start / v_duration`` and of ``end / v_duration`` over the train moments (relevant and clip)."""
    spans = [(v.bounds[0] / v.duration, v.bounds[1] / v.duration) for v in train if v.relevant and v.clip]
    if not spans:
        raise ValueError("no train moments (relevant and clip videos) to average")
    a, b = np.mean(np.array(spans), axis=0)
    return float(a), float(b)


def mean_span_moments(videos: Iterable[VideoAnnotation], relative: tuple[float, float]) -> dict[str, Any]:
    """Official moment-retrieval predictions ``[a * D, b * D]`` for every relevant clip video."""
    out: dict[str, Any] = {}
    for v in videos:
        if v.relevant and v.clip:
            out.setdefault(v.query, {})[v.video] = {"bounds": [relative[0] * v.duration, relative[1] * v.duration]}
    return out


def median_num_steps(train: Iterable[VideoAnnotation]) -> int:
    """Median number of steps over train videos with steps, rounded half up (at least 1)."""
    counts = [len(v.steps) for v in _train_step_videos(train)]
    if not counts:
        raise ValueError("no train videos with steps")
    return max(1, math.floor(float(np.median(counts)) + 0.5))


def uniform_segments(ground_truth: Mapping[str, StepGroundTruth], num_steps: int) -> dict[str, Any]:
    """Official moment-segmentation predictions: each GT moment cut into ``num_steps`` equal segments."""
    out = {}
    for video, gt in ground_truth.items():
        lo, hi = gt.span
        edges = [lo + (hi - lo) * k / num_steps for k in range(num_steps + 1)]
        out[video] = {"bounds": [[edges[k], edges[k + 1]] for k in range(num_steps)]}
    return out


def most_frequent_caption(train: Iterable[VideoAnnotation]) -> str:
    """The most frequent train step heading, lowercased and stripped (ties: the first seen)."""
    counts = Counter(s.caption.strip().lower() for v in _train_step_videos(train) for s in v.steps)
    if not counts:
        raise ValueError("no train step headings")
    return counts.most_common(1)[0][0]  # most_common keeps first-seen order among equal counts


def constant_captions(ground_truth: Mapping[str, StepGroundTruth], caption: str) -> dict[str, Any]:
    """Official step-captioning predictions with the same caption for every step."""
    return {video: {"captions": [{"sentence": caption} for _ in gt.sentences]} for video, gt in ground_truth.items()}


def _embedding_table(texts: Sequence[str], embed: QueryEmbedding) -> np.ndarray:
    if isinstance(embed, Mapping):
        missing = [t for t in texts if t not in embed]
        if missing:
            raise KeyError(f"no precomputed embedding for {len(missing)} queries, e.g. {missing[0]!r}")
        table = np.stack([np.asarray(embed[t], dtype=np.float64) for t in texts])
    else:
        table = np.asarray(encode_function(embed)(list(texts)), dtype=np.float64)
    if table.shape[0] != len(texts):
        raise ValueError(f"the embedder returned {table.shape[0]} rows for {len(texts)} texts")
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    return table / np.where(norms == 0, 1, norms)


def nearest_train_captions(
    train: Iterable[VideoAnnotation],
    videos: Iterable[VideoAnnotation],
    ground_truth: Mapping[str, StepGroundTruth],
    embed: QueryEmbedding,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Official step-captioning predictions copied from the train video with the most similar query.

    Args:
        train: train split records.
        videos: records of the evaluated split (they give each GT video its query).
        ground_truth: ``{video: StepGroundTruth}`` to caption.
        embed: a sentence encoder, its ``texts -> (N, D)`` function, or a precomputed ``{text: vector}`` table.

    Returns:
        ``(predictions, {evaluated video: train video it copied})``.
    """
    pool = _train_step_videos(train)
    if not pool:
        raise ValueError("no train videos with steps to copy captions from")
    query_of = {v.video: v.query for v in videos}
    lacking = [v for v in ground_truth if v not in query_of]
    if lacking:
        raise ValueError(f"{len(lacking)} ground-truth videos have no query in the split, e.g. {lacking[0]!r}")
    train_queries = sorted({v.query for v in pool})
    eval_queries = sorted({query_of[v] for v in ground_truth})
    table = _embedding_table([*train_queries, *eval_queries], embed)
    train_emb, eval_emb = table[: len(train_queries)], table[len(train_queries) :]
    row_of = {q: i for i, q in enumerate(train_queries)}
    pool_emb = train_emb[[row_of[v.query] for v in pool]]  # (videos in the pool, D), train file order
    sims = eval_emb @ pool_emb.T  # (eval queries, pool videos)
    choice = {q: pool[int(np.argmax(sims[i]))] for i, q in enumerate(eval_queries)}  # argmax: first of ties
    preds, source = {}, {}
    for video, gt in ground_truth.items():
        donor = choice[query_of[video]]
        headings = [s.caption for s in donor.steps]
        preds[video] = {
            "captions": [{"sentence": headings[min(i, len(headings) - 1)]} for i in range(len(gt.sentences))]
        }
        source[video] = donor.video
    return preds, source


def run_baselines(
    root: str | Path,
    split: str = "val",
    *,
    embed: QueryEmbedding,
    caption_options: CaptionOptions | None = None,
    per_category: bool = False,
    meteor: MeteorScorer | None = None,
) -> dict[str, Any]:
    """Build and score every baseline on ``split`` of a HiREST root.

    Moment retrieval is scored against the split file; segmentation and captioning against the split's
    formatted step file when the root has one (``val_testing/formated_moment_evaluation_gt.json``,
    ``evaluation/formatted_moment_evaluation_gt.json``), else against the split file's steps.

    Args:
        root: HiREST root (``splits/``, ``evaluation/``).
        split: split to score.
        embed: query embeddings of ``nearest_caption``: an encoder (reported by its name; ``quag baselines``
            passes all-MiniLM-L6-v2), a ``texts -> (N, D)`` function or a precomputed ``{text: vector}`` table.
        caption_options: step-captioning metrics and scorers.
        per_category: also score each HiREST category.
        meteor: a running METEOR scorer to reuse (default: one started and closed here).

    Returns:
        ``{"split", "ground_truth", "parameters", "results": {task: {baseline: report}}, "notes"}``.
    """
    root = Path(root)
    train, videos = load_split(root, "train"), load_split(root, split)
    gt_file = root / EVAL_GT_FILES[split] if split in EVAL_GT_FILES else None
    steps = step_ground_truth(gt_file) if gt_file is not None and gt_file.is_file() else steps_from_split(videos)
    categories = None
    if per_category:
        categories = Categories.from_file(root / "evaluation" / "categories.json")
    if isinstance(embed, Mapping):
        embed_name = "precomputed table"
    else:
        embed_name = embed.name if isinstance(embed, TextEncoder) else "given embedder"

    relative = mean_relative_span(train)
    k = median_num_steps(train)
    frequent = most_frequent_caption(train)
    nearest, donors = nearest_train_captions(train, videos, steps, embed)
    common: dict[str, Any] = {"categories": categories, "per_category": per_category}
    own_meteor = meteor is None
    meteor = meteor or MeteorScorer()
    try:
        caption = {"caption_options": caption_options, "meteor": meteor, **common}
        results = {
            "moment_retrieval": {
                "whole_video": evaluate_predictions(whole_video_moments(videos), videos, "moment_retrieval", **common),
                "mean_span": evaluate_predictions(
                    mean_span_moments(videos, relative), videos, "moment_retrieval", **common
                ),
            },
            "moment_segmentation": {
                "uniform_steps": evaluate_predictions(
                    uniform_segments(steps, k), steps, "moment_segmentation", **common
                ),
                "uniform_steps+preprocess": evaluate_predictions(
                    uniform_segments(steps, k), steps, "moment_segmentation", preprocess_moment_bounds=True, **common
                ),
            },
            "step_captioning": {
                "nearest_caption": evaluate_predictions(nearest, steps, "step_captioning", **caption),
                "frequent_caption": evaluate_predictions(
                    constant_captions(steps, frequent), steps, "step_captioning", **caption
                ),
            },
        }
    finally:
        if own_meteor:
            meteor.close()
    notes = []
    if split == "test":
        notes.append("test moments in all_data_test.json are masked to [0, 1]: moment retrieval scores are meaningless")
    return {
        "split": split,
        "ground_truth": {
            "moment_retrieval": str(root / f"splits/all_data_{split}.json"),
            "steps": str(gt_file) if gt_file is not None and gt_file.is_file() else "split file steps",
        },
        "parameters": {
            "mean_relative_span": list(relative),
            "median_num_steps": k,
            "most_frequent_caption": frequent,
            "nearest_caption_embedder": embed_name,
            "nearest_caption_donors": donors,
        },
        "results": results,
        "notes": notes,
    }
