import itertools

import pytest
import torch

from quag.inference.moments import decode_spans
from quag.inference.segmentation import (
    boundaries_to_segments,
    decode_islands,
    decode_islands_naive,
    decode_sequential,
    decode_sequential_naive,
    postprocess_boundaries,
)


def brute_force(s: torch.Tensor, e: torch.Tensor, n: int, max_len: int) -> tuple[int, int]:
    ls, le = torch.nn.functional.logsigmoid(s), torch.nn.functional.logsigmoid(e)
    best, arg = -float("inf"), (0, 0)
    for i, j in itertools.product(range(n), range(n)):
        if i <= j and (max_len <= 0 or j - i < max_len) and ls[i] + le[j] > best:
            best, arg = float(ls[i] + le[j]), (i, j)
    return arg


@pytest.mark.parametrize("max_len", [0, 1, 4])
def test_span_decoding_equals_brute_force(max_len: int) -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        B, T = 4, 13
        s, e = torch.randn(B, T, generator=g) * 3, torch.randn(B, T, generator=g) * 3
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        mask = torch.arange(T)[None] < lengths[:, None]
        got = decode_spans(s, e, mask, "span", max_len)
        for b in range(B):
            assert tuple(got[b].tolist()) == brute_force(s[b], e[b], int(lengths[b]), max_len)
            assert got[b, 0] <= got[b, 1] < lengths[b]


def test_independent_decoding_is_the_reference_argmax() -> None:
    s = torch.tensor([[0.0, 5.0, 1.0, -9.0]])
    e = torch.tensor([[4.0, 0.0, 1.0, 99.0]])
    mask = torch.tensor([[True, True, True, False]])
    assert decode_spans(s, e, mask, "reference").tolist() == [[1, 0]]  # reversed, as the reference can be
    assert decode_spans(s, e, mask, "span").tolist() == [[1, 2]]


class FakeModel:
    """Deterministic logits that depend on the masks, like a real encoder pass."""

    def __init__(self, B: int, T: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.base = torch.randn(B, T, generator=g) * 2
        self.calls = 0

    def __call__(self, rows: torch.Tensor, region: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        near = torch.nn.functional.max_pool1d(boundary.float()[:, None], 5, 1, 2)[:, 0]
        return self.base[rows, : region.shape[1]] - 2.0 * near + 0.1 * region.float().cumsum(-1) / region.shape[1]


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_segmentation_equals_per_sample_reference(seed: int) -> None:
    B, T = 5, 60
    g = torch.Generator().manual_seed(100 + seed)
    lengths = torch.randint(20, T + 1, (B,), generator=g)
    ms = torch.stack([torch.randint(0, int(n) // 3, (1,), generator=g)[0] for n in lengths])
    me = torch.stack([torch.randint(int(n) // 2, int(n), (1,), generator=g)[0] for n in lengths])
    frames = torch.stack([ms, me], dim=1)
    fast_model, slow_model = FakeModel(B, T, seed), FakeModel(B, T, seed)
    fast = decode_islands(fast_model, frames, lengths, rounds=20, threshold=0.5)
    slow = decode_islands_naive(slow_model, frames, lengths, rounds=20, threshold=0.5)
    assert fast == slow
    assert decode_islands(FakeModel(B, T, seed), frames, lengths, rounds=20, early_stop=False) == slow
    assert fast_model.calls <= slow_model.calls // B + 1  # batched, with early stop


def test_postprocess_reference_semantics() -> None:
    # islands (30, 34) and (50, 52) inside [10, 60]; min gap 5; the largest value is never considered
    assert postprocess_boundaries([(30, 34), (50, 52)], 10, 60, emit_last=False) == [10, 30, 50]
    assert postprocess_boundaries([(30, 34), (50, 52)], 10, 60, emit_last=True) == [10, 30, 50, 60]
    # 58 lies < 5 frames before the end: the end replaces it rather than leaving a 2-frame segment
    assert postprocess_boundaries([(30, 34), (56, 58)], 10, 60, emit_last=True) == [10, 30, 60]
    # nothing found: the whole moment is one segment
    assert postprocess_boundaries([], 10, 60, emit_last=True) == [10, 60]
    assert postprocess_boundaries([], 10, 60, emit_last=False) == [10]
    assert boundaries_to_segments([10, 30, 60]) == [(10, 30), (30, 60)]
    # an island whose walk stopped one frame before the moment: the reference keeps 9, the corrected mode clips
    assert postprocess_boundaries([(9, 12), (30, 33)], 10, 60, emit_last=False) == [9, 30]
    assert postprocess_boundaries([(9, 12), (30, 33)], 10, 60, emit_last=True) == [10, 30, 60]
    # ms == me (zero-length moment): one degenerate segment
    assert postprocess_boundaries([], 7, 7, emit_last=True) == [7, 7]


@pytest.mark.parametrize("seed,min_gap", [(s, g) for s in range(6) for g in (1, 5)])
def test_sequential_decoding_equals_per_sample_loop(seed: int, min_gap: int) -> None:
    B, T = 5, 60
    g = torch.Generator().manual_seed(200 + seed)
    lengths = torch.randint(20, T + 1, (B,), generator=g)
    ms = torch.stack([torch.randint(0, int(n) // 3, (1,), generator=g)[0] for n in lengths])
    me = torch.stack([torch.randint(int(n) // 2, int(n), (1,), generator=g)[0] for n in lengths])
    me[0] = ms[0]  # a zero-length moment
    frames = torch.stack([ms, me], dim=1)
    fast = decode_sequential(FakeModel(B, T, seed), frames, lengths, max_steps=12, min_gap=min_gap)
    assert fast == decode_sequential_naive(FakeModel(B, T, seed), frames, lengths, max_steps=12, min_gap=min_gap)
    for b, bounds in enumerate(fast):
        assert bounds[0] == ms[b] and bounds[-1] == me[b] and len(bounds) >= 2
        assert all(x < y for x, y in zip(bounds[1:-1], bounds[2:], strict=False))
        # every boundary but the moment end lies at least min_gap frames after the previous one
        assert all(y - x >= min_gap for x, y in zip(bounds[:-2], bounds[1:-1], strict=True))
