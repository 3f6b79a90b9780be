"""TVSum features and labels read in place (UMT release layout), the official split, and batching.

The files are research-only and are never copied into the repository: :func:`resolve_tvsum_dir` finds them at,
in order, an explicit path (CLI ``--data-dir`` / ``data.root``), ``$QUAG_TVSUM_DIR``, or
``<repository>/../shared/data/tvsum``. Layout (one row per 2-s clip, see the folder's README)::

    video_features/{vid}_rgb.npy   float64 (N, 1024)  I3D RGB
    video_features/{vid}_opt.npy   float64 (N, 1024)  I3D optical flow
    audio_features/{vid}.npy       float32 (N, 2048)  PANN CNN14 (kLxoNp-UchI has N + 1 rows)
    query_features/{vid}.npz       'text' float16 (1, 512) pooled CLIP title; 'token' (L, 512) per token
    tvsum_anno.json                vid -> {domain, title, anno: N x 20 scores in 1..5, ...}

Each video is truncated to its shortest stream (RGB, flow, audio, labels), as UMT's loader does. The query is
the pooled CLIP sentence embedding (``text``): QC2 takes one sentence vector R_t (paper Eq. 5). The token
features (``token``, start and end tokens included) are read too, for ``model.query_input=tokens`` (QD-DETR's
input); ``load_audio=False`` (``model.use_audio=false``) leaves the audio files unread.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from quag.tvsum.config import TVSUM_CATEGORIES

TVSUM_DIR_ENV = "QUAG_TVSUM_DIR"
"""Environment variable that overrides the default feature folder."""

TVSUM_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "BK": {"train": ("WxtbjNsCQ8A", "EE-bNr36nyA", "oDXZc0tZe04", "uGu_10sucQo"), "test": ("Se3oxnaPsz0",)},
    "BT": {"train": ("eQu1rNs0an0", "qqR6AEXwxoQ", "EYqVtI9YWJA", "iVt07TCkFM0"), "test": ("JgHubY5Vw3Y",)},
    "DS": {"train": ("kLxoNp-UchI", "NyBmCxDoHJU", "jcoYJXDG9sw", "-esJrBWj2d8"), "test": ("E11zDS9XGzg",)},
    "FM": {"train": ("_xMr-HKMfVA", "byxOvuiIJV0", "VuWGsYPqAX8", "xmEERLqJ2kU"), "test": ("JKpqYvAdIsw",)},
    "GA": {"train": ("xxdtq8mxegs", "i3wAGJaaktw", "0tmA_C6XwfM", "3eYKfiOEJNs"), "test": ("Bhxk-O1Y7Ho",)},
    "MS": {"train": ("Hl-__g2gn_A", "WG0MBPpPC6I", "LRw_obCPUt0", "37rzWOQsNIw"), "test": ("Yi4Ij2NM7U4",)},
    "PK": {"train": ("GsAD1KT1xo8", "XkqCExn6_Us", "b626MiF1ew4", "PJrm840pAUI"), "test": ("cjibtmSLxQ4",)},
    "PR": {"train": ("RBCABdttQmI", "z_6gVvQb2d0", "4wU_LUjG5Ic", "91IHQYk1IQM"), "test": ("fWutDQy1nnY",)},
    "VT": {"train": ("gzDbaEs1Rlg", "XzYM3PfTM4w", "98MoyGZKHXc", "AwmHb44_ouw"), "test": ("J0nA4VgnoCo",)},
    "VU": {"train": ("akI8YFjEmUw", "HT5vyqe0Xaw", "vdmoEJ5YbrQ", "xwqBXPGE9pQ"), "test": ("sTEELN-vY30",)},
}
"""The official split: UMT ``datasets/utils/static.py`` TVSUM_SPLITS (its ``val`` is our ``test``), identical to
QD-DETR's ``tvsum_{train,val}.jsonl`` (checked by the tests): 4 training and 1 test video per category."""


def repository_root() -> Path:
    """The checkout that holds ``src/quag`` (three levels above this package)."""
    return Path(__file__).resolve().parents[3]


def resolve_tvsum_dir(root: str | Path | None = None) -> Path:
    """The TVSum feature folder: ``root`` if given, else ``$QUAG_TVSUM_DIR``, else ``<repo>/../shared/data/tvsum``.

    The path is returned whether or not it exists; :func:`load_tvsum` raises with a remedy when it is absent.
    """
    if root:
        return Path(root).expanduser()
    env = os.environ.get(TVSUM_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return (repository_root() / ".." / "shared" / "data" / "tvsum").resolve()


@dataclass
class TVSumVideo:
    """One TVSum video, truncated to its shortest stream.

    Attributes:
        video_id: YouTube id.
        category: One of :data:`~quag.tvsum.config.TVSUM_CATEGORIES`.
        title: The title, i.e. the text query.
        visual: (T, 2048) float32, I3D RGB then flow.
        audio: (T, 2048) float32, PANN; None when loaded without audio.
        query_embedding: (512,) float32, pooled CLIP text embedding of the title.
        query_tokens: (L, 512) float32, CLIP token features of the title.
        annotations: (T, 20) float64 importance scores 1..5, one column per annotator.
        stream_lengths: Rows of each stream before truncation (``rgb``, ``opt``, ``audio``, ``labels``).
    """

    video_id: str
    category: str
    title: str
    visual: np.ndarray
    audio: np.ndarray | None
    query_embedding: np.ndarray
    annotations: np.ndarray
    stream_lengths: dict[str, int] = field(default_factory=dict)
    query_tokens: np.ndarray | None = None

    @property
    def num_clips(self) -> int:
        return int(self.annotations.shape[0])

    def saliency_target(self) -> np.ndarray:
        """(T,) mean annotator score rescaled to [0, 1]: ``(mean - 1) / 4``.

        QD-DETR's ``sum(score - 1) / 80 * 12`` is this times 12, so its 12 rank levels are thresholds j / 12 here.
        """
        return ((self.annotations.mean(1) - 1.0) / 4.0).astype(np.float32)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def load_annotations(root: Path) -> dict[str, dict]:
    """``tvsum_anno.json``: video id -> record with ``domain``, ``title`` and the N x 20 ``anno`` list."""
    path = root / "tvsum_anno.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: TVSum features are not at {root}. Point --data-dir (or ${TVSUM_DIR_ENV}) at the "
            "folder holding tvsum_anno.json, video_features/, audio_features/ and query_features/"
        )
    return json.loads(path.read_text())


def load_video(root: Path, video_id: str, record: dict, normalize: bool = True, load_audio: bool = True) -> TVSumVideo:
    """Read one video's streams and labels, truncate them to the shortest, optionally L2-normalise.

    Args:
        root: Feature folder.
        video_id: YouTube id.
        record: Its ``tvsum_anno.json`` entry.
        normalize: L2-normalise each clip's 2048-d visual vector (RGB and flow together) and audio vector.
        load_audio: Read the PANN file (False: ``audio`` is None and does not take part in the truncation).
    """
    rgb = np.load(root / "video_features" / f"{video_id}_rgb.npy")
    opt = np.load(root / "video_features" / f"{video_id}_opt.npy")
    raw_audio = np.load(root / "audio_features" / f"{video_id}.npy") if load_audio else None
    with np.load(root / "query_features" / f"{video_id}.npz") as q:
        query = np.asarray(q["text"], dtype=np.float32).reshape(-1)  # (512,)
        tokens = np.asarray(q["token"], dtype=np.float32)  # (L, 512)
    anno = np.asarray(record["anno"], dtype=np.float64)  # (N, 20)
    lengths = {"rgb": len(rgb), "opt": len(opt), "labels": len(anno)}
    if raw_audio is not None:
        lengths["audio"] = len(raw_audio)
    t = min(lengths.values())
    visual = np.concatenate([rgb[:t], opt[:t]], axis=1).astype(np.float32)  # (T, 2048)
    audio = None if raw_audio is None else raw_audio[:t].astype(np.float32)  # (T, 2048)
    if normalize:
        visual = _l2_normalize(visual)
        audio = None if audio is None else _l2_normalize(audio)
    return TVSumVideo(
        video_id=video_id,
        category=str(record["domain"]),
        title=str(record["title"]),
        visual=visual,
        audio=audio,
        query_embedding=query,
        annotations=anno[:t],
        stream_lengths=lengths,
        query_tokens=tokens,
    )


def load_tvsum(
    root: str | Path | None = None,
    categories: Sequence[str] = TVSUM_CATEGORIES,
    normalize: bool = True,
    load_audio: bool = True,
) -> dict[str, TVSumVideo]:
    """All videos (train and test) of ``categories``, keyed by video id (``load_audio``: see :func:`load_video`).

    Raises:
        FileNotFoundError: the folder or one of its files is missing (the message says where it looked).
        ValueError: a split video is not in the annotations, or its annotated category disagrees with the split.
    """
    folder = resolve_tvsum_dir(root)
    anno = load_annotations(folder)
    videos: dict[str, TVSumVideo] = {}
    for category in categories:
        if category not in TVSUM_SPLITS:
            raise ValueError(f"unknown TVSum category {category!r}; choose from {list(TVSUM_CATEGORIES)}")
        for vid in (*TVSUM_SPLITS[category]["train"], *TVSUM_SPLITS[category]["test"]):
            if vid not in anno:
                raise ValueError(f"{vid} (split {category}) is not in {folder / 'tvsum_anno.json'}")
            video = load_video(folder, vid, anno[vid], normalize=normalize, load_audio=load_audio)
            if video.category != category:
                raise ValueError(f"{vid} is annotated as {video.category} but the split lists it under {category}")
            videos[vid] = video
    return videos


@dataclass
class TVSumBatch:
    """Padded videos of one step.

    Attributes:
        video_ids: B ids, batch order.
        visual: (B, T, Dv) float32, zero on padding.
        audio: (B, T, Da) float32, zero on padding; None for videos loaded without audio.
        query_embedding: (B, Dq) float32.
        video_mask: (B, T) bool, True on real clips.
        saliency: (B, T) float32 targets in [0, 1] (:meth:`TVSumVideo.saliency_target`), 0 on padding.
        query_tokens: (B, L, Dq) float32 title tokens, zero on padding (None if a video has none).
        query_token_mask: (B, L) bool, True on real tokens.
    """

    video_ids: list[str]
    visual: torch.Tensor
    audio: torch.Tensor | None
    query_embedding: torch.Tensor
    video_mask: torch.Tensor
    saliency: torch.Tensor
    query_tokens: torch.Tensor | None = None
    query_token_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> TVSumBatch:
        def move(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(device)

        return TVSumBatch(
            self.video_ids,
            self.visual.to(device),
            move(self.audio),
            self.query_embedding.to(device),
            self.video_mask.to(device),
            self.saliency.to(device),
            move(self.query_tokens),
            move(self.query_token_mask),
        )

    def select(self, order: Sequence[int] | np.ndarray) -> TVSumBatch:
        """The videos at ``order``, in that order (same tensors as collating them in that order when ``order``
        covers every video, since the padded length is then the same)."""
        idx = torch.as_tensor(np.asarray(order), dtype=torch.long)

        def pick(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[idx]

        return TVSumBatch(
            [self.video_ids[int(i)] for i in idx],
            self.visual[idx],
            pick(self.audio),
            self.query_embedding[idx],
            self.video_mask[idx],
            self.saliency[idx],
            pick(self.query_tokens),
            pick(self.query_token_mask),
        )


def collate_videos(videos: Sequence[TVSumVideo]) -> TVSumBatch:
    """Pad whole videos to the longest of the batch (the peers train on whole TVSum videos, no crops)."""
    if not videos:
        raise ValueError("collate_videos needs at least one video")
    b, t = len(videos), max(v.num_clips for v in videos)
    visual = torch.zeros(b, t, videos[0].visual.shape[1])
    with_audio = all(v.audio is not None for v in videos)
    audio = torch.zeros(b, t, videos[0].audio.shape[1]) if with_audio and videos[0].audio is not None else None
    mask = torch.zeros(b, t, dtype=torch.bool)
    saliency = torch.zeros(b, t)
    for i, v in enumerate(videos):
        n = v.num_clips
        visual[i, :n] = torch.from_numpy(v.visual)
        if audio is not None and v.audio is not None:
            audio[i, :n] = torch.from_numpy(v.audio)
        mask[i, :n] = True
        saliency[i, :n] = torch.from_numpy(v.saliency_target())
    query = torch.from_numpy(np.stack([v.query_embedding for v in videos]))  # (B, Dq)
    tokens, token_mask = None, None
    if all(v.query_tokens is not None for v in videos):
        arrays = [v.query_tokens for v in videos if v.query_tokens is not None]
        tokens = torch.zeros(b, max(len(x) for x in arrays), arrays[0].shape[1])  # (B, L, Dq)
        token_mask = torch.zeros(tokens.shape[:2], dtype=torch.bool)  # (B, L)
        for i, x in enumerate(arrays):
            tokens[i, : len(x)] = torch.from_numpy(x)
            token_mask[i, : len(x)] = True
    return TVSumBatch([v.video_id for v in videos], visual, audio, query, mask, saliency, tokens, token_mask)
