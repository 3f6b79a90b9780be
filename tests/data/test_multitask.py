from collections import Counter

import numpy as np
import pytest
from torch.utils.data import Dataset

from quag.data.collate import Sample
from quag.data.multitask import MultiTaskLoader


class Toy(Dataset):
    def __init__(self, task: str, n: int) -> None:
        self.task, self.n = task, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Sample:
        return Sample(
            task=self.task,
            video_id=f"{self.task}-{i}",
            query="q",
            duration=2.0,
            video=np.zeros((2, 2), np.float32),
            transcript=np.zeros((2, 2), np.float32),
            query_embedding=np.zeros(2, np.float32),
            moment_mask=np.ones(2, bool),
            start_frame=0,
            end_frame=1,
        )


def make(seed: int = 0, **kw: object) -> MultiTaskLoader:
    return MultiTaskLoader(
        {"moment_retrieval": Toy("moment_retrieval", 7), "step_captioning": Toy("step_captioning", 12)},
        batch_size=3,
        seed=seed,
        **kw,
    )


def epoch(loader: MultiTaskLoader, e: int, start: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    loader.set_epoch(e, start)
    return [(task, tuple(b.video_ids)) for task, b in loader]


def test_every_batch_once_per_epoch_proportional() -> None:
    loader = make()
    assert len(loader) == 3 + 4
    out = epoch(loader, 0)
    assert Counter(t for t, _ in out) == {"moment_retrieval": 3, "step_captioning": 4}
    seen = [v for _, ids in out for v in ids]
    assert sorted(seen) == sorted(
        [f"moment_retrieval-{i}" for i in range(7)] + [f"step_captioning-{i}" for i in range(12)]
    )
    assert len(loader) == 7  # length does not shrink while iterating


def test_order_is_seeded_and_changes_per_epoch() -> None:
    a, b = make(seed=1), make(seed=1)
    assert epoch(a, 0) == epoch(b, 0)
    assert epoch(a, 1) == epoch(b, 1)
    assert epoch(make(seed=1), 0) != epoch(make(seed=1), 1)
    assert make(seed=1).schedule(0) != make(seed=2).schedule(0) or epoch(make(seed=1), 0) != epoch(make(seed=2), 0)


def test_resume_mid_epoch_yields_the_same_tail() -> None:
    full = epoch(make(), 3)
    for start in (0, 1, 4, 7):
        assert epoch(make(), 3, start) == full[start:]
    with pytest.raises(ValueError, match="outside"):
        make().set_epoch(0, 99)


def test_set_epoch_reaches_every_task_sampler() -> None:
    loader = make()
    loader.set_epoch(5)
    assert all(bs.sampler.epoch == 5 for bs in loader.batch_samplers.values())


def test_distributed_ranks_partition_and_share_the_task_order() -> None:
    r0, r1 = make(num_replicas=2, rank=0), make(num_replicas=2, rank=1)
    e0, e1 = epoch(r0, 2), epoch(r1, 2)
    assert [t for t, _ in e0] == [t for t, _ in e1]  # ranks step through tasks in lockstep
    ids0 = {v for _, ids in e0 for v in ids}
    ids1 = {v for _, ids in e1 for v in ids}
    everything = {f"moment_retrieval-{i}" for i in range(7)} | {f"step_captioning-{i}" for i in range(12)}
    assert ids0 | ids1 == everything


def test_empty_task_is_an_error() -> None:
    with pytest.raises(ValueError, match="no training examples"):
        MultiTaskLoader({"moment_retrieval": Toy("moment_retrieval", 0)}, batch_size=2)
