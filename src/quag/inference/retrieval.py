"""Zero-shot video retrieval: rank a split's videos for each query by cosine similarity of pooled features.

HiREST's video-retrieval baseline needs no training: a video is the mean of its 1-fps frame features, and the
query's text embedding (from the text tower of the same CLIP) is compared with every video by cosine similarity.
:func:`rank_split_videos` does the same over the videos of a split, from the features of a dataset root:

- ``stream="visual"``: the mean of the L2-normalised frame features; needs query embeddings in the frame
  space, i.e. the query encoder is the text tower of the frame encoder (the official release: EVA-CLIP-g/14 frames,
  EVA-CLIP-g/14 text queries);
- ``stream="transcript"``: the mean of the per-second transcript embeddings over the seconds where somebody
  speaks; needs the query encoder to be the transcript encoder (HiREST-sim: MiniLM for both);
- ``stream="auto"``: ``visual`` when that is possible, else ``transcript``, else an error that says why.

A video with no usable row (a silent video with ``transcript``) scores 0. The output is the official
``video_retrieval`` prediction object, ``{query: {"videos": [...], "scores": [...]}}``, best first, which
``quag evaluate --task video_retrieval`` scores (R@1/5/10/50).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from quag.data import annotations as A
from quag.data.features import FeatureError, FeatureSpec, FeatureStore

logger = logging.getLogger(__name__)

RetrievalStream = Literal["auto", "visual", "transcript"]
RETRIEVAL_STREAMS: tuple[str, ...] = ("auto", "visual", "transcript")


def _visual_shares_query_space(spec: FeatureSpec) -> bool:
    return (
        not spec.speech_only
        and "visual" not in spec.simulated
        and spec.query_encoder in (spec.visual_encoder, f"{spec.visual_encoder}-text")
        and spec.query_dim == spec.visual_dim
    )


def _transcript_shares_query_space(spec: FeatureSpec) -> bool:
    return spec.query_encoder == spec.transcript_encoder and spec.query_dim == spec.transcript_dim


def retrieval_stream(spec: FeatureSpec, stream: RetrievalStream = "auto") -> Literal["visual", "transcript"]:
    """The stream whose pooled features are compared with the queries (see the module docstring).

    Raises:
        FeatureError: the requested stream (or, for ``auto``, every stream) is not in the queries' embedding space.
    """
    visual_ok, transcript_ok = _visual_shares_query_space(spec), _transcript_shares_query_space(spec)
    where = (
        f"queries {spec.describe('query')}, frames {spec.describe('visual')}, transcript {spec.describe('transcript')}"
    )
    if stream == "visual" or (stream == "auto" and visual_ok):
        if not visual_ok:
            raise FeatureError(
                f"video retrieval from frames needs query embeddings from the frame encoder's text tower ({where}); "
                "use --retrieval-stream transcript or encode the queries with the frame encoder's text tower"
            )
        return "visual"
    if stream in ("transcript", "auto"):
        if not transcript_ok:
            raise FeatureError(
                f"video retrieval needs query embeddings in the space of the frames or of the transcript ({where}); "
                "encode the queries with one of those encoders (quag encode-queries)"
            )
        return "transcript"
    raise ValueError(f"retrieval stream must be one of {list(RETRIEVAL_STREAMS)}, got {stream!r}")


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


def pooled_video_features(
    store: FeatureStore, videos: Sequence[A.VideoAnnotation], stream: Literal["visual", "transcript"]
) -> tuple[list[str], np.ndarray]:
    """One unit vector per distinct video of ``videos`` (first-seen order): its rows, normalised, averaged.

    Returns:
        ``(video keys, (N, D) pooled features)``; a video without a usable row gets a zero row.
    """
    keys: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    for v in videos:
        if v.video in seen:
            continue
        seen.add(v.video)
        feats = store.visual(v.video, v.num_frames) if stream == "visual" else store.transcript(v.video, v.num_frames)
        feats = feats[np.linalg.norm(feats, axis=1) > 0]  # silent seconds hold zero rows
        keys.append(v.video)
        rows.append(_unit(_unit(feats).mean(axis=0)) if len(feats) else np.zeros(feats.shape[1], dtype=np.float32))
    return keys, np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), dtype=np.float32)


def rank_split_videos(
    store: FeatureStore,
    videos: Sequence[A.VideoAnnotation],
    stream: RetrievalStream = "auto",
    top_k: int = 0,
) -> dict[str, Any]:
    """The official video-retrieval predictions: every query of ``videos`` against every video of ``videos``.

    Args:
        store: the dataset root's features (its query-embedding file holds every query).
        videos: the split's (query, video) records; each distinct video is a candidate, each distinct query asks.
        stream: which features are pooled (see the module docstring).
        top_k: keep the best ``top_k`` videos per query (0: all).

    Returns:
        ``{query: {"videos": [...], "scores": [...]}}``, scores descending.
    """
    chosen = retrieval_stream(store.spec, stream)
    keys, pooled = pooled_video_features(store, videos, chosen)
    queries = list(dict.fromkeys(v.query for v in videos))
    if not queries:
        return {}
    q = _unit(np.stack([store.query_embedding(text) for text in queries]).astype(np.float32))  # (Q, D)
    sims = q @ pooled.T  # (Q, N) cosine similarities
    logger.info("video retrieval: %d queries x %d videos by pooled %s features", len(queries), len(keys), chosen)
    out: dict[str, Any] = {}
    for i, text in enumerate(queries):
        order = np.argsort(-sims[i], kind="stable")
        if top_k > 0:
            order = order[:top_k]
        out[text] = {"videos": [keys[j] for j in order], "scores": [float(sims[i, j]) for j in order]}
    return out
