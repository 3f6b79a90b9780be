"""Padding is masked everywhere: valid outputs of a padded batch equal those of the videos run one by one.

The reference masks nothing (``mask_padding=False`` reproduces it); there, padding changes the outputs.
"""

from __future__ import annotations

import torch

from quag.data.collate import Batch
from quag.models import build_model
from tests.models.helpers import make_batch, tiny_config

LENGTHS = [5, 11, 8]
FRAME_AXIS = {"video", "transcript", "video_mask", "moment_mask", "boundary_mask"}


def _single(batch: Batch, i: int) -> Batch:
    """Sample ``i`` of ``batch`` alone, its padding cut off."""
    n = int(batch.video_mask[i].sum())
    fields = {}
    for name, value in vars(batch).items():
        if isinstance(value, torch.Tensor):
            value = value[i : i + 1]
            if name in FRAME_AXIS:
                value = value[:, :n]
        fields[name] = value
    return Batch(**fields)


def _valid_outputs(model: torch.nn.Module, batch: Batch) -> list[torch.Tensor]:
    out = model(batch)
    tensors = [out.start_logits, out.end_logits] if batch.task == "moment_retrieval" else [out.logits]
    valid = batch.caption_mask if batch.task == "step_captioning" else batch.video_mask
    return [t[valid] for t in tensors]


def test_padded_batch_equals_one_by_one(arch: str, task: str) -> None:
    cfg = tiny_config(arch)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    batch = make_batch(task, LENGTHS, cfg, seed=3)
    with torch.no_grad():
        padded = _valid_outputs(model, batch)
        singles = [_valid_outputs(model, _single(batch, i)) for i in range(len(LENGTHS))]
    for k, tensor in enumerate(padded):
        torch.testing.assert_close(tensor, torch.cat([s[k] for s in singles]), rtol=1e-5, atol=1e-5)


def test_reference_mode_leaks_padding() -> None:
    """With ``mask_padding=False`` (the reference), the same video's outputs depend on its batch mates."""
    cfg = tiny_config("quag", padding="reference")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    batch = make_batch("moment_retrieval", LENGTHS, cfg, seed=3)
    with torch.no_grad():
        padded = model(batch).start_logits[0, : LENGTHS[0]]
        alone = model(_single(batch, 0)).start_logits[0]
    assert not torch.allclose(padded, alone, atol=1e-4)


def test_reference_mode_msp_mean_divides_the_full_sum_by_valid_frames() -> None:
    """The reference's global feature: sum over all T rows (padding included) / number of valid frames."""
    cfg = tiny_config("quag", padding="reference")
    msp = build_model(cfg).msp
    x = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    torch.testing.assert_close(msp.global_features(x, mask), x.sum(1) / torch.tensor([[2.0], [4.0]]))
