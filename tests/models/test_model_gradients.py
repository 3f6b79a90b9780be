"""Every trainable parameter gets a gradient from the loss of the tasks that use it, and from no other.

In a round-robin step only one task's head is used: the other heads get no gradient (DDP therefore needs
``find_unused_parameters=True``).
"""

from __future__ import annotations

import torch

from quag.models import build_model
from quag.models.losses import total_loss
from quag.tasks import TASKS
from tests.models.helpers import make_batch, tiny_config

SHARED = {
    "quag": ("embed.", "msp.", "qc2.", "context.time_mlp.", "context.mask_embed.", "encoder."),
    "joint": ("embed.", "context.time_mlp.", "context.mask_embed.", "visual_encoder."),
}
TASK_ONLY = {
    "moment_retrieval": ("heads.moment_retrieval.",),
    "moment_segmentation": ("heads.moment_segmentation.", "context.boundary_embed."),
    "step_captioning": ("heads.step_captioning.",),
}


def _with_grad(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_each_task_reaches_exactly_its_parameters(arch: str, task: str) -> None:
    cfg = tiny_config(arch)
    model = build_model(cfg)
    batch = make_batch(task, [6, 9, 4], cfg)
    total_loss(task, model(batch), batch, msp_loss_weight=0.0003)["loss"].backward()
    expected = {n for n, _ in model.named_parameters() if n.startswith(SHARED[arch] + TASK_ONLY[task])}
    assert _with_grad(model) == expected
    untouched = {n for n, p in model.named_parameters() if p.grad is None}
    assert untouched == {n for n, _ in model.named_parameters()} - expected


def test_all_tasks_together_reach_every_parameter(arch: str) -> None:
    cfg = tiny_config(arch)
    model = build_model(cfg)
    for task in TASKS:
        batch = make_batch(task, [6, 9, 4], cfg)
        total_loss(task, model(batch), batch, msp_loss_weight=0.0003)["loss"].backward()
    assert _with_grad(model) == {n for n, p in model.named_parameters() if p.requires_grad}


def test_lambda_zero_leaves_the_temperature_without_gradient() -> None:
    cfg = tiny_config("quag")
    model = build_model(cfg)
    batch = make_batch("moment_retrieval", [6, 9], cfg)
    total_loss("moment_retrieval", model(batch), batch, msp_loss_weight=0.0)["loss"].backward()
    assert model.msp.temperature.grad is None
    assert model.msp.cross_attn.attn.q_proj.weight.grad is not None  # the cross-attention still trains
