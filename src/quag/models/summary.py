"""Parameter counts per module, and the ``quag model-info`` table that compares them with the reference."""

from __future__ import annotations

import torch
from torch import nn

from quag.config import ModelConfig

# Fields that change parameter shapes; the reference totals hold only where they have the paper values.
_SHAPE_FIELDS = {
    "quag": ("hidden_dim", "num_encoder_layers", "ffn_dim", "visual_dim", "transcript_dim", "query_dim", "use_msp",
             "use_qc2", "qc2_gates", "msp_separate_cross_attention", "vocab_size", "decoder_layers",
             "decoder_max_positions"),
    "joint": ("hidden_dim", "num_encoder_layers", "ffn_dim", "visual_dim", "transcript_dim", "query_dim", "vocab_size",
              "decoder_layers", "decoder_max_positions", "joint_max_positions", "joint_fusion_dim"),
}  # fmt: skip
_TITLES = {"quag": "QUAG", "joint": "Joint"}
_REFERENCES = {"quag": "QUAG (tuyunbin/QUAG modeling_quag.py)", "joint": "Joint (j-min/HiREST modeling.py)"}


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Unique trainable parameters per top-level module, plus ``"total"``.

    Each entry of an ``nn.ModuleDict`` (the task heads) is its own row (``heads.step_captioning``). Tied
    tensors (the decoder's output projection is its word-embedding matrix) are counted once, and parameters
    with ``requires_grad=False`` are left out.

    Args:
        model: Any module; parameters may live on the ``meta`` device.

    Returns:
        Module name -> parameter count, in registration order, ending with ``"total"``.
    """
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():  # named_parameters() already drops repeated tensors
        if not p.requires_grad:
            continue
        parts = name.split(".")
        child = getattr(model, parts[0], None)
        group = ".".join(parts[:2]) if isinstance(child, nn.ModuleDict) else parts[0]
        counts[group] = counts.get(group, 0) + p.numel()
    counts["total"] = sum(counts.values())
    return counts


def parameter_report(cfg: ModelConfig) -> str:
    """The ``quag model-info`` text: per-module counts of ``cfg``'s model and the reconciliation with the
    reference's total (which also counts the modules the reference builds but never uses)."""
    from quag.models import build_model
    from quag.models.reference_compat import REFERENCE_TRAINABLE, REFERENCE_UNBUILT

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = build_model(cfg)
    counts = count_parameters(model)
    width = max(len(k) for k in counts) + 4
    lines = [f"{_TITLES[cfg.arch]}: trainable parameters (unique; tied weights once)"]
    for name, n in counts.items():
        lines.append(f"  {name:<{width}}{n:>14,}")
        if name == "heads.step_captioning":  # the decoder dominates: show where its parameters are
            decoder = model.get_submodule(name)
            for part, m in decoder.named_children():
                n_part = sum(p.numel() for p in m.parameters())
                if n_part:
                    lines.append(f"    {part:<{width - 2}}{n_part:>14,}")
            n_bias = decoder.get_parameter("output_bias").numel()
            lines.append(f"    {'output_bias':<{width - 2}}{n_bias:>14,}")
    paper = ModelConfig(arch=cfg.arch)
    differs = [f for f in _SHAPE_FIELDS[cfg.arch] if getattr(cfg, f) != getattr(paper, f)]
    if differs:
        lines.append(
            f"\nReference totals hold for the paper setting only; this config differs in: {', '.join(differs)}"
        )
        return "\n".join(lines) + "\n"
    unbuilt = REFERENCE_UNBUILT[cfg.arch]
    reference = REFERENCE_TRAINABLE[cfg.arch]
    lines.append(f"\nReference {_REFERENCES[cfg.arch]}: {reference:,} trainable")
    lines.append("  modules it builds and saves but never uses (not built here):")
    lines += [f"    {name:<{width - 2}}{n:>14,}" for name, n in unbuilt.items()]
    total = counts["total"] + sum(unbuilt.values())
    verdict = "matches" if total == reference else f"DIFFERS by {total - reference:+,}"
    lines.append(f"  ours + unused = {counts['total']:,} + {sum(unbuilt.values()):,} = {total:,} ({verdict})")
    return "\n".join(lines) + "\n"
