"""Checks a training runs before it writes anything: every file it will read, both splits, all problems at once.

The train and val annotations are parsed, and every feature the run's examples need (frames, transcript and its
embeddings, query embeddings) is read and checked as training would read it: present, readable, the spec's width,
finite, within the length policy. One :class:`~quag.data.features.FeatureError` then lists every bad file, so a
NaN in the last val video stops the run before step 1 instead of at the first validation.
"""

from __future__ import annotations

import logging
import time

from quag.config import ExperimentConfig
from quag.data import annotations as A
from quag.data.datasets import task_examples
from quag.data.features import OBTAIN_HINT, FeatureError, FeatureStore, check_feature_contents

logger = logging.getLogger(__name__)

MAX_LISTED = 20
"""Bad files listed one per line; the rest are counted."""


def load_run_splits(cfg: ExperimentConfig) -> tuple[list[A.VideoAnnotation], list[A.VideoAnnotation]]:
    """The train and val split records; one error naming every split file that cannot be read."""
    loaded: dict[str, list[A.VideoAnnotation]] = {}
    problems: list[str] = []
    for split in (cfg.data.train_split, cfg.data.val_split):
        if split in loaded:
            continue
        try:
            loaded[split] = A.load_split(cfg.data.root, split)
        except (ValueError, OSError) as e:
            problems.append(str(e).splitlines()[0])
    if problems:
        if len(problems) == 1:
            raise FeatureError(problems[0])
        raise FeatureError("the annotations cannot be read:\n  " + "\n  ".join(problems))
    return loaded[cfg.data.train_split], loaded[cfg.data.val_split]


def check_run_features(
    cfg: ExperimentConfig,
    store: FeatureStore,
    train_videos: list[A.VideoAnnotation],
    val_videos: list[A.VideoAnnotation],
) -> int:
    """Read every feature the run's examples need; raise one :class:`FeatureError` listing every bad file.

    Returns:
        The number of (video, length, query) items checked.
    """
    start = time.perf_counter()
    items: dict[tuple[str, int, str], None] = {}
    for videos, training in ((train_videos, True), (val_videos, False)):
        for task in cfg.tasks:
            for e in task_examples(task, videos, training):
                v: A.VideoAnnotation = e.video
                items[(v.video, v.num_frames, v.query)] = None
    problems = check_feature_contents(store, list(items))
    if problems:
        needs_hint = any(OBTAIN_HINT in p for p in problems)
        lines = [p.replace(f": {OBTAIN_HINT}", "") for p in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            lines.append(f"... and {len(problems) - MAX_LISTED} more")
        fix = f"; to obtain missing files: {OBTAIN_HINT}" if needs_hint else ""
        raise FeatureError(
            f"{len(problems)} bad feature file(s) under {store.root} (train split {cfg.data.train_split!r}, val split "
            f"{cfg.data.val_split!r}); nothing was written. Fix or re-create them{fix}:\n  " + "\n  ".join(lines)
        )
    logger.debug("checked the features of %d examples in %.1f s", len(items), time.perf_counter() - start)
    return len(items)
