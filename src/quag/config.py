"""Typed configuration: one dataclass per section, defaults = the paper setting.

YAML files only set values: unknown keys raise, values are type-checked, and ``section.field=value``
overrides from the command line are applied after the YAML. The resolved config is written next to every
run (``runs/<name>/config.yaml``) and stored in every checkpoint.

Example::

    cfg = load_config("configs/hirest_quag.yaml", ["train.lr=2e-5", "model.use_qc2=false"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from quag.tasks import TASKS, Task


@dataclass
class ModelConfig:
    """Architecture. Defaults are QUAG at the paper setting (AAAI 2025, Implementation Details)."""

    arch: Literal["quag", "joint"] = "quag"
    """``quag`` (MSP + QC2 + 2 post-LN layers) or ``joint`` (HiREST Joint baseline)."""
    hidden_dim: int = 768
    """H, the width of the temporal encoder and of the heads (768). QUAG also fuses its streams at H; Joint fuses
    at ``joint_fusion_dim`` and projects to H."""
    num_heads: int = 12
    """Attention heads in MSP, QC2 and the encoder."""
    num_encoder_layers: int = 2
    """Post-LN transformer layers after QC2 (QUAG) or CLIP4Caption visual-encoder layers (Joint)."""
    ffn_dim: int = 3072
    """Feed-forward width of the encoder layers."""
    dropout: float = 0.1
    """Dropout used everywhere the reference uses it."""
    attention_dropout: float | None = None
    """Dropout on attention probabilities; None = ``dropout`` (the reference). 0 lets CPU attention use the fused
    kernel (any probability dropout forces PyTorch's unfused path, several times slower on long videos)."""
    visual_dim: int = 1024
    """Input frame-feature width (EVA-CLIP-g: 1024); 0 = a speech-only model with no visual stream. Checked against
    the feature spec."""
    transcript_dim: int = 384
    """Input transcript-feature width (all-MiniLM-L6-v2: 384)."""
    query_dim: int = 1024
    """Input query-embedding width (EVA-CLIP-g text tower: 1024; MiniLM: 384)."""
    use_msp: bool = True
    """Modality-synergistic perception (Eq. 1-4). False: V and A are summed instead (Table 4 ablation)."""
    use_qc2: bool = True
    """Query-centric cognition (Eq. 5-8). False: element-wise query gating as in Joint (Table 4 ablation)."""
    qc2_gates: Literal["both", "temporal", "channel", "none"] = "both"
    """Which QC2 relation matrices are used (Table 7); ``none`` replaces them by mean pooling ("Base")."""
    msp_separate_cross_attention: bool = False
    """Two cross-attention layers (one per direction, as the paper's Eq. 3 draws) instead of one shared."""
    msp_temperature_init: float = 0.07
    """Initial value of the learnable InfoNCE temperature tau."""
    msp_temperature_min: float = 0.001
    """Lower clamp of tau."""
    msp_temperature_max: float = 0.5
    """Upper clamp of tau."""
    padding: Literal["masked", "reference"] = "masked"
    """``masked``: key-padding masks in every attention and masked means; ``reference``: mask nothing, as the
    authors' code (padded frames then change the valid outputs)."""
    vocab_size: int = 30522
    """Caption vocabulary (bert-base-uncased WordPiece)."""
    decoder_layers: int = 2
    """CLIP4Caption-style decoder layers."""
    decoder_max_positions: int = 512
    """BERT absolute positions available to the decoder."""
    decoder_init: Literal["random", "minilm"] = "random"
    """Caption-decoder initialisation before training: ``random`` (BERT's N(0, 0.02)) or ``minilm``: word embeddings
    (and, where shapes allow, layers) from the offline all-MiniLM-L6-v2, same vocabulary (docs/models.md)."""
    joint_max_positions: int = 2048
    """Learned frame positions of the Joint baseline's CLIP4Caption visual encoder."""
    joint_fusion_dim: int = 512
    """E, the width at which the Joint baseline fuses its streams before its H-wide visual encoder."""

    @property
    def mask_padding(self) -> bool:
        """True unless ``padding == "reference"``."""
        return self.padding == "masked"

    def __post_init__(self) -> None:
        check_positive(self, "hidden_dim", "num_heads", "num_encoder_layers", "ffn_dim", "transcript_dim")
        if not isinstance(self.visual_dim, int) or isinstance(self.visual_dim, bool) or self.visual_dim < 0:
            raise ValueError(f"model.visual_dim must be >= 0 (0 = speech-only), got {self.visual_dim!r}")
        check_positive(self, "query_dim", "vocab_size", "decoder_layers")
        check_positive(self, "decoder_max_positions", "joint_max_positions")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"model.hidden_dim ({self.hidden_dim}) must be divisible by model.num_heads")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.attention_dropout is not None and not 0.0 <= self.attention_dropout < 1.0:
            raise ValueError(f"model.attention_dropout must be in [0, 1) or null, got {self.attention_dropout}")
        if not 0 < self.msp_temperature_min <= self.msp_temperature_init <= self.msp_temperature_max:
            raise ValueError("model.msp_temperature_init must lie in [msp_temperature_min, msp_temperature_max] > 0")


@dataclass
class DataConfig:
    """Where the features are and how examples are built (HiREST rules)."""

    root: str = "data/hirest-sim"
    """Dataset root in the official layout (splits/, eva_clip_features/, ASR/, ...)."""
    train_split: str = "train"
    """Split used for training (``splits/all_data_<split>.json``)."""
    val_split: str = "val"
    """Split used for validation and model selection."""
    caption_frames: int = 20
    """Frames per step-captioning window (the reference squeezes every step to 20)."""
    caption_window: Literal["resample", "reference", "full"] = "resample"
    """``resample``: uniform over the whole step (longer) / nearest-neighbour repeat (shorter);
    ``reference``: keep the first 20 frames of long steps (the reference's truncation); ``full``: keep every frame."""
    max_caption_tokens: int = 48
    """Decoder sequence length (CLS + 47 WordPiece tokens, or tokens + SEP)."""
    transcript_alignment: Literal["reference", "overlap"] = "reference"
    """How transcript cues fill the 1-fps rows. ``reference`` (the official features and the authors' code): cue i
    fills seconds floor(start)..floor(end)-1, later cues overwrite; ``overlap``: each second takes the cue that
    overlaps it most (keeps sub-second cues)."""
    length_tolerance: int = 3
    """Allowed |feature rows - round(duration)|; within it rows are cut or the last row repeated (and
    counted), beyond it loading fails."""
    cache_mb: int = 4096
    """Memory for decoded feature tensors (least recently used are dropped)."""
    num_workers: int = 0
    """DataLoader worker processes."""

    def __post_init__(self) -> None:
        check_positive(self, "caption_frames", "max_caption_tokens")
        if self.length_tolerance < 0:
            raise ValueError(f"data.length_tolerance must be >= 0, got {self.length_tolerance}")
        if self.max_caption_tokens < 2:
            raise ValueError("data.max_caption_tokens must be >= 2 (room for [CLS]/[SEP])")


@dataclass
class TrainConfig:
    """Optimisation. Defaults are what the reference actually ran (docs/training.md)."""

    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    """Tasks trained jointly; their single-task batches are interleaved each epoch."""
    epochs: int = 50
    batch_size: int = 5
    lr: float = 1e-5
    weight_decay: float = 0.01
    """AdamW weight decay (the reference's parsed value is never used; torch's default 0.01 is)."""
    warmup_ratio: float = 0.1
    """Linear warm-up over this fraction of all steps, then linear decay to 0."""
    grad_clip: float = 5.0
    """Global L2 gradient-norm clip (0 disables)."""
    msp_loss_weight: float = 0.0003
    """lambda in Eq. 15 (0.0003 on HiREST, 0.3 on TVSum)."""
    caption_loss_padding: Literal["ignore", "reference"] = "ignore"
    """``ignore``: [PAD] targets take no part in the caption loss; ``reference``: they count, as in the authors'
    code (the loss then rewards predicting [PAD] after the caption)."""
    moment_loss: Literal["bce", "ce"] = "bce"
    """Moment-retrieval loss: ``bce`` per frame (the reference code) or ``ce`` softmax over frames (paper Eq. 12)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``bf16`` runs the forward pass under bf16 autocast (weights, gradients and optimizer state stay fp32);
    ``auto`` chooses bf16 where the hardware computes in bf16 natively (CPUs with AMX or AVX512-BF16, CUDA GPUs
    with bf16) and fp32 elsewhere (:func:`quag.inference.device.resolve_precision`; docs/training.md,
    "Precision"). The run log says which was chosen and why."""
    bucketing: Literal["length", "reference"] = "length"
    """``length``: each task's shuffled examples are cut into mega-batches of ``bucket_size`` batches, sorted by
    length and cut into batches, so that a batch pads little (docs/training.md, "Length-bucketed batches");
    ``reference``: consecutive examples of the shuffled order, as the authors' loader."""
    bucket_size: int = 50
    """Batches per mega-batch under ``bucketing: length``."""
    release_memory: bool = True
    """On CPU (glibc), return the heap's free pages to the system before every backward pass
    (:func:`quag.heap.trim_heap`), so the gradients do not pile up beside the forward pass's freed
    temporaries: a lower peak resident memory (0.07-0.09 GiB at the paper setting) for the page faults of reusing
    those pages, up to about a tenth of a step there (docs/benchmarks.md, ``benchmarks/bench_quag.py``). A no-op
    elsewhere."""
    seed: int = 2222
    log_every: int = 10
    """Steps between progress-bar / metrics.jsonl updates."""
    save_every: int = 0
    """Also checkpoint every N steps (0: only at epoch ends)."""
    max_steps: int = 0
    """Stop after this many optimiser steps (0: run all epochs)."""
    eval_every_epochs: int = 1
    """Validate every N epochs (and after the last)."""
    selection_metric: str = "mean_score"
    """Validation metric for the best checkpoint (docs/training.md, "Model selection")."""

    @property
    def caption_loss_ignore_pad(self) -> bool:
        """True unless ``caption_loss_padding == "reference"``."""
        return self.caption_loss_padding == "ignore"

    def __post_init__(self) -> None:
        for t in self.tasks:
            if t not in TASKS:
                raise ValueError(f"train.tasks: unknown task {t!r}; expected some of {', '.join(TASKS)}")
        if not self.tasks:
            raise ValueError("train.tasks must name at least one task")
        check_positive(self, "epochs", "batch_size", "bucket_size")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class EvalConfig:
    """Decoding. Defaults are the reference's scripts, with the fixes of this project switched on."""

    batch_size: int = 5
    moment_decoding: Literal["span", "reference"] = "span"
    """``span``: the best pair with start <= end; ``reference``: two independent argmaxes, as the authors' code
    (the end can then precede the start)."""
    max_moment_frames: int = 0
    """Longest moment allowed by ``span`` decoding (0: no limit)."""
    moment_score: Literal["sigmoid", "softmax"] = "sigmoid"
    """Frame scores of ``span`` decoding: log-sigmoid (matches ``train.moment_loss=bce``) or log-softmax (``ce``)."""
    segmentation_decoding: Literal["sequential", "reference"] = "sequential"
    """``sequential``: one next boundary at a time with the training inputs (suffix region, previous boundaries),
    each video stopping when it predicts the moment end; ``reference``: the authors' island algorithm (peaks
    expanded into masked islands, ``segmentation_rounds`` rounds). docs/inference.md compares them."""
    segmentation_rounds: int = 20
    """Rounds of the island algorithm (the reference always runs 20)."""
    segmentation_threshold: float = 0.5
    """Island algorithm only: region expansion while p / p_max exceeds this."""
    segmentation_min_gap: int = 5
    """Minimum frames between boundaries (both algorithms; the moment end may come sooner)."""
    segmentation_last: Literal["emit", "reference"] = "emit"
    """Island algorithm only (``segmentation_decoding: reference``). ``emit``: the last segment runs up to the
    moment end, so the segments tile the moment; ``reference``: it is dropped, as in the authors' code (their
    evaluation restores it from the ground truth)."""
    segmentation_length: Literal["own", "reference"] = "own"
    """Island algorithm only. Where the island walk stops on the right: ``own``: each video's own last frame;
    ``reference``: the padded length of the batch, as in the authors' code (results then depend on which videos
    share a batch: a shorter video whose moment ends on its last frame walks one frame into the padding, which
    under ``segmentation_last: reference`` keeps its moment end where ``own`` loses it)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast dtype of decoding (validation, ``quag infer``, ``quag predict``, the server): as ``train.precision``
    (``auto``: bf16 where the hardware computes in bf16 natively)."""
    num_beams: int = 3
    max_caption_tokens: int = 48
    length_penalty: float = 0.0
    """Beam score = log p / length**alpha (0: no normalisation, as the reference)."""
    caption_text: Literal["clean", "reference"] = "clean"
    """Caption ids -> text. ``clean``: drop [CLS] and every ``##`` marker; ``reference``: as the authors print it
    (a [CLS] inside the caption is printed, ``##`` is merged only after a space, and ``#`` is stripped from both
    ends)."""
    val_caption_metrics: list[str] = field(default_factory=lambda: ["Bleu_4", "ROUGE_L", "CIDEr"])
    """Caption metrics computed at each validation during training (METEOR adds a ~15 s Java start-up per
    validation; ``quag infer --evaluate`` always computes the full set)."""

    @property
    def segmentation_emit_last(self) -> bool:
        """True unless ``segmentation_last == "reference"``."""
        return self.segmentation_last == "emit"

    def __post_init__(self) -> None:
        check_positive(self, "batch_size", "segmentation_rounds", "num_beams", "max_caption_tokens")
        if not 0.0 < self.segmentation_threshold < 1.0:
            raise ValueError("eval.segmentation_threshold must be in (0, 1)")


@dataclass
class ExperimentConfig:
    """A whole run: ``runs/<name>/`` holds its config, logs, checkpoints and predictions."""

    name: str = "quag"
    output_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    @property
    def tasks(self) -> list[Task]:
        return list(self.train.tasks)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# loading, overrides, dumping


def check_positive(obj: Any, *names: str, section: str | None = None) -> None:
    """Raise naming ``section.field`` unless each named field of a config section is a positive number
    (``section`` defaults to the class name without "Config", lowercased: ``TrainConfig`` -> ``train``)."""
    section = section or type(obj).__name__.replace("Config", "").lower()
    for n in names:
        v = getattr(obj, n)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{section}.{n} must be a positive number, got {v!r}")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (int -> float allowed); raise naming ``where``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{where}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise ValueError(f"{where}: {value!r} matches none of {args}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        out = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return out if origin is list else tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping for section {where!r}, got {value!r}")
        return _build(typing.cast(type, tp), value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported config type {tp!r}")


class ConfigDeprecationWarning(FutureWarning):
    """A config key or value that still works but has a new name (shown by default, unlike DeprecationWarning)."""


def _renamed_keys() -> dict[type, dict[str, tuple[str, dict[Any, Any] | None]]]:
    """Old key -> (new key, old value -> new value or None to keep the value), per section class."""
    return {
        ModelConfig: {
            "mask_padding": ("padding", {True: "masked", False: "reference"}),
            "asr_dim": ("transcript_dim", None),
        },
        DataConfig: {
            "asr_alignment": (
                "transcript_alignment",
                {"official": "reference", "reference": "reference", "overlap": "overlap"},
            )
        },
        TrainConfig: {"caption_loss_ignore_pad": ("caption_loss_padding", {True: "ignore", False: "reference"})},
        EvalConfig: {"segmentation_emit_last": ("segmentation_last", {True: "emit", False: "reference"})},
    }


def _renamed_values() -> dict[type, dict[str, dict[Any, Any]]]:
    """Old value -> new value of a key that kept its name, per section class."""
    return {
        EvalConfig: {
            "moment_decoding": {"independent": "reference"},
            "segmentation_decoding": {"islands": "reference"},
        },
    }


def _upgrade_deprecated(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """Rewrite old keys and values to their new spelling, with one :class:`ConfigDeprecationWarning` each.

    Old spellings keep working for one release (they go in quag 0.3); giving the old and the new key together is
    an error.
    """
    prefix = f"{where}." if where else ""
    out = dict(data)
    for old, (new, values) in _renamed_keys().get(cls, {}).items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{prefix}{old} and {prefix}{new} are both set; keep only {prefix}{new}")
        value = out.pop(old)
        if values is not None:
            if value not in values:
                raise ValueError(f"{prefix}{old} (renamed {prefix}{new}): {value!r} is not one of {list(values)}")
            value = values[value]
        warnings.warn(
            f"config key {prefix}{old} is deprecated; use {prefix}{new}: {value} (the old key goes in quag 0.3)",
            ConfigDeprecationWarning,
            stacklevel=2,
        )
        out[new] = value
    for key, values in _renamed_values().get(cls, {}).items():
        if key in out and isinstance(out[key], str) and out[key] in values:
            new_value = values[out[key]]
            warnings.warn(
                f"{prefix}{key}: {out[key]} is deprecated; write {prefix}{key}: {new_value} (goes in quag 0.3)",
                ConfigDeprecationWarning,
                stacklevel=2,
            )
            out[key] = new_value
    return out


def _build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    data = _upgrade_deprecated(cls, data, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        keys = ", ".join(prefix + k for k in unknown)
        raise ValueError(f"Unknown config key(s) {keys}; valid keys here: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any] | None) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from a nested mapping, rejecting unknown keys."""
    return _build(ExperimentConfig, dict(data or {}))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-4"`` -> (["train", "lr"], 0.0001); the value is parsed as YAML."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value (e.g. train.lr=2e-5)")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ValueError(f"override {text!r} has an empty key")
    value = yaml.safe_load(raw) if raw.strip() else ""
    # YAML 1.1 reads "1e-4" as a string: accept plain floats written that way.
    if isinstance(value, str) and any(c in value for c in ".eE") and not value.isalpha():
        with contextlib.suppress(ValueError):
            value = float(value)
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a nested mapping (validated later by :func:`config_from_dict`)."""
    out = _deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {text!r}: {p!r} is not a section")
        node[path[-1]] = value
    return out


def _deepcopy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy(v) if isinstance(v, dict) else v for k, v in d.items()}


def read_yaml_sections(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The mapping of a YAML config file (empty without one) with ``section.key=value`` overrides applied.

    Shared by every config tree (the HiREST experiment here, TVSum in :mod:`quag.tvsum.config`).

    Raises:
        FileNotFoundError: the YAML file does not exist.
        ValueError: not valid YAML, or its top level is not a mapping.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} not found (see configs/ for the shipped ones)")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{p}: not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{p}: the top level must be a mapping of sections, got {type(loaded).__name__}")
        data = loaded or {}
    return apply_overrides(data, overrides or [])


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML file (or start from the defaults), apply overrides, validate everything.

    Raises:
        FileNotFoundError: the YAML file does not exist.
        ValueError: unknown key, wrong type or out-of-range value (the message names the key).
    """
    data = read_yaml_sections(path, overrides)
    try:
        return config_from_dict(data)
    except ValueError as e:
        where = f"{path}: " if path else ""
        raise ValueError(f"{where}{e}") from None


def dump_config(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    """Write the resolved config atomically."""
    from quag.io import atomic_write_text

    return atomic_write_text(path, dump_config(cfg))


def dataclass_from_dict(cls: type, data: dict[str, Any] | None, where: str = "") -> Any:
    """Build any config dataclass (e.g. a task's own section tree) with the same strict checks as above.

    Unknown keys raise, values are type-checked and coerced like :func:`config_from_dict` does.
    """
    return _build(cls, dict(data or {}), where)
