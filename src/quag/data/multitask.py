"""Multi-task loading: single-task batches interleaved in a seeded, proportional, shuffled order each epoch.

This is what the reference's ``MultitaskLoader(sampling='roundrobin')`` really does (docs/training.md):
each epoch lists every task once per batch of its loader, shuffles that list and consumes it, so every batch of
every task is seen exactly once per epoch and tasks are mixed in proportion to their sizes. Unlike the
reference, the length stays constant during the epoch, the order depends on ``(seed, epoch)`` only, and the
examples inside each task are shuffled by a seeded :class:`~torch.utils.data.DistributedSampler` (also with one
process), whose ``set_epoch`` is always called. Every rank sees the same task order, so DDP ranks stay in step.

A run resumed at step ``k`` of an epoch (``set_epoch(epoch, start=k)``) yields exactly the batches an
uninterrupted run would have yielded from step ``k`` on.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from quag.data.collate import Batch, collate
from quag.tasks import Task


class _EpochBatches(Sampler[list[int]]):
    """Batches of a sampler's indices for the current epoch, optionally skipping the first ``skip``."""

    def __init__(self, sampler: DistributedSampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.skip = 0

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        idx = list(self.sampler)
        for b in range(self.skip, len(self)):
            yield idx[b * self.batch_size : (b + 1) * self.batch_size]


class MultiTaskLoader:
    """Iterate ``(task, batch)`` pairs over several single-task datasets.

    Args:
        datasets: task -> dataset.
        batch_size: examples per batch (the last batch of a task may be smaller).
        seed: seeds both the task order and the per-task shuffles.
        num_replicas, rank: data-parallel world size and this process's rank (``DistributedSampler``).
        num_workers: DataLoader worker processes per task.
        collate_fn: builds a batch from samples.
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
    ) -> None:
        empty = [t for t, ds in datasets.items() if len(ds) == 0]  # type: ignore[arg-type]
        if empty:
            raise ValueError(f"no training examples for task(s) {empty}: check the split file and the task filters")
        self.tasks: list[Task] = list(datasets)
        self.seed = seed
        self.epoch = 0
        self.batch_samplers: dict[Task, _EpochBatches] = {}
        self.loaders: dict[Task, DataLoader] = {}
        for task, ds in datasets.items():
            sampler: DistributedSampler = DistributedSampler(
                ds, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed
            )
            bs = _EpochBatches(sampler, batch_size)
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
