"""Length-bucketed batches of :class:`MultiTaskLoader` (docs/training.md, "Length-bucketed batches")."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import Dataset

from quag.config import DataConfig
from quag.data import annotations as A
from quag.data.collate import Sample
from quag.data.datasets import TaskDataset, build_datasets, task_examples
from quag.data.multitask import Bucketing, MultiTaskLoader
from quag.tasks import Task

Steps = list[tuple[str, tuple[str, ...]]]


class Sized(Dataset):
    """Examples whose video has ``lengths[i]`` frames."""

    def __init__(self, task: Task, lengths: list[int]) -> None:
        self.task, self.lengths = task, lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> Sample:
        n = self.lengths[i]
        return Sample(
            task=self.task,
            video_id=f"{self.task}-{i}",
            query="q",
            duration=float(n),
            video=np.zeros((n, 1), np.float32),
            transcript=np.zeros((n, 1), np.float32),
            query_embedding=np.zeros(1, np.float32),
            moment_mask=np.ones(n, bool),
            start_frame=0,
            end_frame=n - 1,
        )


def skewed(n: int, seed: int) -> list[int]:
    """Lengths from a few seconds to ~30 minutes, most of them short (as HiREST's videos)."""
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(5.5, 0.8, n), 5, 1855)]


LENGTHS: dict[Task, list[int]] = {"moment_retrieval": skewed(44, 0), "step_captioning": skewed(62, 1)}


def make(
    bucketing: Bucketing = "length",
    seed: int = 0,
    batch_size: int = 3,
    bucket_size: int = 2,
    num_replicas: int = 1,
    rank: int = 0,
) -> MultiTaskLoader:
    return MultiTaskLoader(
        {t: Sized(t, n) for t, n in LENGTHS.items()},
        batch_size=batch_size,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        bucketing=bucketing,
        lengths=LENGTHS if bucketing == "length" else None,
        bucket_size=bucket_size,
    )


def epoch(loader: MultiTaskLoader, e: int, start: int = 0) -> Steps:
    loader.set_epoch(e, start)
    return [(task, tuple(b.video_ids)) for task, b in loader]


def padding_fraction(loader: MultiTaskLoader, e: int) -> float:
    loader.set_epoch(e)
    padded = total = 0
    for _, b in loader:
        padded += int((~b.video_mask).sum())
        total += b.video_mask.numel()
    return padded / total


def test_same_examples_batch_counts_and_task_order_as_unbucketed() -> None:
    for e in (0, 1):
        plain, bucketed = epoch(make("none"), e), epoch(make(), e)
        assert [t for t, _ in bucketed] == [t for t, _ in plain]  # the task schedule is unchanged
        assert Counter(v for _, ids in bucketed for v in ids) == Counter(v for _, ids in plain for v in ids)
        for task in LENGTHS:  # as many batches, of the same sizes (one short batch per task)
            sizes = sorted(len(ids) for t, ids in bucketed if t == task)
            assert sizes == sorted(len(ids) for t, ids in plain if t == task)
        assert bucketed != plain
    assert len(make()) == len(make("none")) == 15 + 21


def test_batches_come_from_sorted_mega_batches() -> None:
    loader = make(bucket_size=100)  # one mega-batch per task: batches are runs of the sorted epoch
    loader.set_epoch(0)
    for task, ids in loader.plan():
        n = [LENGTHS[task][i] for i in ids]
        assert n == sorted(n)
    mr = sorted(
        (ids for t, ids in loader.plan() if t == "moment_retrieval"),
        key=lambda ids: LENGTHS["moment_retrieval"][ids[0]],
    )
    flat = [LENGTHS["moment_retrieval"][i] for ids in mr for i in ids]
    assert flat == sorted(flat)


def test_order_depends_on_seed_and_epoch_only() -> None:
    assert epoch(make(seed=3), 0) == epoch(make(seed=3), 0)
    assert epoch(make(seed=3), 4) == epoch(make(seed=3), 4)
    assert epoch(make(seed=3), 0) != epoch(make(seed=3), 1)
    assert epoch(make(seed=3), 0) != epoch(make(seed=4), 0)
    # iterating an epoch twice, or another epoch in between, changes nothing
    loader = make(seed=3)
    first = epoch(loader, 2)
    epoch(loader, 5)
    assert epoch(loader, 2) == first


def test_plan_is_what_the_epoch_yields() -> None:
    loader = make()
    loader.set_epoch(6)
    plan = [(t, tuple(f"{t}-{i}" for i in ids)) for t, ids in loader.plan()]
    assert plan == epoch(loader, 6)


def test_resume_mid_epoch_yields_the_same_tail() -> None:
    full = epoch(make(), 3)
    for start in (0, 1, 5, 17, len(full)):
        assert epoch(make(), 3, start) == full[start:]


def test_distributed_ranks_are_disjoint_cover_everything_and_share_the_task_order() -> None:
    r0, r1 = make(num_replicas=2, rank=0), make(num_replicas=2, rank=1)
    e0, e1 = epoch(r0, 2), epoch(r1, 2)
    assert [t for t, _ in e0] == [t for t, _ in e1]
    ids0 = [v for _, ids in e0 for v in ids]
    ids1 = [v for _, ids in e1 for v in ids]
    assert len(ids0) == len(set(ids0)) and len(ids1) == len(set(ids1))
    assert not set(ids0) & set(ids1)  # both sizes are even: DistributedSampler repeats nothing
    assert set(ids0) | set(ids1) == {f"{t}-{i}" for t, n in LENGTHS.items() for i in range(len(n))}
    # and each rank resumes exactly as well
    assert epoch(make(num_replicas=2, rank=1), 2, 7) == e1[7:]


def test_bucketing_pads_less_on_skewed_lengths() -> None:
    for e in (0, 1):
        plain = padding_fraction(make("none", batch_size=5, bucket_size=4), e)
        bucketed = padding_fraction(make("length", batch_size=5, bucket_size=4), e)
        assert bucketed < plain


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (None, "needs lengths for task"),
        ({"moment_retrieval": LENGTHS["moment_retrieval"]}, "no lengths for task 'step_captioning'"),
        (
            {**LENGTHS, "step_captioning": LENGTHS["step_captioning"][:-1]},
            "task 'step_captioning' has 62 examples but 61",
        ),
    ],
)
def test_bad_lengths_name_the_task(lengths: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiTaskLoader(
            {t: Sized(t, n) for t, n in LENGTHS.items()},
            batch_size=3,
            bucketing="length",
            lengths=lengths,  # type: ignore[arg-type]
        )


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="bucketing must be"):
        make("sorted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bucket_size"):
        make(bucket_size=0)


class NoStore:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"lengths() touched the feature store ({name})")


@pytest.mark.parametrize("window", ["resample", "full"])
def test_dataset_lengths_are_the_collated_rows(sim_root: Path, window: str) -> None:
    cfg = DataConfig(root=str(sim_root), caption_window=window)  # type: ignore[arg-type]
    videos = A.load_split(sim_root, "train")
    sets = build_datasets(cfg, "train", ["moment_retrieval", "moment_segmentation", "step_captioning"], True)
    for task, ds in sets.items():
        assert ds.lengths() == [ds[i].video.shape[0] for i in range(len(ds))]
        # from the annotations alone
        cheap = TaskDataset(task, task_examples(task, videos, True), NoStore(), caption_window=window)  # type: ignore[arg-type]
        assert cheap.lengths() == ds.lengths()
    captions = set(sets["step_captioning"].lengths())
    assert (captions == {cfg.caption_frames}) == (window == "resample")  # resampled windows pad nothing
