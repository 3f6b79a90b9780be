"""Multi-task loading: single-task batches interleaved in a seeded, proportional, shuffled order each epoch.

This is what the reference's ``MultitaskLoader(sampling='roundrobin')`` really does (docs/training.md):
each epoch lists every task once per batch of its loader, shuffles that list and consumes it, so every batch of
every task is seen exactly once per epoch and tasks are mixed in proportion to their sizes. Unlike the
reference, the length stays constant during the epoch, the order depends on ``(seed, epoch)`` only, and the
examples inside each task are shuffled by a seeded :class:`~torch.utils.data.DistributedSampler` (also with one
process), whose ``set_epoch`` is always called. Every rank sees the same task order, so DDP ranks stay in step.

A run resumed at step ``k`` of an epoch (``set_epoch(epoch, start=k)``) yields exactly the batches an
uninterrupted run would have yielded from step ``k`` on.

``bucketing="length"`` groups examples of similar length into the same batch, so that a batch pads less
(docs/training.md, "Length-bucketed batches"): each task's shuffled indices are cut into mega-batches of
``bucket_size`` batches, each mega-batch is sorted by length and cut into batches, and the batches are shuffled
with a generator seeded by ``(seed, epoch, task)``. The number of batches per task, and so the task order, stay
as without bucketing; only which examples share a batch changes.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from quag.data.collate import Batch, collate
from quag.tasks import Task

Bucketing = Literal["none", "length"]

DEFAULT_BUCKET_SIZE = 50
"""Batches per mega-batch under ``bucketing="length"``. A mega-batch is a random sample of the task's examples, so
once sorted its neighbours are close in length; 50 batches (250 examples at batch 5) make them close enough while
the examples that can share a batch still change every epoch. Sorting a whole epoch would pad least but make the
same batches every epoch (docs/training.md, "Length-bucketed batches")."""


class _EpochBatches(Sampler[list[int]]):
    """Batches of a sampler's indices for the current epoch, optionally skipping the first ``skip``.

    With ``lengths``, the indices are length-bucketed per mega-batch of ``bucket_size`` batches and the batch
    order is shuffled by ``(seed, epoch, name)``; without, consecutive indices form the batches.
    """

    def __init__(
        self,
        sampler: DistributedSampler,
        batch_size: int,
        name: str = "",
        lengths: Sequence[int] | None = None,
        bucket_size: int = DEFAULT_BUCKET_SIZE,
    ) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.name = name
        self.lengths = lengths
        self.bucket_size = bucket_size
        self.skip = 0

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def batches(self) -> list[list[int]]:
        """Every batch of the sampler's current epoch, from the first (``skip`` does not apply)."""
        idx = list(self.sampler)
        bs = self.batch_size
        if self.lengths is None:
            return [idx[b * bs : (b + 1) * bs] for b in range(len(self))]
        lengths = self.lengths
        mega = bs * self.bucket_size
        out: list[list[int]] = []
        for m in range(0, len(idx), mega):
            # a stable sort: examples of equal length keep their shuffled order
            chunk = sorted(idx[m : m + mega], key=lambda i: lengths[i])
            # mega is a multiple of bs, so only the epoch's last batch can be short, as without bucketing
            out += [chunk[b : b + bs] for b in range(0, len(chunk), bs)]
        # seeded by (seed, epoch, task) alone: the same on every rank, and in a run resumed mid-epoch
        random.Random(f"quag-buckets-{self.sampler.seed}-{self.sampler.epoch}-{self.name}").shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.skip :]


def _check_lengths(
    datasets: Mapping[Task, Dataset], lengths: Mapping[Task, Sequence[int]] | None
) -> dict[Task, list[int]]:
    """Per-task lengths for ``bucketing="length"``, checked against the datasets."""
    if lengths is None:
        raise ValueError(
            f"bucketing='length' needs lengths for task(s) {list(datasets)}: pass lengths={{task: dataset.lengths()}}"
        )
    out: dict[Task, list[int]] = {}
    for task, ds in datasets.items():
        if task not in lengths:
            raise ValueError(f"bucketing='length': no lengths for task {task!r}: pass lengths[{task!r}]")
        values = [int(n) for n in lengths[task]]
        if len(values) != len(ds):  # type: ignore[arg-type]
            raise ValueError(
                f"bucketing='length': task {task!r} has {len(ds)} examples but {len(values)} lengths"  # type: ignore[arg-type]
            )
        out[task] = values
    return out


class MultiTaskLoader:
    """Iterate ``(task, batch)`` pairs over several single-task datasets.

    Args:
        datasets: task -> dataset.
        batch_size: examples per batch (the last batch of a task may be smaller).
        seed: seeds both the task order and the per-task shuffles.
        num_replicas, rank: data-parallel world size and this process's rank (``DistributedSampler``).
        num_workers: DataLoader worker processes per task.
        collate_fn: builds a batch from samples.
        bucketing: ``none`` (consecutive shuffled examples form a batch) or ``length`` (examples of similar
            length share a batch; see the module docstring).
        lengths: task -> the length of every example (what the collate pads on, ``TaskDataset.lengths()``);
            needed by ``bucketing="length"``.
        bucket_size: batches per mega-batch under ``bucketing="length"``.
    """

    def __init__(
        self,
        datasets: Mapping[Task, Dataset],
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Batch] = collate,
        bucketing: Bucketing = "none",
        lengths: Mapping[Task, Sequence[int]] | None = None,
        bucket_size: int = DEFAULT_BUCKET_SIZE,
    ) -> None:
        empty = [t for t, ds in datasets.items() if len(ds) == 0]  # type: ignore[arg-type]
        if empty:
            raise ValueError(f"no training examples for task(s) {empty}: check the split file and the task filters")
        if bucketing not in ("none", "length"):
            raise ValueError(f"bucketing must be 'none' or 'length', got {bucketing!r}")
        if bucket_size < 1:
            raise ValueError(f"bucket_size must be >= 1 batch, got {bucket_size}")
        checked = _check_lengths(datasets, lengths) if bucketing == "length" else {}
        self.bucketing = bucketing
        self.tasks: list[Task] = list(datasets)
        self.seed = seed
        self.epoch = 0
        self.batch_samplers: dict[Task, _EpochBatches] = {}
        self.loaders: dict[Task, DataLoader] = {}
        for task, ds in datasets.items():
            sampler: DistributedSampler = DistributedSampler(
                ds, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed
            )
            bs = _EpochBatches(sampler, batch_size, task, checked.get(task), bucket_size)
            self.batch_samplers[task] = bs
            # a private generator: creating an iterator must not draw from the global RNG (dropout), or a
            # resumed run would see other random numbers than an uninterrupted one
            self.loaders[task] = DataLoader(
                ds,
                batch_sampler=bs,
                num_workers=num_workers,
                collate_fn=collate_fn,
                generator=torch.Generator().manual_seed(seed),
            )
        self._start = 0

    def batches_per_task(self) -> dict[Task, int]:
        return {t: len(bs) for t, bs in self.batch_samplers.items()}

    def __len__(self) -> int:
        return sum(self.batches_per_task().values())

    def schedule(self, epoch: int | None = None) -> list[Task]:
        """The task of every step of ``epoch`` (same on every rank)."""
        epoch = self.epoch if epoch is None else epoch
        order = [t for t, n in self.batches_per_task().items() for _ in range(n)]
        random.Random(f"quag-multitask-{self.seed}-{epoch}").shuffle(order)
        return order

    def plan(self) -> list[tuple[Task, list[int]]]:
        """The task and this rank's example indices of every step of the selected epoch, from step 0.

        Nothing is loaded; this is what iterating the epoch from its start would yield, as indices.
        """
        batches = {t: iter(bs.batches()) for t, bs in self.batch_samplers.items()}
        return [(t, next(batches[t])) for t in self.schedule()]

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch (reaches every task sampler) and, to resume, the first step to yield."""
        if not 0 <= start <= len(self):
            raise ValueError(f"start step {start} outside this epoch's {len(self)} steps")
        self.epoch = epoch
        self._start = start
        done = Counter(self.schedule(epoch)[:start])
        for task, bs in self.batch_samplers.items():
            bs.sampler.set_epoch(epoch)
            bs.skip = done[task]

    def __iter__(self) -> Iterator[tuple[Task, Batch]]:
        order = self.schedule()[self._start :]
        iters: dict[Task, Iterator[Batch]] = {}
        for task in order:
            if task not in iters:
                iters[task] = iter(self.loaders[task])
            yield task, next(iters[task])
        # a fresh epoch starts at step 0 unless set_epoch says otherwise
        self._start = 0
        for bs in self.batch_samplers.values():
            bs.skip = 0
