"""AdamW and the reference's schedule: linear warm-up over ``warmup_ratio`` of all steps, then linear decay to 0."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over every trainable parameter (betas 0.9/0.999, eps 1e-8), decay on all of them as the reference.

    The fused kernel (one pass over each tensor, no temporaries) is used on CPU and CUDA; it computes the same
    update as the per-tensor loop.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay, fused=fused)


def linear_warmup_decay(total_steps: int, warmup_ratio: float):  # type: ignore[no-untyped-def]
    """The multiplier of ``transformers.get_linear_schedule_with_warmup`` with warm-up = int(ratio * total)."""
    warmup = int(warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> LambdaLR:
    return LambdaLR(optimizer, linear_warmup_decay(total_steps, warmup_ratio))
