"""Pad single-task samples into a :class:`Batch` with boolean masks (True = valid).

Shapes (letters as in :mod:`quag.models`): B batch, T frames (1 per second, padded to the longest video in the
batch; step-captioning windows have ``caption_frames`` rows), L caption tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from quag.tasks import Task


@dataclass
class Sample:
    """One example as the datasets produce it (NumPy, unpadded)."""

    task: Task
    video_id: str
    """Video key with ``.mp4`` (as in the annotation files)."""
    query: str
    duration: float
    video: np.ndarray  # (T, Dv) float32
    transcript: np.ndarray  # (T, Da) float32
    query_embedding: np.ndarray  # (Dq,) float32
    moment_mask: np.ndarray  # (T,) bool
    boundary_mask: np.ndarray | None = None  # (T,) bool, moment segmentation
    start_frame: int = -1  # moment retrieval target
    end_frame: int = -1
    segment_target: int = -1  # moment segmentation (training) target frame
    moment_frames: tuple[int, int] = (-1, -1)  # moment segmentation (evaluation) region
    boundary_frames: tuple[int, ...] = ()  # all GT boundary frames (reporting)
    caption: str = ""
    caption_ids: np.ndarray | None = None  # (L,) int64: [CLS] w_1 .. w_n, padded with 0
    caption_targets: np.ndarray | None = None  # (L,) int64: w_1 .. w_n [SEP], padded with 0
    step_index: int = -1
    window: tuple[int, int] = (-1, -1)  # step-captioning window in video frames (inclusive)


@dataclass
class Batch:
    """A padded single-task batch. Masks are ``torch.bool`` with True = valid.

    Attributes:
        video: (B, T, Dv) frame features, zero-padded.
        transcript: (B, T, Da) per-second transcript features, zero-padded.
        query_embedding: (B, Dq) query embeddings.
        video_mask: (B, T) True on real frames.
        moment_mask: (B, T) True inside the task's region (whole video for MR, allowed frames for MS,
            the window for SC); always False on padding.
        boundary_mask: (B, T) previous boundaries (MS) or None.
        start_target, end_target: (B,) MR target frames or None.
        segment_target: (B,) MS next-boundary frame or None (evaluation batches have none).
        moment_frames: (B, 2) MS region [start, end] frames or None.
        caption_ids, caption_targets: (B, L) decoder input / output ids (0 = [PAD]) or None.
        caption_mask: (B, L) True on real decoder-input tokens or None.
    """

    task: Task
    video: torch.Tensor
    transcript: torch.Tensor
    query_embedding: torch.Tensor
    video_mask: torch.Tensor
    moment_mask: torch.Tensor
    boundary_mask: torch.Tensor | None = None
    start_target: torch.Tensor | None = None
    end_target: torch.Tensor | None = None
    segment_target: torch.Tensor | None = None
    moment_frames: torch.Tensor | None = None
    caption_ids: torch.Tensor | None = None
    caption_targets: torch.Tensor | None = None
    caption_mask: torch.Tensor | None = None
    video_ids: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    step_indices: list[int] = field(default_factory=list)
    windows: list[tuple[int, int]] = field(default_factory=list)
    boundary_frames: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.video.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Move every tensor to ``device`` (returns a new Batch)."""
        kw: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
        return Batch(**kw)


def _pad(arrays: list[np.ndarray], length: int, dtype: torch.dtype) -> torch.Tensor:
    first = arrays[0]
    out = torch.zeros((len(arrays), length, *first.shape[1:]), dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = torch.from_numpy(np.ascontiguousarray(a))
    return out


def collate(samples: list[Sample]) -> Batch:
    """Pad a list of same-task samples into a :class:`Batch`."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    task = samples[0].task
    if any(s.task != task for s in samples):
        raise ValueError(f"a batch must hold one task, got {sorted({s.task for s in samples})}")
    T = max(s.video.shape[0] for s in samples)
    lengths = torch.tensor([s.video.shape[0] for s in samples])
    video_mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    batch = Batch(
        task=task,
        video=_pad([s.video for s in samples], T, torch.float32),
        transcript=_pad([s.transcript for s in samples], T, torch.float32),
        query_embedding=torch.from_numpy(np.stack([s.query_embedding for s in samples]).astype(np.float32)),
        video_mask=video_mask,
        moment_mask=_pad([s.moment_mask for s in samples], T, torch.bool),
        video_ids=[s.video_id for s in samples],
        queries=[s.query for s in samples],
        durations=[s.duration for s in samples],
        boundary_frames=[s.boundary_frames for s in samples],
    )
    if task == "moment_retrieval":
        batch.start_target = torch.tensor([s.start_frame for s in samples], dtype=torch.long)
        batch.end_target = torch.tensor([s.end_frame for s in samples], dtype=torch.long)
    elif task == "moment_segmentation":
        batch.boundary_mask = _pad([s.boundary_mask for s in samples], T, torch.bool)  # type: ignore[misc]
        if all(s.segment_target >= 0 for s in samples):
            batch.segment_target = torch.tensor([s.segment_target for s in samples], dtype=torch.long)
        batch.moment_frames = torch.tensor([s.moment_frames for s in samples], dtype=torch.long)
    elif task == "step_captioning":
        batch.captions = [s.caption for s in samples]
        batch.step_indices = [s.step_index for s in samples]
        batch.windows = [s.window for s in samples]
        if all(s.caption_ids is not None for s in samples):
            batch.caption_ids = torch.from_numpy(np.stack([s.caption_ids for s in samples]))  # type: ignore[misc]
            batch.caption_targets = torch.from_numpy(np.stack([s.caption_targets for s in samples]))  # type: ignore[misc]
            batch.caption_mask = batch.caption_ids != 0
    return batch


def trim_caption_padding(batch: Batch) -> Batch:
    """The batch with its caption tensors cut to its longest caption (``L`` -> longest ``[CLS] w_1 .. w_n``).

    Captions are stored padded to ``data.max_caption_tokens``; a batch's captions are usually far shorter. The
    cut positions hold [PAD] inputs and [PAD] targets only, and the decoder is causal, so the logits of every
    real token are unchanged: under ``train.caption_loss_padding=ignore`` the loss is the same, computed on a
    fraction of the positions. Under ``reference`` the [PAD] targets count, so the trainer does not trim then.
    Batches of other tasks are returned as they are.
    """
    if batch.caption_ids is None or batch.caption_mask is None:
        return batch
    length = max(int(batch.caption_mask.sum(dim=1).max()), 1)
    if length == batch.caption_ids.shape[1]:
        return batch
    batch.caption_ids = batch.caption_ids[:, :length]
    batch.caption_mask = batch.caption_mask[:, :length]
    if batch.caption_targets is not None:
        batch.caption_targets = batch.caption_targets[:, :length]
    return batch
