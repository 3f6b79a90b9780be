"""Checkpoints: one folder each, written atomically, self-describing.

::

    <run>/checkpoints/<name>/
        model.safetensors     weights (tied tensors stored once)
        config.yaml           the resolved ExperimentConfig
        feature_spec.json     the encoders the model was trained on (checked against features at inference)
        meta.json             step, epoch, metrics, rows of metrics.jsonl, quag version
        trainer_state.pt      optimizer, scheduler, RNG states of every rank (only needed to resume)

The folder is assembled under a temporary name (``.<name>.<random>``) and swapped into place in one step
(``renameat2(RENAME_EXCHANGE)`` where the system has it, else two renames with the previous folder parked as
``.<name>.old``), so a crash never leaves a half-written checkpoint and the previous one is replaced only after
the new one is complete. :func:`recover_checkpoints` tidies what a killed process leaves behind.

Training writes checkpoints and reads them back to resume; inference, the predictor and the demo read them. This
module sits below all of them (see docs/architecture.md) and holds only reading and writing: what goes into
``trainer_state.pt`` (optimizer, scheduler, RNG states) is assembled by the training recipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
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
from quag.io import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    folder_mode,
    json_error_text,
    linux_libc,
    new_file_mode,
)

if TYPE_CHECKING:
    from quag.models import HiRESTModel

WEIGHTS = "model.safetensors"
STATE = "trainer_state.pt"
OLD_SUFFIX = ".old"
"""A checkpoint being replaced is parked as ``.<name>.old`` while the new one moves in (two-rename fallback)."""


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be read or written; the message names the file and what to do."""


@dataclass
class CheckpointMeta:
    step: int = 0
    epoch: int = 0
    """Epochs completed (resume starts at this epoch, at ``step_in_epoch``)."""
    step_in_epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    best_metric: float | None = None
    log_rows: int | None = None
    """Rows of the run's ``metrics.jsonl`` when this checkpoint was taken (a resume keeps exactly those)."""
    quag_version: str = __version__


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False if unsupported."""
    renameat2 = getattr(linux_libc(), "renameat2", None)  # None off Linux or in a C library without it
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the filesystem or kernel cannot exchange: fall back to two renames
    raise OSError(code, os.strerror(code), str(b))


def _describe_write_error(e: BaseException, path: Path, tmp: Path, writing: str | None) -> Exception:
    """The error to raise when writing checkpoint ``path`` (assembled in ``tmp``) failed with ``e`` while writing
    the file ``writing`` (None: while moving the folder into place): the file is named as it will be in ``path``,
    a full disk as such."""
    target = path / writing if writing else path
    if isinstance(e, OSError):
        if e.errno is None:
            return e
        if e.filename is not None and not str(e.filename).startswith(str(tmp)):
            return e
        return OSError(e.errno, e.strerror, str(target))
    text = str(e)
    if "No space left on device" in text or "StorageFull" in text:  # safetensors' own error type
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
    return CheckpointError(
        f"{path}: the checkpoint could not be written ({type(e).__name__}: {text}); the previous one is kept"
    )


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: ExperimentConfig,
    spec: FeatureSpec,
    meta: CheckpointMeta,
    trainer_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (see module docstring).

    Raises:
        OSError: a write failed (a full disk: ``errno.ENOSPC``), naming the file; the previous checkpoint is kept.
        CheckpointError: anything else that stopped the write.
    """
    from safetensors.torch import save_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    writing: str | None = WEIGHTS
    try:
        os.chmod(tmp, folder_mode())  # mkdtemp makes 0700 folders
        save_model(model, str(tmp / WEIGHTS))
        os.chmod(tmp / WEIGHTS, new_file_mode())  # safetensors creates 0600 files
        writing = "config.yaml"
        atomic_write_text(tmp / writing, dump_config(config))
        writing = "feature_spec.json"
        atomic_write_json(tmp / writing, spec.to_dict())
        writing = "meta.json"
        atomic_write_json(tmp / writing, dataclasses.asdict(meta))
        if trainer_state is not None:
            writing = STATE
            atomic_torch_save(tmp / writing, trainer_state)
        writing = None
        if path.exists() and _exchange(tmp, path):
            shutil.rmtree(tmp)  # now holds the previous checkpoint
            return path
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}{OLD_SUFFIX}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, Exception):
            described = _describe_write_error(e, path, tmp, writing)
            if described is not e:
                raise described from e
        raise
    return path


def recover_checkpoints(folder: str | Path) -> list[str]:
    """Tidy a checkpoints folder after a killed process; returns one line per change (for the log).

    A checkpoint parked as ``.<name>.old`` whose ``<name>`` is missing (the process died between the two renames
    of a save) is moved back; every other ``.<name>.*`` entry is an unfinished temporary folder and is removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") and entry.name.endswith(OLD_SUFFIX) and entry.is_dir():
            target = folder / entry.name[1 : -len(OLD_SUFFIX)]
            if not target.exists():
                os.replace(entry, target)
                done.append(f"restored {target} from {entry.name} (a save was interrupted)")
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            done.append(f"removed {entry} (left by an interrupted save)")
    return done


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{path} not found: the checkpoint folder is incomplete; use another checkpoint"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        reason = json_error_text(e) if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
        raise CheckpointError(
            f"{path}: not valid JSON ({reason}); the file is damaged: use another checkpoint"
        ) from None


def read_checkpoint_info(path: str | Path) -> tuple[ExperimentConfig, FeatureSpec, CheckpointMeta]:
    """Config, feature spec and metadata of a checkpoint folder (no weights loaded).

    Raises:
        FileNotFoundError: ``path`` is no checkpoint folder.
        CheckpointError: one of its files is missing or damaged (the message names it).
    """
    import yaml

    path = Path(path)
    if not (path / WEIGHTS).is_file():
        hint = " (it holds no model.safetensors)" if path.is_dir() else ""
        raise FileNotFoundError(f"{path} is not a quag checkpoint folder{hint}; pass e.g. runs/<name>/checkpoints/best")
    config_file = path / "config.yaml"
    try:
        data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the top level is not a mapping of sections")
        cfg = config_from_dict(data)
    except FileNotFoundError:
        raise CheckpointError(f"{config_file} not found: the checkpoint folder is incomplete") from None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{config_file}: not a valid quag config ({first}); use another checkpoint") from None
    spec = FeatureSpec.load(path)
    raw = _read_json(path / "meta.json")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path / 'meta.json'}: expected a JSON object; use another checkpoint")
    known = {f.name for f in dataclasses.fields(CheckpointMeta)}
    meta = CheckpointMeta(**{k: v for k, v in raw.items() if k in known})  # fields of newer versions are skipped
    return cfg, spec, meta


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load ``model.safetensors`` strictly (missing or unexpected keys raise, listing them).

    Raises:
        CheckpointError: the file is truncated or damaged, or its tensors do not fit the model.
    """
    from safetensors.torch import load_model

    file = Path(path) / WEIGHTS
    try:
        missing, unexpected = load_model(model, str(file), strict=False)
    except Exception as e:  # safetensors raises its own error type for damaged files, torch RuntimeError for shapes
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, RuntimeError) and "size mismatch" in str(e):
            raise CheckpointError(
                f"{file}: its tensors do not fit the model built from {Path(path) / 'config.yaml'} ({text})"
            ) from None
        raise CheckpointError(
            f"{file}: cannot be read as safetensors ({text}); the file is truncated or damaged: copy it again or use "
            "another checkpoint"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
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
    """The optimizer, scheduler and RNG states of a checkpoint (``trainer_state.pt``).

    Raises:
        FileNotFoundError: the checkpoint holds weights only.
        CheckpointError: the file is truncated or damaged.
    """
    p = Path(path) / STATE
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: this checkpoint holds weights only and cannot resume training")
    try:
        state = torch.load(p, map_location="cpu", weights_only=False)
    except Exception:  # torch raises many types for damaged files; its advice does not apply to our own files
        raise CheckpointError(
            f"{p}: cannot be read (truncated or damaged); resume from another checkpoint (e.g. checkpoints/best)"
        ) from None
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "rng"} <= set(state):
        raise CheckpointError(
            f"{p}: not a quag trainer state (needs optimizer, scheduler, rng); use another checkpoint"
        )
    return state
