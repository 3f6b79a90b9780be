"""Inference under autocast keeps each weight's cast between calls, with the values autocast computes.

``quag.models.layers.linear`` without gradients casts a weight once and reuses the cast while the weight is
unchanged (docs/inference.md, "Batches, precision and speed"); training drops every kept cast.
"""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F

from quag.config import EvalConfig
from quag.inference.runner import predict_boundaries, predict_captions, predict_moments
from quag.models import build_model, layers
from quag.models.layers import linear
from tests.models.helpers import make_batch, tiny_config

BF16 = torch.bfloat16


@pytest.fixture(autouse=True)
def _no_kept_casts() -> None:
    layers.clear_kept_casts()


def _autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=BF16)


def _kept(t: torch.Tensor) -> torch.Tensor | None:
    entry = layers._WEIGHT_CASTS.get(id(t))
    return None if entry is None else entry[2]


def test_inference_reuses_the_cast_until_the_weight_changes() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=g)
    w = torch.nn.Parameter(torch.randn(8, 16, generator=g))
    b = torch.nn.Parameter(torch.randn(8, generator=g))
    with torch.no_grad(), _autocast():
        first = linear(x, w, b)
        assert torch.equal(first, F.linear(x, w, b))
        cast = _kept(w)
        assert cast is not None and cast.dtype == BF16 and torch.equal(cast, w.detach().to(BF16))
    with torch.no_grad(), _autocast():  # another autocast region: the same cast, the same output
        assert torch.equal(linear(x, w, b), first)
        assert _kept(w) is cast
        w.add_(1.0)  # an optimizer step changes the weight in place
        assert torch.equal(linear(x, w, b), F.linear(x, w, b))
        assert _kept(w) is not cast
    with torch.inference_mode(), _autocast():
        assert torch.equal(linear(x, w, b), F.linear(x, w, b))


def test_nothing_is_kept_without_autocast_or_with_gradients() -> None:
    x, w = torch.randn(4, 16), torch.nn.Parameter(torch.randn(8, 16))
    with torch.no_grad():  # fp32: nothing to cast
        linear(x, w)
    assert _kept(w) is None
    with torch.no_grad(), _autocast():
        half = w[:, :8]  # a view made anew by each call: cast by autocast, not kept
        assert torch.equal(linear(x[:, :8], half), F.linear(x[:, :8], half))
        assert not layers._WEIGHT_CASTS
        linear(x, w)
    assert _kept(w) is not None
    with _autocast():  # gradients recorded (training): every kept cast is dropped
        linear(x, w).sum().backward()
    assert not layers._WEIGHT_CASTS


def test_a_freed_weight_takes_its_cast_along() -> None:
    x, w = torch.randn(4, 16), torch.nn.Parameter(torch.randn(8, 16))
    with torch.no_grad(), _autocast():
        linear(x, w)
    assert len(layers._WEIGHT_CASTS) == 1
    del w
    gc.collect()
    assert not layers._WEIGHT_CASTS


def test_model_decoding_is_unchanged_by_kept_casts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moments, boundaries and captions of a tiny model in bf16: twice with kept casts (the second call reuses
    them), and with autocast casting every weight itself."""
    cfg = tiny_config("quag")
    model = build_model(cfg).eval()
    eval_cfg = EvalConfig()
    batches = {t: make_batch(t, [6, 9, 4], cfg) for t in ("moment_retrieval", "moment_segmentation", "step_captioning")}

    def decode() -> tuple[object, ...]:
        with torch.no_grad(), _autocast():
            return (
                predict_moments(model, batches["moment_retrieval"], eval_cfg).tolist(),
                predict_boundaries(model, batches["moment_segmentation"], eval_cfg),
                predict_captions(model, batches["step_captioning"], eval_cfg),
                model.encode_front(
                    batches["moment_retrieval"].video,
                    batches["moment_retrieval"].transcript,
                    batches["moment_retrieval"].query_embedding,
                    batches["moment_retrieval"].video_mask,
                ).features,
            )

    first = decode()
    assert layers._WEIGHT_CASTS
    second = decode()
    monkeypatch.setattr(layers, "_inference_autocast_dtype", lambda x, w: None)
    plain = decode()
    for a, b, c in zip(first, second, plain, strict=True):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b) and torch.equal(a, c)
        else:
            assert a == b == c
