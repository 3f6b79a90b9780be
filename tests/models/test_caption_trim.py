"""Cutting captions to the batch's longest (``trim_caption_padding``) leaves every real token's logit and the
ignore-[PAD] loss unchanged, so the trainer may compute on far fewer positions."""

from __future__ import annotations

import copy

import torch

from quag.data.collate import trim_caption_padding
from quag.models import build_model
from quag.models.losses import step_captioning_loss
from tests.models.helpers import make_batch, tiny_config


def test_trim_keeps_real_logits_and_loss() -> None:
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    batch = make_batch("step_captioning", [6, 6, 6], cfg, seed=3)
    # pad the captions far beyond their longest, as the dataset stores them (data.max_caption_tokens)
    for name in ("caption_ids", "caption_targets", "caption_mask"):
        t = getattr(batch, name)
        setattr(batch, name, torch.cat([t, torch.zeros(t.shape[0], 20, dtype=t.dtype)], dim=1))
    longest = int(batch.caption_mask.sum(1).max())
    trimmed = trim_caption_padding(copy.copy(batch))
    assert trimmed.caption_ids.shape[1] == longest < batch.caption_ids.shape[1]
    assert torch.equal(trimmed.caption_targets, batch.caption_targets[:, :longest])
    assert not batch.caption_targets[:, longest:].any()  # only [PAD] targets were cut
    with torch.no_grad():
        full, cut = model(batch), model(trimmed)
        real = batch.caption_mask[:, :longest]
        torch.testing.assert_close(cut.logits[real], full.logits[:, :longest][real], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            step_captioning_loss(cut, trimmed), step_captioning_loss(full, batch), rtol=1e-5, atol=1e-6
        )
        # counting [PAD] targets (the authors' loss) is another loss: the trainer does not trim then
        assert not torch.isclose(step_captioning_loss(full, batch, ignore_pad=False), step_captioning_loss(full, batch))


def test_trim_leaves_other_tasks_and_full_batches() -> None:
    cfg = tiny_config()
    mr = make_batch("moment_retrieval", [5, 7], cfg)
    assert trim_caption_padding(mr) is mr
    sc = make_batch("step_captioning", [4, 4], cfg)
    sc.caption_ids[:, -1] = 7  # a caption that fills every position
    sc.caption_mask = sc.caption_ids != 0
    assert trim_caption_padding(sc).caption_ids.shape[1] == sc.caption_ids.shape[1]
