"""Tiny model configs and synthetic batches for the model tests (CPU, milliseconds per forward)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from quag.config import ModelConfig
from quag.data.collate import Batch, Sample, collate
from quag.data.tokenizer import CLS_ID, SEP_ID

MANIFESTS = Path(__file__).parent / "manifests"

TINY: dict[str, Any] = dict(
    hidden_dim=32,
    num_heads=4,
    num_encoder_layers=2,
    ffn_dim=64,
    visual_dim=24,
    transcript_dim=12,
    query_dim=16,
    vocab_size=120,
    decoder_layers=2,
    decoder_max_positions=64,
    joint_max_positions=32,
    joint_fusion_dim=24,
)


def tiny_config(arch: str = "quag", **overrides: Any) -> ModelConfig:
    """A tiny :class:`ModelConfig` (D=32, 4 heads, 2 layers, vocabulary 120)."""
    return ModelConfig(arch=arch, **{**TINY, **overrides})  # type: ignore[arg-type]


def make_sample(task: str, length: int, cfg: ModelConfig, rng: np.random.Generator, caption_len: int = 9) -> Sample:
    """One synthetic sample of ``task`` with ``length`` frames and valid targets."""
    video = rng.standard_normal((length, cfg.visual_dim)).astype(np.float32)
    transcript = rng.standard_normal((length, cfg.transcript_dim)).astype(np.float32)
    transcript[rng.random(length) < 0.3] = 0.0  # silent seconds, as in real transcripts
    query = rng.standard_normal(cfg.query_dim).astype(np.float32)
    sample = Sample(task=task, video_id=f"v{length}.mp4", query="q", duration=float(length), video=video,
                    transcript=transcript, query_embedding=query, moment_mask=np.ones(length, dtype=bool))  # fmt: skip
    if task == "moment_retrieval":
        start = int(rng.integers(0, length))
        sample.start_frame, sample.end_frame = start, int(rng.integers(start, length))
    elif task == "moment_segmentation":
        cut = int(rng.integers(0, length - 1))
        sample.moment_mask = np.arange(length) >= cut
        sample.boundary_mask = np.zeros(length, dtype=bool)
        sample.boundary_mask[[0, cut]] = True
        sample.segment_target = int(rng.integers(cut + 1, length))
        sample.moment_frames = (0, length - 1)
    else:
        n = int(rng.integers(2, caption_len - 1))
        words = rng.integers(SEP_ID + 1, cfg.vocab_size, size=n)
        ids = np.zeros(caption_len, dtype=np.int64)
        targets = np.zeros(caption_len, dtype=np.int64)
        ids[0], ids[1 : n + 1] = CLS_ID, words
        targets[:n], targets[n] = words, SEP_ID
        sample.caption_ids, sample.caption_targets = ids, targets
    return sample


def make_batch(task: str, lengths: list[int], cfg: ModelConfig, seed: int = 0) -> Batch:
    """A collated batch of synthetic samples with the given frame counts."""
    rng = np.random.default_rng(seed)
    return collate([make_sample(task, n, cfg, rng) for n in lengths])
