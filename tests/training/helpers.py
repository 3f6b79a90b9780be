"""Tiny experiment configs on the session's HiREST-sim fixture."""

from __future__ import annotations

from pathlib import Path

from quag.config import ExperimentConfig, load_config

TINY = [
    "model.hidden_dim=32",
    "model.num_heads=2",
    "model.ffn_dim=64",
    "model.num_encoder_layers=1",
    "model.decoder_layers=1",
    "model.query_dim=384",
    "model.attention_dropout=0.0",
    "train.batch_size=4",
    "train.lr=1e-3",
    "train.warmup_ratio=0.0",
    "train.log_every=1",
    "eval.batch_size=8",
    "eval.num_beams=2",
    "eval.max_caption_tokens=8",
    "eval.segmentation_rounds=4",
    "eval.val_caption_metrics=[CIDEr]",
]


def tiny_overrides(root: Path, out: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", f"output_dir={out}", "name=tiny", *TINY, *extra]


def tiny_experiment(root: Path, out: Path, *extra: str) -> ExperimentConfig:
    return load_config(None, tiny_overrides(root, out, *extra))
