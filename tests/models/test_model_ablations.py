"""Each ablation switch of the paper's Tables 4, 6 and 7 builds and trains one step; save -> load is exact."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from quag.models import build_model
from quag.models.losses import total_loss
from quag.tasks import TASKS
from tests.models.helpers import make_batch, tiny_config

ABLATIONS: dict[str, dict[str, Any]] = {
    "paper": {},
    "w/o MSP (Table 4)": {"use_msp": False},
    "w/o QC2 (Table 4)": {"use_qc2": False},
    "w/o MSP and QC2": {"use_msp": False, "use_qc2": False},
    "temporal gate only (Table 7)": {"qc2_gates": "temporal"},
    "channel gate only (Table 7)": {"qc2_gates": "channel"},
    "Base, mean pooling (Table 7)": {"qc2_gates": "none"},
    "separate cross-attention": {"msp_separate_cross_attention": True},
    "reference padding": {"padding": "reference"},
}


@pytest.mark.parametrize("overrides", list(ABLATIONS.values()), ids=list(ABLATIONS))
@pytest.mark.parametrize("msp_loss_weight", [0.0003, 0.0])
def test_ablation_trains_one_step(overrides: dict[str, Any], msp_loss_weight: float) -> None:
    cfg = tiny_config("quag", **overrides)
    model = build_model(cfg)
    assert (model.msp is None) == (not cfg.use_msp) and (model.qc2 is None) == (not cfg.use_qc2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for task in TASKS:
        batch = make_batch(task, [6, 9], cfg)
        before = [p.detach().clone() for p in model.parameters()]
        losses = total_loss(task, model(batch), batch, msp_loss_weight=msp_loss_weight)
        assert torch.isfinite(losses["loss"])
        assert ("msp_loss" in losses) == cfg.use_msp
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_save_then_load_gives_identical_outputs(arch: str, task: str) -> None:
    cfg = tiny_config(arch)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    torch.manual_seed(1)
    restored = build_model(cfg).eval()
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    batch = make_batch(task, [5, 8], cfg)
    with torch.no_grad():
        a, b = model(batch), restored(batch)
    for name in ("start_logits", "end_logits", "logits", "msp_loss"):
        if getattr(a, name, None) is not None:
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_tied_output_projection_is_one_tensor() -> None:
    model = build_model(tiny_config("quag"))
    names = [n for n, _ in model.named_parameters()]
    assert "heads.step_captioning.word_embeddings.weight" in names
    assert not any("classifier" in n or n.endswith("output_proj.weight") for n in names)
