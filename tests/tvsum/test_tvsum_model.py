"""TVSumQuag shapes, padding, gradients and the saliency losses."""

from __future__ import annotations

import pytest
import torch

from quag.tvsum.config import TVSumModelConfig
from quag.tvsum.losses import (
    SaliencyLossWeights,
    margin_ranking_loss,
    negative_query_loss,
    rank_contrastive_loss,
    saliency_loss,
)
from quag.tvsum.model import TVSumQuag


def tiny_tvsum_config(**kw: object) -> TVSumModelConfig:
    base = dict(visual_dim=12, audio_dim=10, query_dim=6, hidden_dim=16, num_heads=2, ffn_dim=32)
    base.update(kw)
    return TVSumModelConfig(**base)  # type: ignore[arg-type]


def inputs(b: int = 3, t: int = 7, lengths: tuple[int, ...] = (7, 4, 5)) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    visual = torch.randn(b, t, 12, generator=g) * mask[..., None]
    audio = torch.randn(b, t, 10, generator=g) * mask[..., None]
    return visual, audio, torch.randn(b, 6, generator=g), mask


def test_paper_defaults() -> None:
    cfg = TVSumModelConfig()
    assert (cfg.hidden_dim, cfg.num_encoder_layers, cfg.num_heads) == (256, 2, 8)
    assert (cfg.visual_dim, cfg.audio_dim, cfg.query_dim) == (2048, 2048, 512)
    with pytest.raises(ValueError, match="divisible"):
        TVSumModelConfig(hidden_dim=30, num_heads=8)


@pytest.mark.parametrize(("use_msp", "use_qc2"), [(True, True), (False, True), (True, False)])
def test_shapes_and_padding_invariance(use_msp: bool, use_qc2: bool) -> None:
    torch.manual_seed(0)
    model = TVSumQuag(tiny_tvsum_config(use_msp=use_msp, use_qc2=use_qc2)).eval()
    visual, audio, query, mask = inputs()
    out = model(visual, audio, query, mask, negative_query=query.roll(1, 0))
    assert out.scores.shape == out.negative_scores.shape == (3, 7)
    assert torch.isfinite(out.scores).all()
    assert (out.msp_loss is not None) == use_msp
    # Video 1 alone, unpadded, gives the same valid scores as inside the padded batch.
    alone = model(visual[1:2, :4], audio[1:2, :4], query[1:2], mask[1:2, :4]).scores
    torch.testing.assert_close(alone[0], out.scores[1, :4], rtol=1e-4, atol=1e-5)


def test_negative_query_changes_only_the_query_path() -> None:
    torch.manual_seed(0)
    model = TVSumQuag(tiny_tvsum_config()).eval()
    visual, audio, query, mask = inputs()
    out = model(visual, audio, query, mask, negative_query=query)
    torch.testing.assert_close(out.negative_scores, out.scores)
    rolled = model(visual, audio, query.roll(1, 0), mask).scores
    torch.testing.assert_close(model(visual, audio, query, mask, query.roll(1, 0)).negative_scores, rolled)


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    model = TVSumQuag(tiny_tvsum_config()).train()
    visual, audio, query, mask = inputs()
    out = model(visual, audio, query, mask, negative_query=query.roll(1, 0))
    target = torch.rand(3, 7) * mask
    saliency_loss(out.scores, target, mask, SaliencyLossWeights(), out.msp_loss, out.negative_scores)[
        "total"
    ].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_rank_contrastive_prefers_the_annotators_order() -> None:
    target = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0, 0.0]])
    mask = torch.tensor([[True] * 5 + [False]])
    good = rank_contrastive_loss(target * 10, target, mask)
    bad = rank_contrastive_loss(-target * 10, target, mask)
    assert float(good) < float(bad)
    # Padding is ignored whatever its score.
    padded = target * 10
    padded[0, 5] = 1e3
    torch.testing.assert_close(rank_contrastive_loss(padded, target, mask), good)


def test_rank_contrastive_hand_value() -> None:
    # Two clips, targets 0 and 1, equal logits: 11 levels each with one positive of log-prob log(1/2).
    loss = rank_contrastive_loss(torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), torch.ones(1, 2, dtype=torch.bool))
    assert float(loss) == pytest.approx(11 * torch.log(torch.tensor(2.0)).item() / 12)


def test_margin_and_negative_losses_hand_values() -> None:
    scores = torch.tensor([[0.3, 0.0, 0.1], [1.0, 0.0, 9.0]])
    target = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # Video 0: best clip 0 (0.3) vs worst clip 1 (0.0): hinge 0.2 - 0.3 < 0 -> 0.
    # Video 1: best clip 1 (0.0) vs worst clip 0 (1.0): 0.2 + 1 - 0 = 1.2; mean 0.6, times 2.
    assert float(margin_ranking_loss(scores, target, mask, margin=0.2)) == pytest.approx(1.2)
    softplus0 = torch.log(torch.tensor(2.0)).item()
    neg = torch.zeros(2, 3)
    assert float(negative_query_loss(neg, mask)) == pytest.approx((3 * softplus0 + 2 * softplus0) / 2)


def test_total_combines_weighted_terms() -> None:
    scores, target = torch.randn(2, 4), torch.rand(2, 4)
    mask = torch.ones(2, 4, dtype=torch.bool)
    w = SaliencyLossWeights(rank_contrastive=2.0, margin=0.5, negative_query=0.0, msp=0.3)
    terms = saliency_loss(scores, target, mask, w, msp_loss=torch.tensor(1.5), negative_scores=None)
    expected = 2.0 * terms["rank_contrastive"] + 0.5 * terms["margin"] + 0.3 * 1.5
    torch.testing.assert_close(terms["total"], expected)
    assert float(terms["negative_query"]) == 0.0
