"""Checkpoints: one folder each, written atomically, self-describing.

::

    <run>/checkpoints/<name>/
        model.safetensors     weights (tied tensors stored once)
        config.yaml           the resolved ExperimentConfig
        feature_spec.json     the encoders the model was trained on (checked against features at inference)
        meta.json             step, epoch, metrics, quag version
        trainer_state.pt      optimizer, scheduler, RNG states of every rank (only needed to resume)

The folder is assembled under a temporary name and renamed into place, so a crash never leaves a half-written
checkpoint; the previous one with the same name is replaced only after the new one is complete.

Training writes checkpoints and reads them back to resume; inference, the predictor and the demo read them. This
module sits below all of them (see docs/architecture.md) and holds only reading and writing: what goes into
``trainer_state.pt`` (optimizer, scheduler, RNG states) is assembled by the training recipe.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from quag import __version__
from quag.config import ExperimentConfig, config_from_dict, dump_config
from quag.data.features import FeatureSpec
from quag.io import atomic_torch_save, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from quag.models import HiRESTModel

WEIGHTS = "model.safetensors"
STATE = "trainer_state.pt"


@dataclass
class CheckpointMeta:
    step: int = 0
    epoch: int = 0
    """Epochs completed (resume starts at this epoch, at ``step_in_epoch``)."""
    step_in_epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    best_metric: float | None = None
    quag_version: str = __version__


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: ExperimentConfig,
    spec: FeatureSpec,
    meta: CheckpointMeta,
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (see module docstring)."""
    from safetensors.torch import save_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_model(model, str(tmp / WEIGHTS))
        atomic_write_text(tmp / "config.yaml", dump_config(config))
        atomic_write_json(tmp / "feature_spec.json", spec.to_dict())
        atomic_write_json(tmp / "meta.json", meta.__dict__)
        if trainer_state is not None:
            atomic_torch_save(tmp / STATE, trainer_state)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_checkpoint_info(path: str | Path) -> tuple[ExperimentConfig, FeatureSpec, CheckpointMeta]:
    """Config, feature spec and metadata of a checkpoint folder (no weights loaded)."""
    import yaml

    path = Path(path)
    if not (path / WEIGHTS).is_file():
        hint = " (it holds no model.safetensors)" if path.is_dir() else ""
        raise FileNotFoundError(f"{path} is not a quag checkpoint folder{hint}; pass e.g. runs/<name>/checkpoints/best")
    cfg = config_from_dict(yaml.safe_load((path / "config.yaml").read_text()))
    spec = FeatureSpec.load(path)
    meta = CheckpointMeta(**json.loads((path / "meta.json").read_text()))
    return cfg, spec, meta


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``model.safetensors`` strictly (missing or unexpected keys raise, listing them)."""
    from safetensors.torch import load_model

    missing, unexpected = load_model(model, str(Path(path) / WEIGHTS), strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"{path}: checkpoint does not match the model built from its config: missing {sorted(missing)[:10]}, "
            f"unexpected {sorted(unexpected)[:10]}"
        )


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[HiRESTModel, ExperimentConfig, FeatureSpec, CheckpointMeta]:
    """Rebuild the model from the checkpoint's own config and load its weights (eval mode)."""
    from quag.models import build_model

    cfg, spec, meta = read_checkpoint_info(path)
    model = build_model(cfg.model)
    load_weights(model, path)
    model.to(device).eval()
    return model, cfg, spec, meta


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    p = Path(path) / STATE
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: this checkpoint holds weights only and cannot resume training")
    return torch.load(p, map_location="cpu", weights_only=False)
