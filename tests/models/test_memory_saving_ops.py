"""The autograd functions that save less for backward compute what plain autograd computes.

``linear`` under CPU bf16 autocast keeps no bf16 copy of the weight, the attention with probability dropout
keeps neither the probabilities nor their dropped-out copy, and the tied word embeddings get one gradient
matrix instead of two (docs/training.md, "Memory").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from quag.models import build_model, layers
from quag.models.layers import linear, scaled_dot_product_attention, tied_logits, tied_lookup
from quag.models.losses import total_loss
from tests.models.helpers import make_batch, tiny_config

BF16 = torch.bfloat16


def _autocast(enabled: bool = True) -> torch.autocast:
    return torch.autocast("cpu", dtype=BF16, enabled=enabled)


def _grads(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor, seed: int = 0) -> list[torch.Tensor]:
    """Output and gradients of ``fn(*tensors)`` (leaf copies) for a fixed random output gradient."""
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
    torch.manual_seed(seed)
    out = fn(*leaves)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.dtype))
    return [out.detach()] + [t.grad for t in leaves if t.requires_grad]


@pytest.mark.parametrize("shape", [(6, 32), (2, 5, 32)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_under_autocast_equals_f_linear(shape: tuple[int, ...], bias: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, requires_grad=True)
    w = torch.randn(24, 32, generator=g, requires_grad=True)
    b = torch.randn(24, generator=g, requires_grad=True) if bias else None
    args = (x, w) if b is None else (x, w, b)

    def ours(*a: torch.Tensor) -> torch.Tensor:
        with _autocast():
            return linear(*a)

    def plain(*a: torch.Tensor) -> torch.Tensor:
        with _autocast():
            return F.linear(*a)

    got, want = _grads(ours, *args), _grads(plain, *args)
    assert got[0].dtype == BF16
    for a, b_ in zip(got, want, strict=True):
        assert a.dtype == b_.dtype and torch.equal(a, b_)
    assert all(t.is_contiguous() for t in got[1:])  # no copy to the weight's layout when accumulating


def test_linear_keeps_no_bf16_copy_of_the_weight() -> None:
    x = torch.randn(4, 16, requires_grad=True)
    w = torch.nn.Parameter(torch.randn(8, 16))
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t), _autocast():
        linear(x, w).sum().backward()
    assert not [t for t in saved if t.dtype == BF16 and t.shape == w.shape]
    assert any(t is w for t in saved)
    with _autocast(), torch.no_grad():  # no gradients: plain F.linear
        assert torch.equal(linear(x, w), F.linear(x, w))


def test_weight_gradient_in_blocks_equals_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    grad, x = torch.randn(7, 50, generator=g).to(BF16), torch.randn(7, 12, generator=g).to(BF16)
    whole = layers._weight_grad(grad, x, torch.float32)
    monkeypatch.setattr(layers, "WEIGHT_GRAD_ROWS", 16)  # 4 blocks, the last one short
    blocks = layers._weight_grad(grad, x, torch.float32)
    assert blocks.is_contiguous() and blocks.dtype == torch.float32
    torch.testing.assert_close(blocks, whole, rtol=0, atol=0)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, BF16])
@pytest.mark.parametrize("head_dim", [8, 64])  # 64: scale 1/8, a power of two, applied to q instead of the scores
def test_dropout_attention_equals_plain_autograd(masked: bool, dtype: torch.dtype, head_dim: int) -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, head_dim, generator=g).to(dtype).requires_grad_() for _ in range(3))
    mask = torch.rand(2, 1, 1, 7, generator=g) > 0.3 if masked else None

    def plain(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return layers.dropout(scores.softmax(-1), 0.2) @ v

    got = _grads(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, 0.2), q, k, v, seed=4)
    want = _grads(plain, q, k, v, seed=4)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


def test_dropout_attention_saves_no_probability_map() -> None:
    q, k, v = (torch.randn(1, 2, 5, 4, requires_grad=True) for _ in range(3))
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = scaled_dot_product_attention(q, k, v, None, 0.1)
    maps = [t for t in saved if t.shape[-2:] == (5, 5)]
    assert [t.dtype for t in maps] == [torch.uint8]  # only the 0/1 keep-mask
    out.sum().backward()
    assert q.grad is not None and k.grad is not None and v.grad is not None


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("head_used", [True, False])
def test_tied_embeddings_get_the_summed_gradient(bf16: bool, head_used: bool) -> None:
    vocab, dim = 40, 8
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(vocab, dim, generator=g)
    bias = torch.randn(vocab, generator=g)
    ids = torch.tensor([[1, 5, 5, 7], [1, 2, 39, 0]])  # repeated ids accumulate

    def run(tied: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
        stash: dict[str, torch.Tensor] = {}
        with _autocast(bf16):
            x = tied_lookup(ids, w, stash) if tied else F.embedding(ids, w)
            h = torch.tanh(x * 1.5)
            if head_used:
                out = (tied_logits(h, w, b, stash) if tied else F.linear(h, w, b)).float().logsumexp(-1).sum()
            else:
                out = h.float().square().sum() + 0 * b.sum()
        out.backward()
        assert not stash  # the lookup took the head's gradient
        assert w.grad is not None and b.grad is not None
        return out.detach(), w.grad, b.grad

    got, want = run(tied=True), run(tied=False)
    assert torch.equal(got[0], want[0])
    assert not got[1].is_sparse and got[1].dtype == torch.float32
    torch.testing.assert_close(got[1], want[1], rtol=1e-6, atol=1e-7)  # fp32 summation order only
    assert torch.equal(got[2], want[2])


def test_tied_paths_without_gradients_are_plain() -> None:
    w = torch.randn(10, 4)
    ids = torch.tensor([[1, 2]])
    assert torch.equal(tied_lookup(ids, w, {}), F.embedding(ids, w))
    h = torch.randn(1, 2, 4)
    assert torch.equal(tied_logits(h, w, None, {}), F.linear(h, w))


@pytest.mark.parametrize("task", ["moment_retrieval", "moment_segmentation", "step_captioning"])
@pytest.mark.parametrize("bf16", [False, True])
def test_model_gradients_match_plain_autograd(task: str, bf16: bool) -> None:
    """A whole training step's loss and gradients, with attention dropout on. Gradients agree to rounding: sums
    of several contributions may add in another order (MSP's shared cross-attention sums its two uses in fp32,
    the tied embeddings add the lookup's rows into the head's gradient, one autograd node per attention)."""
    cfg = tiny_config("quag", attention_dropout=0.1)
    model = build_model(cfg).train()
    batch = make_batch(task, [6, 9, 4], cfg)

    def step(lean: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        with contextlib.nullcontext() if lean else layers.plain_autograd(), _autocast(bf16):
            loss = total_loss(task, model(batch), batch, msp_loss_weight=0.3)["loss"]
            loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    (loss, got), (want_loss, want) = step(lean=True), step(lean=False)
    assert torch.equal(loss, want_loss) and got.keys() == want.keys()
    for name, grad in got.items():
        torch.testing.assert_close(grad, want[name], rtol=2e-2 if bf16 else 1e-5, atol=1e-6, msg=name)
