"""Output types and shapes for every task and both architectures; the split front/context API; bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from quag.models import (
    CaptionOutput,
    JointModel,
    MomentRetrievalOutput,
    QuagModel,
    SegmentationOutput,
    build_model,
)
from tests.models.helpers import make_batch, tiny_config


def test_build_model_dispatches_on_arch() -> None:
    assert isinstance(build_model(tiny_config("quag")), QuagModel)
    assert isinstance(build_model(tiny_config("joint")), JointModel)
    with pytest.raises(ValueError, match="arch"):
        QuagModel(tiny_config("joint"))


def test_output_shapes(arch: str, task: str) -> None:
    cfg = tiny_config(arch)
    model = build_model(cfg).eval()
    batch = make_batch(task, [7, 4, 10], cfg)
    out = model(batch)
    b, t = batch.video.shape[:2]
    if task == "moment_retrieval":
        assert isinstance(out, MomentRetrievalOutput)
        assert out.start_logits.shape == out.end_logits.shape == (b, t)
        logits = out.start_logits
    elif task == "moment_segmentation":
        assert isinstance(out, SegmentationOutput)
        assert out.logits.shape == (b, t)
        logits = out.logits
    else:
        assert isinstance(out, CaptionOutput)
        assert out.logits.shape == (b, batch.caption_ids.shape[1], cfg.vocab_size)
        logits = out.logits
    assert torch.isfinite(logits).all(), "padded positions must hold finite logits"
    if arch == "quag":
        assert out.msp_loss is not None and out.msp_loss.shape == () and torch.isfinite(out.msp_loss)
    else:
        assert out.msp_loss is None


def test_front_and_context_reproduce_forward(arch: str) -> None:
    """One segmentation round = one encode_context on a cached front end, as the decoder uses it."""
    cfg = tiny_config(arch)
    model = build_model(cfg).eval()
    batch = make_batch("moment_segmentation", [6, 9], cfg)
    front = model.encode_front(batch.video, batch.transcript, batch.query_embedding, batch.video_mask)
    h = model.encode_context(front.features, batch.video_mask, batch.moment_mask, batch.boundary_mask)
    assert h.shape == (2, 9, cfg.hidden_dim)
    torch.testing.assert_close(model.segment_logits(h), model(batch).logits, rtol=0, atol=0)
    start, end = model.moment_logits(h)
    assert start.shape == end.shape == (2, 9)
    # Decoding skips L_msp: the same features, and no loss.
    lean = model.encode_front(batch.video, batch.transcript, batch.query_embedding, batch.video_mask, False)
    torch.testing.assert_close(lean.features, front.features, rtol=0, atol=0)
    assert lean.msp_loss is None and (front.msp_loss is not None) == (arch == "quag")


def test_caption_forward_needs_targets(arch: str) -> None:
    cfg = tiny_config(arch)
    batch = make_batch("step_captioning", [5], cfg)
    batch.caption_ids = None
    with pytest.raises(ValueError, match="generate_beam"):
        build_model(cfg)(batch)


def test_joint_rejects_more_frames_than_positions() -> None:
    cfg = tiny_config("joint", joint_max_positions=8)
    with pytest.raises(ValueError, match="joint_max_positions"):
        build_model(cfg)(make_batch("moment_retrieval", [9], cfg))


def test_runs_under_bf16_autocast(arch: str, task: str) -> None:
    cfg = tiny_config(arch)
    model = build_model(cfg)
    batch = make_batch(task, [5, 8], cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    logits = out.start_logits if task == "moment_retrieval" else out.logits
    assert torch.isfinite(logits.float()).all()


def test_encode_reproduces_forward(arch: str, task: str) -> None:
    """``encode`` (front end + context encoder) and the task's head give exactly the training forward's logits."""
    cfg = tiny_config(arch)
    model = build_model(cfg).eval()
    batch = make_batch(task, [6, 9], cfg)
    enc, out = model.encode(batch), model(batch)
    if isinstance(out, MomentRetrievalOutput):
        got, want = torch.stack(model.moment_logits(enc.hidden)), torch.stack([out.start_logits, out.end_logits])
    elif isinstance(out, SegmentationOutput):
        got, want = model.segment_logits(enc.hidden), out.logits
    else:
        got = model.decoder(batch.caption_ids, enc.hidden, batch.video_mask, input_mask=batch.caption_mask)[0]
        want = out.logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    if out.msp_loss is None:
        assert enc.msp_loss is None
    else:
        assert enc.msp_loss is not None
        torch.testing.assert_close(enc.msp_loss, out.msp_loss, rtol=0, atol=0)
