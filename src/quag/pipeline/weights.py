"""Strict loading of EVA-CLIP checkpoints (``eva_clip_psz14.pt`` or any file with the same keys).

Accepted layouts:

* a bare state dict with ``visual.*`` and ``text.*`` keys (the official file: 678 keys);
* the same keys prefixed ``clip_model.`` (as inside HiREST's ``MomentModel``) or ``module.`` (DDP);
* any of the above wrapped under ``"state_dict"``, ``"model"`` or ``"module"``;
* optionally an ``"eva_clip_config"`` entry (a dict from :meth:`EvaClipConfig.to_dict`) next to the wrapped state
  dict: the configuration the weights belong to. Files without it are the official g/14 configuration.

Loading is strict: every key of the tower must be present with the right shape and no unknown key may exist. The
other tower's keys may be present (the official file holds both). Errors list the offending keys.
The model is built on the meta device and materialised by the load, so no time is spent on random init.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from quag.pipeline.eva_clip import EVA_CLIP_G14, EvaClipConfig, build_text_tower, build_vision_tower

logger = logging.getLogger(__name__)

Tower = Literal["visual", "text"]
TOWERS: tuple[str, ...] = ("visual", "text")
WRAPPER_KEYS = ("state_dict", "model", "module")
KEY_PREFIXES = ("module.", "clip_model.")
CONFIG_KEY = "eva_clip_config"
WEIGHTS_HINT = (
    "EVA-CLIP-g/14 weights are the file eva_clip_psz14.pt of the BAAI/EVA repository on Hugging Face "
    "(download it yourself; quag never downloads weights)"
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model; the message lists the offending keys and the fix."""


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], EvaClipConfig | None]:
    """Read a checkpoint file into a flat ``{name: tensor}`` dict with canonical names, plus its embedded config.

    Args:
        path: ``.pt`` file written by ``torch.save``.

    Returns:
        The state dict (``visual.*`` / ``text.*`` names, prefixes removed) and the embedded
        :class:`EvaClipConfig`, or ``None`` when the file carries none.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EVA-CLIP checkpoint {path} not found. {WEIGHTS_HINT}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        # Files in the legacy (pre-zip) serialisation cannot be memory-mapped.
        obj = _load(path, mmap=False)
    except Exception as e:
        raise CheckpointError(_unreadable(path, e)) from e
    config: EvaClipConfig | None = None
    while isinstance(obj, dict):
        if isinstance(obj.get(CONFIG_KEY), dict):
            try:
                config = EvaClipConfig.from_dict(obj[CONFIG_KEY])
            except ValueError as e:
                raise CheckpointError(f"{path}: invalid embedded {CONFIG_KEY!r}: {e}") from e
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if wrapper is None or any(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor), found {type(obj).__name__}")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        name = str(key)
        for prefix in KEY_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
        state[name] = value
    return state, config


def _load(path: Path, mmap: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        raise CheckpointError(_unreadable(path, e)) from e


def _unreadable(path: Path, e: Exception) -> str:
    return (
        f"{path}: cannot be read as a PyTorch checkpoint of tensors ({type(e).__name__}: {e}). "
        "quag loads with torch.load(weights_only=True); if the file pickles other objects, re-save its state dict "
        "with torch.save(state_dict, path)."
    )


def check_state_dict(
    expected: dict[str, torch.Size | tuple[int, ...]],
    found: dict[str, torch.Size | tuple[int, ...]],
    source: str,
    ignore_prefixes: tuple[str, ...] = (),
) -> None:
    """Raise :class:`CheckpointError` unless ``found`` has exactly the names and shapes of ``expected``.

    Args:
        expected: name -> shape the model needs.
        found: name -> shape the checkpoint holds.
        source: what to call the checkpoint in the message (usually its path).
        ignore_prefixes: names in ``found`` starting with one of these are allowed extras (the other tower).
    """
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected and not k.startswith(ignore_prefixes)]
    mismatched = [
        f"{k}: checkpoint {list(found[k])} vs model {list(expected[k])}"
        for k in expected
        if k in found and tuple(found[k]) != tuple(expected[k])
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if items:
            shown = "\n    ".join(items[:10])
            more = f"\n    ... and {len(items) - 10} more" if len(items) > 10 else ""
            parts.append(f"  {len(items)} {title} key(s):\n    {shown}{more}")
    raise CheckpointError(
        f"{source} does not match the model (strict loading):\n" + "\n".join(parts) + "\n"
        "Is it the EVA-CLIP-g/14 checkpoint (eva_clip_psz14.pt) and the configuration it was trained with? "
        f"{WEIGHTS_HINT}."
    )


def load_tower(
    path: str | Path,
    tower: Tower,
    config: EvaClipConfig | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, EvaClipConfig]:
    """Build one EVA-CLIP tower and load its weights strictly from ``path``.

    Args:
        path: checkpoint file.
        tower: ``visual`` (image tower) or ``text`` (text tower).
        config: architecture; default: the config embedded in the file, else :data:`EVA_CLIP_G14`.
        device: where the weights go.

    Returns:
        The tower in eval mode with ``requires_grad=False`` (fp32), and the configuration used.
    """
    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}")
    state, embedded = read_checkpoint(path)
    if config is None:
        config = embedded or EVA_CLIP_G14
    elif embedded is not None and embedded != config:
        raise CheckpointError(
            f"{path}: the embedded configuration {embedded.name!r} differs from the one requested "
            f"({config.name!r}); pass no configuration to use the embedded one"
        )
    with torch.device("meta"):
        model = build_vision_tower(config) if tower == "visual" else build_text_tower(config)
    prefix = f"{tower}."
    other = tuple(f"{t}." for t in TOWERS if t != tower)
    expected = {prefix + k: v.shape for k, v in model.state_dict().items()}
    check_state_dict(expected, {k: v.shape for k, v in state.items()}, str(path), ignore_prefixes=other)
    model.to_empty(device=device)
    # load_state_dict copies (and casts fp16 checkpoints to the fp32 parameters, as the reference's .float()).
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    model.eval().requires_grad_(False)
    n = sum(p.numel() for p in model.parameters())
    logger.info("loaded EVA-CLIP %s tower %r from %s (%.1fM parameters)", tower, config.name, path, n / 1e6)
    return model, config


def checkpoint_config(path: str | Path) -> EvaClipConfig:
    """The configuration a checkpoint file belongs to (embedded, else g/14), without building a model."""
    _, embedded = read_checkpoint(path)
    return embedded or EVA_CLIP_G14


def save_checkpoint(path: str | Path, visual: nn.Module, text: nn.Module, config: EvaClipConfig) -> Path:
    """Write both towers in the official layout plus the embedded configuration (used for test checkpoints)."""
    from quag.io import atomic_torch_save

    state = {f"visual.{k}": v for k, v in visual.state_dict().items()}
    state.update({f"text.{k}": v for k, v in text.state_dict().items()})
    return atomic_torch_save(path, {CONFIG_KEY: config.to_dict(), "state_dict": state})
