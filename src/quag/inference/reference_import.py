"""The authors' released checkpoints as quag checkpoint folders (what ``quag import-checkpoint`` calls).

The authors' ``HiREST_BEST.pth`` (Joint) and QUAG's checkpoint are bare state dicts with their own key names.
:func:`import_reference_checkpoint` reads one (:func:`quag.models.reference_compat.read_reference_state_dict`),
loads it strictly into a model built at the paper setting
(:func:`quag.models.reference_compat.load_reference_state_dict`) and writes a checkpoint folder
(:mod:`quag.checkpoint`) with:

- ``config.yaml``: the paper setting of the architecture (``configs/hirest_quag.yaml`` / ``hirest_joint.yaml``:
  H = 768, 12 heads, 2 layers, 1024-d frames, 384-d transcript, 1024-d queries; 3 beams);
- ``feature_spec.json``: the official release's features (EVA-CLIP-g/14 frames at 1 fps, Whisper transcripts
  embedded by all-MiniLM-L6-v2, EVA-CLIP-g/14 text queries), so ``quag predict`` computes exactly those on a new
  video and ``quag infer`` refuses features made otherwise;
- ``meta.json`` (step 0, no metrics) and ``source.json`` (the file it came from, its SHA-256, the keys skipped).

``quag infer``, ``quag predict`` and :meth:`quag.pipeline.predictor.Predictor.from_checkpoint` then read the folder
like any checkpoint; it cannot resume training (no optimizer state).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from quag.checkpoint import CheckpointMeta, save_checkpoint
from quag.config import DataConfig, EvalConfig, ExperimentConfig, ModelConfig, TrainConfig
from quag.data.features import FeatureSpec
from quag.io import atomic_write_json
from quag.models import build_model
from quag.models.reference_compat import (
    ReferenceFormatError,
    detect_reference_arch,
    load_reference_state_dict,
    read_reference_state_dict,
)

logger = logging.getLogger(__name__)

ARCHS = ("quag", "joint")


def paper_config(arch: str, name: str) -> ExperimentConfig:
    """The paper setting of ``arch`` (``quag`` or ``joint``), as ``configs/hirest_<arch>.yaml`` sets it."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {list(ARCHS)}, got {arch!r}")
    return ExperimentConfig(
        name=name,
        model=ModelConfig(arch=arch, hidden_dim=768, visual_dim=1024, transcript_dim=384, query_dim=1024),  # type: ignore[arg-type]
        data=DataConfig(root="data/hirest-features"),
        train=TrainConfig(msp_loss_weight=0.0003 if arch == "quag" else 0.0),
        eval=EvalConfig(num_beams=3),
    )


def official_feature_spec() -> FeatureSpec:
    """The features of the official HiREST release (EVA-CLIP-g/14 frames, Whisper + MiniLM, EVA-CLIP text)."""
    return FeatureSpec()


@dataclass
class ImportResult:
    """What :func:`import_reference_checkpoint` wrote."""

    folder: Path
    arch: str
    tensors: int
    """Reference tensors loaded."""
    skipped: list[str] = field(default_factory=list)
    """Reference keys of modules the authors build but never use (not built here)."""
    dropped: list[str] = field(default_factory=list)
    """Frozen EVA-CLIP keys (``clip_model.*``) found in the file and left out."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def import_reference_checkpoint(path: str | Path, out: str | Path, arch: str | None = None) -> ImportResult:
    """Convert the authors' checkpoint file into a quag checkpoint folder ``out`` (see the module docstring).

    Args:
        path: ``HiREST_BEST.pth`` (Joint) or a QUAG checkpoint of the authors' code.
        out: the checkpoint folder to write (replaced atomically if it exists).
        arch: ``quag`` or ``joint``; None: detected from the keys. A given value is checked against the keys.

    Raises:
        ReferenceFormatError: the file is not such a checkpoint, or is of the other architecture.
        ValueError: the strict load failed (every missing, unexpected or mis-shaped key is listed).
    """
    path, out = Path(path), Path(out)
    state, dropped = read_reference_state_dict(path)
    detected = detect_reference_arch(state)
    if arch is None:
        if detected is None:
            raise ReferenceFormatError(f"{path}: cannot tell whether this is a QUAG or a Joint checkpoint; pass --arch")
        arch = detected
    elif detected is not None and detected != arch:
        raise ReferenceFormatError(f"{path}: a {detected} checkpoint, not {arch}; pass --arch {detected}")
    cfg = paper_config(arch, out.name)
    with torch.device("meta"):  # every parameter is filled by the strict load below: skip the initialisation
        model = build_model(cfg.model)
    model = model.to_empty(device="cpu")
    skipped = load_reference_state_dict(model, state, arch)
    save_checkpoint(out, model, cfg, official_feature_spec(), CheckpointMeta())
    atomic_write_json(
        out / "source.json",
        {
            "source": str(path.resolve()),
            "sha256": _sha256(path),
            "arch": arch,
            "skipped_unused_modules": len(skipped),
            "dropped_clip_model_keys": len(dropped),
        },
    )
    logger.info("imported %s (%s) into %s", path, arch, out)
    return ImportResult(out, arch, len(state) - len(skipped), skipped, dropped)
