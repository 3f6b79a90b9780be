"""Load reference checkpoints (HiREST Joint ``BEST.pth``, QUAG) and initialise from CLIP4Caption.

The reference key names and shapes are those of the manifests ``joint_state_dict.txt`` and
``quag_state_dict.txt`` (HiREST ``modeling.py`` / QUAG ``modeling_quag.py`` ``MomentModel`` minus the frozen
``clip_model.*``) and ``clip4caption_init_keys.txt`` (CLIP4Caption's ``CaptionGenerator``).

:func:`reference_key_map` is the explicit map, reference key -> our key. A tuple value means the reference
tensor is our tensors concatenated on dim 0 (``nn.MultiheadAttention.in_proj_*`` packs q, k, v; our attention
keeps three projections). Loading is strict: every reference key must be mapped, tied or skipped, every
mapped key must be present with the right shape, and every parameter of our model must be filled. All errors
are collected and raised together before anything is copied.

Tied alias: ``clip4cap_model.decoder.classifier.cls.predictions.decoder.weight`` is the word-embedding matrix
(``...decoder.embeddings.word_embeddings.weight``); we keep one tensor, and the loader checks both are equal.

Skipped keys, modules the reference builds (and saves) but never uses, so we do not build them:

- ``moment_conv.*`` (both): two Conv1d(E, E, 3) declared in ``MomentModel.__init__`` and never called
  (Joint 1,573,888 parameters, QUAG 3,540,480).
- ``clip4cap_model.visual.pooler.*`` (Joint): the BERT pooler of the visual encoder, never called
  (590,592).
- ``clip4cap_model.visual.*`` (QUAG): the whole CLIP4Caption visual encoder, pooler included, which QUAG
  replaces by its own two transformer layers but still builds and loads (16,734,720).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from quag.config import ModelConfig

logger = logging.getLogger(__name__)

KeyMap = dict[str, str | tuple[str, ...]]

TIED_ALIASES: dict[str, str] = {
    "clip4cap_model.decoder.classifier.cls.predictions.decoder.weight": (
        "clip4cap_model.decoder.embeddings.word_embeddings.weight"
    ),
}
"""Reference key -> the reference key it is tied to (same tensor)."""

SKIPPED_PREFIXES: dict[str, tuple[str, ...]] = {
    "joint": ("moment_conv.", "clip4cap_model.visual.pooler."),
    "quag": ("moment_conv.", "clip4cap_model.visual."),
}
"""Reference keys of modules built but never used (see the module docstring); skipped by name."""

REFERENCE_TRAINABLE: dict[str, int] = {"joint": 63_187_005, "quag": 88_549_440}
"""Unique trainable parameters of the reference models (manifests; EVA-CLIP excluded, unused modules included)."""

REFERENCE_UNBUILT: dict[str, dict[str, int]] = {
    "joint": {"moment_conv": 1_573_888, "clip4cap_model.visual.pooler": 590_592},
    "quag": {"moment_conv": 3_540_480, "clip4cap_model.visual": 16_734_720},
}
"""Parameters of the skipped modules at the paper setting (checked against the manifests by the tests)."""

_C4C = "clip4cap_model."


def _affine(m: KeyMap, ref: str, ours: str) -> None:
    """A Linear or LayerNorm: ``weight`` and ``bias``."""
    m[f"{ref}.weight"] = f"{ours}.weight"
    m[f"{ref}.bias"] = f"{ours}.bias"


def _packed_attention(m: KeyMap, ref: str, ours: str, bias: bool = True) -> None:
    """``nn.MultiheadAttention`` (packed ``in_proj``) -> our q/k/v/out projections."""
    m[f"{ref}.in_proj_weight"] = tuple(f"{ours}.{p}_proj.weight" for p in "qkv")
    m[f"{ref}.out_proj.weight"] = f"{ours}.out_proj.weight"
    if bias:
        m[f"{ref}.in_proj_bias"] = tuple(f"{ours}.{p}_proj.bias" for p in "qkv")
        m[f"{ref}.out_proj.bias"] = f"{ours}.out_proj.bias"


def _bert_attention(m: KeyMap, ref_qkv: str, ref_out: str, ours: str, ours_norm: str) -> None:
    """BERT-style attention: ``<ref_qkv>.{query,key,value}``, ``<ref_out>.dense`` and ``<ref_out>.LayerNorm``."""
    for name, proj in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        _affine(m, f"{ref_qkv}.{name}", f"{ours}.{proj}")
    _affine(m, f"{ref_out}.dense", f"{ours}.out_proj")
    _affine(m, f"{ref_out}.LayerNorm", ours_norm)


def _decoder_map(m: KeyMap, num_layers: int) -> None:
    ref, ours = f"{_C4C}decoder.", "heads.step_captioning."
    m[f"{ref}embeddings.word_embeddings.weight"] = f"{ours}word_embeddings.weight"
    m[f"{ref}embeddings.position_embeddings.weight"] = f"{ours}position_embeddings.weight"
    _affine(m, f"{ref}embeddings.LayerNorm", f"{ours}embed_norm")
    for i in range(num_layers):
        r, o = f"{ref}decoder.layer.{i}.", f"{ours}layers.{i}."
        _bert_attention(m, f"{r}slf_attn.att", f"{r}slf_attn.output", f"{o}self_attn", f"{o}self_norm")
        _bert_attention(m, f"{r}enc_attn.att", f"{r}enc_attn.output", f"{o}cross_attn", f"{o}cross_norm")
        _affine(m, f"{r}intermediate.dense", f"{o}ffn_in")
        _affine(m, f"{r}output.dense", f"{o}ffn_out")
        _affine(m, f"{r}output.LayerNorm", f"{o}ffn_norm")
    m[f"{ref}classifier.cls.predictions.bias"] = f"{ours}output_bias"
    _affine(m, f"{ref}classifier.cls.predictions.transform.dense", f"{ours}transform")
    _affine(m, f"{ref}classifier.cls.predictions.transform.LayerNorm", f"{ours}transform_norm")


def _shared_map(m: KeyMap) -> None:
    """Input projections, context embeddings and heads: same names in Joint and QUAG."""
    _affine(m, "clip_g_map", "embed.video_proj")
    _affine(m, f"{_C4C}normalize_video.visual_norm2d", "embed.video_norm")
    _affine(m, "clip_g_map_text", "embed.query_proj")
    _affine(m, "asr_enc_layer.0", "embed.asr_norm")
    _affine(m, "asr_enc_layer.1", "embed.asr_proj")
    _affine(m, "temporal_embed.0", "context.time_mlp.0")
    _affine(m, "temporal_embed.2", "context.time_mlp.2")
    m["mask_embed.weight"] = "context.mask_embed.weight"
    m["boundary_embed.weight"] = "context.boundary_embed.weight"
    _affine(m, "start_predictor.0", "heads.moment_retrieval.start")
    _affine(m, "end_predictor.0", "heads.moment_retrieval.end")
    _affine(m, "segment_predictor.0", "heads.moment_segmentation.proj")


def reference_key_map(arch: str, num_encoder_layers: int = 2, decoder_layers: int = 2) -> KeyMap:
    """The explicit reference -> ours key map of ``arch`` (``quag`` or ``joint``) at the given depths."""
    m: KeyMap = {}
    _shared_map(m)
    if arch == "quag":
        m["temp"] = "msp.temperature"
        _packed_attention(m, "align.0.attention", "msp.cross_attn.attn")
        _affine(m, "align.0.norm1", "msp.cross_attn.norm")
        _affine(m, "fc.0", "msp.fuse")
        _affine(m, "val.fc1", "qc2.query_fuse")
        _affine(m, "val.att_ch_fc", "qc2.channel_gate")
        _affine(m, "val.att_tp_fc", "qc2.temporal_gate")
        _packed_attention(m, "val.mh_att", "qc2.self_attn", bias=False)
        _affine(m, "val.norm", "qc2.norm")
        _affine(m, "val.fc2", "qc2.out_proj")
        for i in range(num_encoder_layers):
            r, o = f"transformer.{i}.", f"encoder.{i}."
            _packed_attention(m, f"{r}attention", f"{o}self_attn")
            _affine(m, f"{r}norm1", f"{o}attn_norm")
            _affine(m, f"{r}linear1", f"{o}ffn_in")
            _affine(m, f"{r}linear2", f"{o}ffn_out")
            _affine(m, f"{r}norm2", f"{o}ffn_norm")
    elif arch == "joint":
        ref, ours = f"{_C4C}visual.", "visual_encoder."
        _affine(m, f"{ref}embeddings.word_embeddings", f"{ours}input_proj")
        m[f"{ref}embeddings.position_embeddings.weight"] = f"{ours}position_embeddings.weight"
        _affine(m, f"{ref}embeddings.LayerNorm", f"{ours}embed_norm")
        for i in range(num_encoder_layers):
            r, o = f"{ref}encoder.layer.{i}.", f"{ours}layers.{i}."
            _bert_attention(m, f"{r}attention.self", f"{r}attention.output", f"{o}self_attn", f"{o}attn_norm")
            _affine(m, f"{r}intermediate.dense", f"{o}ffn_in")
            _affine(m, f"{r}output.dense", f"{o}ffn_out")
            _affine(m, f"{r}output.LayerNorm", f"{o}ffn_norm")
    else:
        raise ValueError(f"arch must be 'quag' or 'joint', got {arch!r}")
    _decoder_map(m, decoder_layers)
    return m


def _model_key_map(model: nn.Module, arch: str) -> KeyMap:
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"expected a QuagModel or JointModel (with a ModelConfig), got {type(model).__name__}")
    if config.arch != arch:
        raise ValueError(f"a reference {arch!r} state dict cannot load into a model built with arch={config.arch!r}")
    return reference_key_map(arch, config.num_encoder_layers, config.decoder_layers)


def _is_skipped(key: str, arch: str) -> bool:
    return key.startswith(SKIPPED_PREFIXES[arch])


def _expected_shape(target: str | tuple[str, ...], ours: dict[str, torch.Tensor]) -> torch.Size:
    if isinstance(target, str):
        return ours[target].shape
    parts = [ours[t].shape for t in target]
    return torch.Size([sum(s[0] for s in parts), *parts[0][1:]])


def _summarise(title: str, items: list[str], limit: int = 20) -> str:
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {k}" for k in items[:limit]) + more


def load_reference_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], arch: str) -> list[str]:
    """Strictly load a reference-format state dict (Joint ``BEST.pth`` or QUAG) into ``model``.

    Args:
        model: A :class:`~quag.models.quag.QuagModel` (``arch="quag"``) or
            :class:`~quag.models.joint.JointModel` (``arch="joint"``) with the reference's depths.
        state_dict: Reference keys -> tensors (e.g. ``torch.load("BEST.pth")``).
        arch: ``quag`` or ``joint``.

    Returns:
        The reference keys that were skipped by name (unused modules).

    Raises:
        ValueError: listing every missing, unexpected, mis-shaped or unfilled key (nothing is copied then).
    """
    key_map = _model_key_map(model, arch)
    ours = model.state_dict()
    missing = [k for k in [*key_map, *TIED_ALIASES] if k not in state_dict]
    skipped = [k for k in state_dict if _is_skipped(k, arch)]
    unexpected = [k for k in state_dict if k not in key_map and k not in TIED_ALIASES and not _is_skipped(k, arch)]
    targets = [t for v in key_map.values() for t in ((v,) if isinstance(v, str) else v)]
    not_built = [t for t in targets if t not in ours]
    unfilled = sorted(set(ours) - set(targets))
    mis_shaped = []
    if not not_built:
        for ref_key, target in key_map.items():
            if ref_key in state_dict and tuple(state_dict[ref_key].shape) != tuple(_expected_shape(target, ours)):
                want = tuple(_expected_shape(target, ours))
                mis_shaped.append(f"{ref_key}: checkpoint {tuple(state_dict[ref_key].shape)}, model {want}")
    untied = [
        f"{alias} differs from {source}"
        for alias, source in TIED_ALIASES.items()
        if alias in state_dict and source in state_dict and not torch.equal(state_dict[alias], state_dict[source])
    ]
    problems = [
        (f"missing from the checkpoint (arch={arch})", missing),
        ("unexpected in the checkpoint", unexpected),
        ("mis-shaped", mis_shaped),
        ("mapped to parameters this model does not build (check the ablation switches)", not_built),
        ("model parameters no reference key fills", unfilled),
        ("tied weights that differ", untied),
    ]
    if any(items for _, items in problems):
        details = "\n".join(_summarise(t, items) for t, items in problems if items)
        raise ValueError(f"cannot load the reference {arch} state dict strictly:\n{details}")

    converted: dict[str, torch.Tensor] = {}
    for ref_key, target in key_map.items():
        tensor = state_dict[ref_key]
        if isinstance(target, str):
            converted[target] = tensor
        else:
            sizes = [ours[t].shape[0] for t in target]
            converted.update(zip(target, torch.split(tensor, sizes, dim=0), strict=True))
    model.load_state_dict(converted, strict=True)
    logger.info(
        "loaded %d reference tensors (%s); skipped %d keys of unused modules (%s)",
        len(key_map),
        arch,
        len(skipped),
        ", ".join(f"{p}*" for p in SKIPPED_PREFIXES[arch]),
    )
    return skipped


@dataclass
class Clip4CaptionInit:
    """What :func:`init_from_clip4caption` did, key by key (CLIP4Caption names, without a prefix)."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mis_shaped: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _modern_name(key: str) -> str:
    """Strip a ``clip4cap_model.`` prefix and rename legacy TF LayerNorm ``gamma``/``beta``."""
    key = key.removeprefix(_C4C)
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


def init_from_clip4caption(
    model: nn.Module, state_dict: dict[str, torch.Tensor], strict: bool = False
) -> Clip4CaptionInit:
    """Copy a CLIP4Caption checkpoint into the decoder (and Joint's visual encoder and ``normalize_video``).

    Keys are CLIP4Caption's ``CaptionGenerator`` names (``clip4caption_init_keys.txt``); a ``clip4cap_model.``
    prefix and legacy ``gamma``/``beta`` names are accepted. As in the reference, the default is lenient:
    keys that are missing, unexpected or of the wrong shape (e.g. a 512-row visual position table against
    Joint's 2048 rows, or QUAG's 768-d ``normalize_video`` against a 512-d one) are reported and logged, and
    the rest is copied. ``strict=True`` raises instead if anything but the skipped keys fails to match.

    Args:
        model: A QuagModel or JointModel.
        state_dict: The CLIP4Caption checkpoint.
        strict: Raise ``ValueError`` on any missing, unexpected or mis-shaped key.

    Returns:
        A :class:`Clip4CaptionInit` report.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"expected a QuagModel or JointModel, got {type(model).__name__}")
    arch = config.arch
    key_map = {
        k.removeprefix(_C4C): v
        for k, v in reference_key_map(arch, config.num_encoder_layers, config.decoder_layers).items()
        if k.startswith(_C4C)
    }
    aliases = {k.removeprefix(_C4C) for k in TIED_ALIASES}
    skipped_prefixes = tuple(p.removeprefix(_C4C) for p in SKIPPED_PREFIXES[arch] if p.startswith(_C4C))
    ours = model.state_dict()
    checkpoint = {_modern_name(k): v for k, v in state_dict.items()}
    report = Clip4CaptionInit()
    report.missing = [k for k in key_map if k not in checkpoint]
    report.skipped = [k for k in checkpoint if k.startswith(skipped_prefixes) or k in aliases]
    report.unexpected = [k for k in checkpoint if k not in key_map and k not in report.skipped]
    to_copy: list[tuple[str | tuple[str, ...], torch.Tensor]] = []
    for key, target in key_map.items():
        if key not in checkpoint or any(t not in ours for t in ((target,) if isinstance(target, str) else target)):
            continue
        tensor, want = checkpoint[key], _expected_shape(target, ours)
        if tuple(tensor.shape) != tuple(want):
            report.mis_shaped.append(f"{key}: checkpoint {tuple(tensor.shape)}, model {tuple(want)}")
            continue
        to_copy.append((target, tensor))
        report.loaded.append(key)
    if strict and (report.missing or report.mis_shaped or report.unexpected):
        problems = [("missing", report.missing), ("mis-shaped", report.mis_shaped), ("unexpected", report.unexpected)]
        details = "\n".join(_summarise(t, items) for t, items in problems if items)
        raise ValueError(f"CLIP4Caption checkpoint does not match the {arch} model:\n{details}")
    with torch.no_grad():
        for target, tensor in to_copy:
            if isinstance(target, str):
                ours[target].copy_(tensor)
            else:
                sizes = [ours[t].shape[0] for t in target]
                for t, part in zip(target, torch.split(tensor, sizes, dim=0), strict=True):
                    ours[t].copy_(part)
    for title, items in (
        ("missing", report.missing),
        ("mis-shaped", report.mis_shaped),
        ("unexpected", report.unexpected),
    ):
        if items:
            logger.warning("CLIP4Caption init: %d %s keys left as initialised: %s", len(items), title, items[:10])
    logger.info("CLIP4Caption init: loaded %d tensors into the %s model", len(report.loaded), arch)
    return report


REFERENCE_FORMATS = (
    "a HiREST Joint or QUAG state dict with the authors' key names (HiREST_BEST.pth / BEST.pth, as "
    "trainer_base.save() writes it; torch.save or safetensors, optionally under a 'model' or 'state_dict' key, "
    "'module.' prefixes allowed)"
)
"""The checkpoint files :func:`read_reference_state_dict` accepts, in words (for error messages)."""

ARCH_MARKERS: dict[str, str] = {
    "quag": "align.0.attention.in_proj_weight",
    "joint": "clip4cap_model.visual.encoder.layer.0.attention.self.query.weight",
}
"""A key only that architecture's reference checkpoint holds (QUAG has MSP's ``align``; Joint uses the visual
encoder of CLIP4Caption, which QUAG builds but skips)."""

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module")


class ReferenceFormatError(ValueError):
    """A file that is not a reference checkpoint; the message names it and the accepted formats."""


def _is_tensor_mapping(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_reference_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Read an authors' checkpoint file into a flat state dict with the reference key names.

    Unwraps ``{"model": ...}``-style containers, strips a ``module.`` prefix (DistributedDataParallel) and drops the
    frozen EVA-CLIP keys (``clip_model.*``) if the file has them (the query encoder is not part of a quag model).

    Args:
        path: the checkpoint file (``torch.save`` pickle, read with ``weights_only=True``, or safetensors).

    Returns:
        ``(state dict, dropped clip_model.* keys)``.

    Raises:
        FileNotFoundError: no such file.
        ReferenceFormatError: the file is not a reference checkpoint (one line naming it and the formats accepted).
    """
    path = Path(path)
    if not path.is_file():
        hint = " (a folder: pass the checkpoint file inside it)" if path.is_dir() else ""
        raise FileNotFoundError(f"{path} not found{hint}; expected {REFERENCE_FORMATS}")
    obj: object
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and safetensors errors have many types; the message says what to pass
        raise ReferenceFormatError(
            f"{path}: not a PyTorch (torch.save) or safetensors file ({type(e).__name__}); expected {REFERENCE_FORMATS}"
        ) from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and not _is_tensor_mapping(obj) and _is_tensor_mapping(obj.get(key)):
            obj = obj[key]
    if not _is_tensor_mapping(obj):
        raise ReferenceFormatError(
            f"{path}: holds {type(obj).__name__}, not a mapping of key names to tensors; expected {REFERENCE_FORMATS}"
        )
    state: dict[str, torch.Tensor] = dict(obj)  # type: ignore[call-overload]
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    dropped = [k for k in state if k.startswith("clip_model.")]
    state = {k: v for k, v in state.items() if not k.startswith("clip_model.")}
    if "clip4cap_model.decoder.embeddings.word_embeddings.weight" not in state:
        quag_folder = "heads.step_captioning.word_embeddings.weight" in state
        what = "a quag state dict (use its checkpoint folder directly)" if quag_folder else "no HiREST/QUAG keys"
        raise ReferenceFormatError(
            f"{path}: {what}, e.g. no 'clip4cap_model.decoder.embeddings.word_embeddings.weight'; "
            f"expected {REFERENCE_FORMATS}"
        )
    return state, dropped


def detect_reference_arch(state_dict: dict[str, torch.Tensor]) -> str | None:
    """``quag`` or ``joint`` from the keys of a reference state dict (:data:`ARCH_MARKERS`); None if unclear."""
    found = [arch for arch, key in ARCH_MARKERS.items() if key in state_dict]
    if "quag" in found:
        return "quag"  # QUAG also saves the CLIP4Caption visual encoder it never uses
    return found[0] if found else None


def read_manifest(path: str | Path) -> list[tuple[str, tuple[int, ...], str]]:
    """Parse a state-dict manifest: one ``name<TAB>[d0, d1, ...]<TAB>dtype`` line per key."""
    entries = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            name, shape, dtype = line.split("\t")
            dims = tuple(int(d) for d in shape.strip("[]").split(",") if d.strip())
        except ValueError as e:
            raise ValueError(f"{path}:{n}: expected 'name<TAB>[dims]<TAB>dtype', got {line!r}") from e
        entries.append((name, dims, dtype))
    return entries


def random_reference_state_dict(path: str | Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with exactly the keys, shapes and dtypes of a manifest (for tests).

    Values are N(0, 0.02) (scalars: 0.07); tied aliases share their source tensor, as in a real checkpoint.
    """
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, dims, dtype in read_manifest(path):
        dt = getattr(torch, dtype)
        out[name] = torch.full((), 0.07, dtype=dt) if not dims else torch.randn(dims, generator=gen).mul_(0.02).to(dt)
    for alias, source in TIED_ALIASES.items():
        if alias in out and source in out:
            out[alias] = out[source]
    return out
