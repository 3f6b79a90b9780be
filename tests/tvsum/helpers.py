"""Helpers of the TVSum tests: a small synthetic TVSum folder and the config overrides of a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from quag.tvsum.data import TVSUM_SPLITS

SYNTHETIC_DIMS = {"visual": 8, "audio": 6, "query": 4}
"""Per-stream widths of the synthetic folder (RGB and flow each get half of ``visual``)."""


def write_synthetic_tvsum(root: Path, categories: tuple[str, ...] = ("VU", "BK"), seed: int = 0) -> Path:
    """A TVSum folder with the official split's ids, few clips and tiny features.

    The annotators' scores follow the first RGB channel (plus noise), so a model can learn them; one training
    video gets an extra audio row, like kLxoNp-UchI.
    """
    rng = np.random.default_rng(seed)
    for sub in ("video_features", "audio_features", "query_features"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    half = SYNTHETIC_DIMS["visual"] // 2
    anno = {}
    for cat in categories:
        for i, vid in enumerate((*TVSUM_SPLITS[cat]["train"], *TVSUM_SPLITS[cat]["test"])):
            n = int(rng.integers(8, 16))
            rgb = rng.normal(size=(n, half))
            signal = rgb[:, 0]
            scores = np.clip(np.round(3 + 1.2 * signal[:, None] + 0.5 * rng.normal(size=(n, 20))), 1, 5)
            np.save(root / "video_features" / f"{vid}_rgb.npy", rgb)
            np.save(root / "video_features" / f"{vid}_opt.npy", rng.normal(size=(n, half)))
            extra = 1 if i == 0 else 0
            np.save(root / "audio_features" / f"{vid}.npy", rng.normal(size=(n + extra, 6)).astype(np.float32))
            q = rng.normal(size=(1, SYNTHETIC_DIMS["query"])).astype(np.float16)
            np.savez(root / "query_features" / f"{vid}.npz", token=np.repeat(q, 3, axis=0), text=q)
            anno[vid] = {"domain": cat, "title": f"{cat} video {i}", "anno": scores.tolist()}
    (root / "tvsum_anno.json").write_text(json.dumps(anno))
    return root


def tiny_tvsum_overrides(root: Path) -> list[str]:
    """Config overrides for a fast model on the synthetic folder."""
    return [
        f"data.root={root}",
        f"model.visual_dim={SYNTHETIC_DIMS['visual']}",
        f"model.audio_dim={SYNTHETIC_DIMS['audio']}",
        f"model.query_dim={SYNTHETIC_DIMS['query']}",
        "model.hidden_dim=16",
        "model.num_heads=2",
        "model.ffn_dim=32",
        "model.num_encoder_layers=1",
        "model.input_dropout=0.0",
    ]
