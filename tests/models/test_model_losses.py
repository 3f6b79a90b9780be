"""Losses against hand computations: MR BCE over valid frames, MS over allowed frames, SC with/without [PAD]."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from quag.models.losses import (
    moment_retrieval_loss,
    moment_segmentation_loss,
    step_captioning_loss,
    total_loss,
)
from quag.models.outputs import CaptionOutput, MomentRetrievalOutput, SegmentationOutput
from tests.models.helpers import make_batch, tiny_config


def _bce(x: float, y: float) -> float:
    return -(y * math.log(1 / (1 + math.exp(-x))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-x))))


def test_moment_retrieval_bce_counts_valid_frames_only() -> None:
    cfg = tiny_config()
    batch = make_batch("moment_retrieval", [2, 3], cfg)
    batch.start_target, batch.end_target = torch.tensor([1, 0]), torch.tensor([1, 2])
    start = torch.tensor([[0.5, -1.0, 99.0], [2.0, 0.0, 1.0]])  # 99 sits on padding: must not count
    end = torch.tensor([[0.0, 1.0, -99.0], [0.3, -0.2, 0.1]])
    out = MomentRetrievalOutput(start, end, None)
    l_start = (_bce(0.5, 0) + _bce(-1.0, 1) + _bce(2.0, 1) + _bce(0.0, 0) + _bce(1.0, 0)) / 5
    l_end = (_bce(0.0, 0) + _bce(1.0, 1) + _bce(0.3, 0) + _bce(-0.2, 0) + _bce(0.1, 1)) / 5
    assert moment_retrieval_loss(out, batch).item() == pytest.approx(0.5 * (l_start + l_end), rel=1e-6)


def test_moment_segmentation_softmax_over_allowed_frames() -> None:
    cfg = tiny_config()
    batch = make_batch("moment_segmentation", [4], cfg)
    batch.moment_mask = torch.tensor([[False, True, True, False]])
    batch.segment_target = torch.tensor([2])
    logits = torch.tensor([[50.0, 1.0, 2.0, 50.0]])
    expected = -math.log(math.exp(2.0) / (math.exp(1.0) + math.exp(2.0)))
    got = moment_segmentation_loss(SegmentationOutput(logits, None), batch)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_step_captioning_ignores_or_counts_pad() -> None:
    cfg = tiny_config()
    batch = make_batch("step_captioning", [4, 5], cfg)
    logits = torch.randn(*batch.caption_targets.shape, cfg.vocab_size)
    out = CaptionOutput(logits, None)
    flat, target = logits.flatten(0, 1), batch.caption_targets.flatten()
    real = target != 0
    assert step_captioning_loss(out, batch).item() == pytest.approx(F.cross_entropy(flat[real], target[real]).item())
    reference = F.cross_entropy(flat, target).item()  # every B x L position, [PAD] targets included
    assert step_captioning_loss(out, batch, ignore_pad=False).item() == pytest.approx(reference)


def test_total_loss_adds_lambda_times_msp() -> None:
    cfg = tiny_config()
    batch = make_batch("moment_retrieval", [3, 4], cfg)
    out = MomentRetrievalOutput(torch.randn(2, 4), torch.randn(2, 4), torch.tensor(2.0))
    losses = total_loss("moment_retrieval", out, batch, msp_loss_weight=0.0003)
    assert set(losses) == {"loss", "task_loss", "msp_loss"}
    assert losses["loss"].item() == pytest.approx(losses["task_loss"].item() + 0.0006)
    out.msp_loss = None
    assert set(total_loss("moment_retrieval", out, batch, 0.0003)) == {"loss", "task_loss"}
    with pytest.raises(ValueError, match="does not match"):
        total_loss("step_captioning", out, batch, 0.0003)


def test_losses_need_targets() -> None:
    cfg = tiny_config()
    batch = make_batch("moment_segmentation", [4], cfg)
    batch.segment_target = None
    with pytest.raises(ValueError, match="segment_target"):
        moment_segmentation_loss(SegmentationOutput(torch.randn(1, 4), None), batch)
