"""Query embeddings: encode every query of a dataset root once (``quag encode-queries``).

The reference re-encodes each query with the frozen EVA-CLIP-g/14 text tower at every step
(docs/reference.md); the embedding is a function of the query text only, so it is computed once and stored as
``<root>/<spec.query_file>`` in the format :meth:`quag.data.features.FeatureStore.queries` reads::

    {"queries": [str, ...], "embeddings": (Q, D) float32 tensor, "encoder": str}

Encoders: ``eva-clip-text`` (the reference: CLIP BPE tokens -> EVA-CLIP text tower, 1024-d, unnormalised; needs
the EVA-CLIP checkpoint) and ``minilm`` (all-MiniLM-L6-v2, 384-d, unit-norm; offline, no checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import torch

from quag.data.annotations import load_split_file
from quag.data.features import FeatureSpec
from quag.io import atomic_torch_save
from quag.pipeline.eva_clip import ClipTextTower, EvaClipConfig
from quag.pipeline.text import MiniLMEncoder

logger = logging.getLogger(__name__)

QUERY_ENCODERS = ("eva-clip-text", "minilm")


class QueryEncoder(Protocol):
    """``encode(texts) -> (N, dim)`` float32; ``name`` is recorded as the spec's ``query_encoder``."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


class EvaClipTextEncoder:
    """The reference query encoder: OpenAI-CLIP BPE tokens -> EVA-CLIP text tower (unnormalised).

    Args:
        checkpoint: EVA-CLIP checkpoint (only its ``text.*`` weights are loaded).
        config: architecture; default: embedded in the checkpoint, else EVA-CLIP-g/14.
        bpe_path: CLIP merges file; default: from an installed package (:func:`default_bpe_path`).
        device: torch device.
        batch_size: queries per forward pass.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        config: EvaClipConfig | None = None,
        bpe_path: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 256,
    ) -> None:
        from quag.pipeline.clip_tokenizer import ClipTokenizer
        from quag.pipeline.weights import load_tower

        self.tokenizer = ClipTokenizer(bpe_path)
        model, config = load_tower(checkpoint, "text", config=config, device=device)
        self.model = cast(ClipTextTower, model)
        self.config = config
        self.name = f"{config.name}-text"
        self.dim = config.embed_dim
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(texts[i : i + self.batch_size], self.config.text.context_length)
            out.append(self.model(tokens.to(self.device)).float().cpu().numpy())  # (B, D)
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def load_query_encoder(
    encoder: str,
    checkpoint: str | Path | None = None,
    bpe_path: str | Path | None = None,
    device: str = "cpu",
) -> QueryEncoder:
    """``eva-clip-text`` (needs ``checkpoint``) or ``minilm``."""
    if encoder == "eva-clip-text":
        if checkpoint is None:
            raise ValueError(
                "the eva-clip-text query encoder needs the EVA-CLIP checkpoint (--checkpoint "
                "eva_clip_psz14.pt, BAAI/EVA on Hugging Face); or use --encoder minilm"
            )
        return EvaClipTextEncoder(checkpoint, bpe_path=bpe_path, device=device)
    if encoder == "minilm":
        return MiniLMEncoder(device=device)
    raise ValueError(f"unknown query encoder {encoder!r}; choose from {list(QUERY_ENCODERS)}")


def collect_queries(root: str | Path) -> list[str]:
    """Every distinct query of ``<root>/splits/all_data_*.json`` (sorted files, first-seen order).

    The negative-sample file (``all_data_test_negative_samples.json``) holds videos, not queries, and is skipped.
    """
    root = Path(root)
    files = sorted(p for p in (root / "splits").glob("all_data_*.json") if "negative" not in p.name)
    if not files:
        raise FileNotFoundError(f"no split files {root}/splits/all_data_<split>.json: is {root} a HiREST root?")
    seen: dict[str, None] = {}
    for path in files:
        for record in load_split_file(path):
            seen.setdefault(record.query, None)
    return list(seen)


def write_query_file(root: str | Path, queries: list[str], embeddings: np.ndarray, encoder: str) -> Path:
    """Write the query-embedding file and point ``feature_spec.json``'s query fields at it (both atomic).

    Returns:
        The path of the query-embedding file.
    """
    root = Path(root)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(queries):
        raise ValueError(f"{len(queries)} queries need a ({len(queries)}, D) matrix, got {embeddings.shape}")
    spec = FeatureSpec.load(root)
    spec = replace(
        spec, query_encoder=encoder, query_dim=int(embeddings.shape[1]), query_file=f"query_feats_{encoder}.pt"
    )
    path = root / spec.query_file
    payload = {
        "queries": list(queries),
        "embeddings": torch.from_numpy(embeddings.astype(np.float32)),
        "encoder": encoder,
    }
    atomic_torch_save(path, payload)
    spec.save(root)
    logger.info("wrote %d query embeddings (%s, %d-d) to %s", len(queries), encoder, embeddings.shape[1], path)
    return path


def encode_queries(root: str | Path, encoder: QueryEncoder) -> Path:
    """Encode all queries of ``root`` with ``encoder`` and write the query-embedding file."""
    queries = collect_queries(root)
    embeddings = encoder.encode(queries)
    return write_query_file(root, queries, embeddings, encoder.name)
