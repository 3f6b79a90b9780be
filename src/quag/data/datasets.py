"""One torch ``Dataset`` per task over the shared :class:`~quag.data.features.FeatureStore`.

Each item is a :class:`~quag.data.collate.Sample` (NumPy, unpadded); :func:`~quag.data.collate.collate` pads.

* ``moment_retrieval``: the whole video, moment mask = all frames, targets = frames of the moment bounds.
* ``moment_segmentation``: training items are teacher forced (boundary mask at ``b_0..b_i``, moment mask on
  ``[b_i, moment end]``, target ``b_{i+1}``); evaluation items carry the moment (mask on it, boundary at its start).
* ``step_captioning``: the step window squeezed to ``caption_frames`` rows (``data.caption_window``), masks all
  valid, and the CLIP4Caption decoder input/output ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from quag.config import DataConfig
from quag.data import annotations as A
from quag.data.collate import Sample
from quag.data.features import FeatureSource, FeatureStore
from quag.data.timestamps import window_indices
from quag.data.tokenizer import get_tokenizer
from quag.tasks import Task


class TaskDataset(Dataset):
    """Examples of one task, read through a feature store.

    Args:
        task: the task.
        examples: examples built by :mod:`quag.data.annotations` for that task.
        store: where the features come from (a :class:`FeatureStore` or any :class:`FeatureSource`).
        caption_frames: rows of a step-captioning window.
        caption_window: ``resample`` | ``reference`` | ``full`` (see :func:`quag.data.timestamps.window_indices`).
        max_caption_tokens: decoder sequence length.
    """

    def __init__(
        self,
        task: Task,
        examples: Sequence[Any],
        store: FeatureSource,
        caption_frames: int = 20,
        caption_window: str = "resample",
        max_caption_tokens: int = 48,
    ) -> None:
        self.task = task
        self.examples = list(examples)
        self.store = store
        self.caption_frames = caption_frames
        self.caption_window = caption_window
        self.max_caption_tokens = max_caption_tokens
        self.tokenizer = get_tokenizer() if task == "step_captioning" else None

    def __len__(self) -> int:
        return len(self.examples)

    def videos(self) -> list[A.VideoAnnotation]:
        """Unique videos of this dataset, in first-seen order."""
        seen: dict[str, A.VideoAnnotation] = {}
        for e in self.examples:
            seen.setdefault(e.video.video, e.video)
        return list(seen.values())

    def lengths(self) -> list[int]:
        """Rows of every example's padded inputs, from the annotations alone (no feature file is read).

        What :func:`~quag.data.collate.collate` pads on: the video's frames for moment retrieval and segmentation,
        the window's rows for step captioning (``caption_frames`` unless ``caption_window`` is ``full``).
        """
        out = []
        for e in self.examples:
            if isinstance(e, A.CaptionExample):
                out.append(len(window_indices(e.window[0], e.window[1], self.caption_frames, self.caption_window)))
            else:
                out.append(e.video.num_frames)
        return out

    def _features(self, v: A.VideoAnnotation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = v.num_frames
        return self.store.visual(v.video, n), self.store.transcript(v.video, n), self.store.query_embedding(v.query)

    def __getitem__(self, i: int) -> Sample:
        e = self.examples[i]
        v: A.VideoAnnotation = e.video
        video, transcript, query = self._features(v)
        n = v.num_frames
        common: dict[str, Any] = dict(
            task=self.task, video_id=v.video, query=v.query, duration=v.duration, query_embedding=query
        )
        if isinstance(e, A.MomentRetrievalExample):
            return Sample(
                **common,
                video=video,
                transcript=transcript,
                moment_mask=np.ones(n, dtype=bool),
                start_frame=e.start_frame,
                end_frame=e.end_frame,
            )
        if isinstance(e, (A.SegmentationTrainExample, A.SegmentationEvalExample)):
            moment = np.zeros(n, dtype=bool)
            boundary = np.zeros(n, dtype=bool)
            if isinstance(e, A.SegmentationTrainExample):
                moment[e.region[0] : e.region[1] + 1] = True
                boundary[list(e.prev_boundary_frames)] = True
                extra: dict[str, Any] = dict(segment_target=e.target_frame, moment_frames=(e.region[0], e.region[1]))
            else:
                moment[e.moment_frames[0] : e.moment_frames[1] + 1] = True
                boundary[e.moment_frames[0]] = True
                extra = dict(moment_frames=e.moment_frames)
            return Sample(
                **common,
                video=video,
                transcript=transcript,
                moment_mask=moment,
                boundary_mask=boundary,
                boundary_frames=e.boundary_frames,
                **extra,
            )
        if isinstance(e, A.CaptionExample):
            idx = window_indices(e.window[0], e.window[1], self.caption_frames, self.caption_window)
            assert self.tokenizer is not None
            ids, targets = self.tokenizer.caption_targets(e.step.caption, self.max_caption_tokens)
            return Sample(
                **common,
                video=video[idx],
                transcript=transcript[idx],
                moment_mask=np.ones(len(idx), dtype=bool),
                caption=e.step.caption,
                caption_ids=ids,
                caption_targets=targets,
                step_index=e.step.index,
                window=e.window,
            )
        raise TypeError(f"unsupported example type {type(e).__name__}")


def task_examples(task: Task, videos: Sequence[A.VideoAnnotation], training: bool) -> list[Any]:
    """Examples of ``task`` from split records (segmentation: teacher-forced when ``training``)."""
    if task == "moment_retrieval":
        return A.moment_retrieval_examples(videos)
    if task == "moment_segmentation":
        return A.segmentation_train_examples(videos) if training else A.segmentation_eval_examples(videos)
    if task == "step_captioning":
        return A.caption_examples(videos)
    raise ValueError(f"unknown task {task!r}")


def build_datasets(
    cfg: DataConfig,
    split: str,
    tasks: Sequence[Task],
    training: bool,
    store: FeatureStore | None = None,
    videos: Sequence[A.VideoAnnotation] | None = None,
) -> dict[Task, TaskDataset]:
    """Datasets of ``tasks`` on ``split`` of ``cfg.root``; every needed feature file is checked up front."""
    store = store or make_store(cfg)
    videos = list(videos) if videos is not None else A.load_split(cfg.root, split)
    out: dict[Task, TaskDataset] = {}
    for task in tasks:
        out[task] = TaskDataset(
            task,
            task_examples(task, videos, training),
            store,
            caption_frames=cfg.caption_frames,
            caption_window=cfg.caption_window,
            max_caption_tokens=cfg.max_caption_tokens,
        )
    needed = sorted({v.video for ds in out.values() for v in ds.videos()})
    store.check_files(needed)
    return out


def make_store(cfg: DataConfig) -> FeatureStore:
    return FeatureStore(
        cfg.root,
        length_tolerance=cfg.length_tolerance,
        transcript_alignment=cfg.transcript_alignment,
        cache_mb=cfg.cache_mb,
    )
