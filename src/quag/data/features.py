"""Feature files in the official HiREST release layout, read unchanged.

::

    <root>/eva_clip_features/<id>.mp4.pt           (rows, 1024) float, 1 fps, rows L2-normalised
    <root>/ASR/<id>.srt                            Whisper transcript
    <root>/ASR_feats_all-MiniLM-L6-v2/<id>.pt      (n_cues, 384): row i embeds SRT cue i
    <root>/query_feats_<encoder>.pt                {"queries": [str], "embeddings": (Q, Dq), "encoder": str}
    <root>/feature_spec.json                       which encoders made the files (optional: official if absent)

A speech-only root (``visual_encoder "none"``, ``visual_dim 0``, made by ``quag extract`` without EVA-CLIP weights)
has no frame files: :meth:`FeatureStore.visual` returns (T, 0) arrays, which a model with ``model.visual_dim: 0``
reads as "no visual stream". Any root can be read that way (:meth:`FeatureStore.drop_visual`): a speech-only model
trained on a root with frame files never opens them.

Three streams feed a model, each made by its own encoder: ``visual`` (frames), ``transcript`` (speech cues) and
``query``. :meth:`FeatureSpec.check_compatible` compares them stream by stream, only those the model uses, and
``FeatureSpec.simulated`` names the streams that were simulated rather than computed from videos (HiREST-sim:
``("visual",)``).

The query-embedding file is ours: the reference re-encodes every query with the frozen EVA-CLIP text tower at
every step; we encode the 1,384 queries once (``quag encode-queries``).

Length policy (reference weak point 12): a video has ``T = round(v_duration)`` frames, the count every target
frame index is computed from. A visual file with ``rows != T`` is fixed if ``|rows - T| <= length_tolerance``
(extra rows dropped, a missing tail filled by repeating the last row) and every fix is counted in
:attr:`FeatureStore.report`; a larger mismatch raises :class:`FeatureError`.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from quag.data.srt import read_srt, spread_cues
from quag.io import json_error_text

OBTAIN_HINT = (
    "download the official HiREST features (Hugging Face: j-min/HiREST-baseline) into the dataset root, "
    "run `quag extract` on your videos, or use `quag make-sim` for the simulated default"
)


class FeatureError(ValueError):
    """A missing or malformed feature file; the message names the file, the problem and the fix."""


LEGACY_SPEC_FIELDS = {
    "asr_model": "transcript_model",
    "asr_dir": "transcript_dir",
    "asr_encoder": "transcript_encoder",
    "asr_dim": "transcript_dim",
    "asr_feat_dir": "transcript_feat_dir",
}
"""Field names of ``feature_spec.json`` files written by quag 0.1 -> today's names."""

STREAMS: tuple[str, ...] = ("visual", "transcript", "query")
"""The feature streams of a model's input, in the order they are checked."""

STREAM_FIELDS: dict[str, tuple[str, ...]] = {
    "visual": ("visual_encoder", "visual_dim", "fps"),
    "transcript": ("transcript_encoder", "transcript_dim"),
    "query": ("query_encoder", "query_dim"),
}
"""The spec fields that must agree for a stream's features to feed a model trained on another root's. The
transcript's ASR model is not among them: a transcript from another Whisper (or HiREST-sim's narration) is text
embedded by the same encoder, a shift in wording rather than in feature space."""

NO_VISUAL_ENCODER = "none"
"""``visual_encoder`` of speech-only features."""


@dataclass
class FeatureSpec:
    """What produced the features of a dataset root. Stored beside the features and in every checkpoint."""

    visual_encoder: str = "eva-clip-g14"
    visual_dim: int = 1024
    visual_dir: str = "eva_clip_features"
    fps: float = 1.0
    transcript_model: str = "whisper-small.en"
    transcript_dir: str = "ASR"
    transcript_encoder: str = "all-MiniLM-L6-v2"
    transcript_dim: int = 384
    transcript_feat_dir: str = "ASR_feats_all-MiniLM-L6-v2"
    query_encoder: str = "eva-clip-g14-text"
    query_dim: int = 1024
    query_file: str = "query_feats_eva-clip-g14-text.pt"
    simulated: tuple[str, ...] = ()
    """Streams (of :data:`STREAMS`) whose features are simulated, not computed from videos by the named encoder.
    Specs written before streams were told apart hold one bool: ``true`` reads as ``("visual",)``, the stream
    HiREST-sim simulates."""

    def __post_init__(self) -> None:
        value: Any = self.simulated
        if isinstance(value, bool):  # a feature_spec.json of an older quag
            value = ("visual",) if value else ()
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise FeatureError(f"feature spec field 'simulated': expected a list of streams from {list(STREAMS)}")
        unknown = sorted(set(value) - set(STREAMS))
        if unknown:
            raise FeatureError(f"feature spec field 'simulated': unknown stream(s) {unknown}; valid: {list(STREAMS)}")
        # canonical order; a speech-only spec has no visual stream to be simulated
        self.simulated = tuple(s for s in STREAMS if s in value and (s != "visual" or self.visual_dim > 0))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "feature spec") -> FeatureSpec:
        """Build from a JSON mapping; specs written by quag 0.1 (``asr_*`` field names) are read as well."""
        data = {LEGACY_SPEC_FIELDS.get(k, k): v for k, v in data.items()}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FeatureError(f"{source}: unknown field(s) {unknown}; valid fields: {sorted(names)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def speech_only(self) -> bool:
        """True when the features have no visual stream (``visual_dim == 0``)."""
        return self.visual_dim == 0

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams these features hold: all of :data:`STREAMS`, less ``visual`` when speech-only."""
        return tuple(s for s in STREAMS if s != "visual" or not self.speech_only)

    def without_visual(self) -> FeatureSpec:
        """The same features read without their visual stream: what a model with ``model.visual_dim: 0`` is
        trained on (``visual_encoder "none"``, ``visual_dim 0``; a simulated visual stream goes with it)."""
        return replace(self, visual_encoder=NO_VISUAL_ENCODER, visual_dim=0)

    def describe(self, stream: str) -> str:
        """One stream in words, e.g. ``'sim-minilm-proj1024' (1024-d, 1.0 fps, SIMULATED)``."""
        if stream == "visual" and self.speech_only:
            return "none (speech-only)"
        encoder, dim, *rest = (getattr(self, k) for k in STREAM_FIELDS[stream])
        extra = [f"{dim}-d", *(f"{r} fps" for r in rest)] + (["SIMULATED"] if stream in self.simulated else [])
        return f"{encoder!r} ({', '.join(extra)})"

    @classmethod
    def load(cls, root: str | Path) -> FeatureSpec:
        """``<root>/feature_spec.json``, or the official release's spec when the file is absent."""
        path = Path(root) / "feature_spec.json"
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise FeatureError(f"{path}: not valid JSON ({json_error_text(e)})") from e
        if not isinstance(data, dict):
            raise FeatureError(f"{path}: expected a JSON object of spec fields")
        return cls.from_dict(data, str(path))

    def save(self, root: str | Path) -> Path:
        from quag.io import atomic_write_json

        return atomic_write_json(Path(root) / "feature_spec.json", self.to_dict())

    def check_compatible(self, other: FeatureSpec, what: str = "checkpoint", other_what: str = "features") -> None:
        """Raise if features made as ``other`` describes cannot feed a model trained on features like ``self``.

        Compared stream by stream (:data:`STREAM_FIELDS` plus the simulated flag), only the streams ``self`` holds:
        a speech-only model reads the transcript and query features of any root, with or without frame files.

        Args:
            other: the spec of the features to feed in.
            what: what ``self`` belongs to, for the message.
            other_what: what ``other`` belongs to, for the message.

        Raises:
            FeatureError: one line per stream that differs, naming both sides.
        """

        def key(spec: FeatureSpec, stream: str) -> tuple[Any, ...]:
            if stream not in spec.streams:
                return (None,)
            return (*(getattr(spec, k) for k in STREAM_FIELDS[stream]), stream in spec.simulated)

        diffs = [
            f"{stream} stream: the {what} has {self.describe(stream)}, the {other_what} have {other.describe(stream)}"
            for stream in self.streams
            if key(self, stream) != key(other, stream)
        ]
        if diffs:
            raise FeatureError(
                f"the {other_what} were made by other encoders than the {what} expects ("
                + "; ".join(diffs)
                + "). Re-extract the features with the matching encoders or use a matching checkpoint."
            )


@dataclass
class LengthReport:
    """Visual files whose row count differed from round(v_duration), and what was done."""

    checked: int = 0
    truncated: dict[str, tuple[int, int]] = field(default_factory=dict)  # video -> (rows, T)
    padded: dict[str, tuple[int, int]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.checked} visual files checked: {self.checked - len(self.truncated) - len(self.padded)} exact, "
            f"{len(self.truncated)} cut to round(duration), {len(self.padded)} padded by repeating the last row"
        )


class _LRU:
    """Byte-bounded least-recently-used cache (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self.items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> np.ndarray | None:
        with self.lock:
            v = self.items.get(key)
            if v is not None:
                self.items.move_to_end(key)
            return v

    def put(self, key: Any, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        with self.lock:
            if key in self.items:
                return
            self.items[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.bytes -= old.nbytes


def load_tensor_file(path: Path, what: str) -> np.ndarray:
    """Load a ``torch.save``-d tensor (or array) as float32 NumPy; errors name the file."""
    if not path.is_file():
        raise FeatureError(f"{what} file {path} not found: {OBTAIN_HINT}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        raise torch_file_error(path, what, e) from None
    if isinstance(obj, torch.Tensor):
        arr = obj.detach().to(torch.float32).numpy()
    elif isinstance(obj, np.ndarray):
        arr = obj.astype(np.float32)
    else:
        raise FeatureError(
            f"{path}: expected a tensor, found {type(obj).__name__} (a broken check_feature_size.py "
            "run writes a list of paths here); re-create the file"
        )
    return arr


def _check_matrix(arr: np.ndarray, path: Path, dim: int, field_name: str) -> np.ndarray:
    if arr.ndim == 1 and arr.size == 0:
        return np.zeros((0, dim), dtype=np.float32)
    if arr.ndim != 2:
        raise FeatureError(f"{path}: {field_name} must be a 2-D (rows, {dim}) matrix, got shape {tuple(arr.shape)}")
    if arr.shape[1] != dim:
        raise FeatureError(
            f"{path}: {field_name} rows have {arr.shape[1]} values, the feature spec says {dim} "
            "(wrong encoder? check feature_spec.json)"
        )
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).argmax())
        raise FeatureError(f"{path}: {field_name} contains NaN/Inf (first at row {bad}); re-extract this video")
    return arr


class FeatureSource(Protocol):
    """What datasets read features through: :class:`FeatureStore` (files of a dataset root) or an in-memory
    source such as the predictor's. ``n_frames`` is ``round(duration)``; rows are 1-fps clips."""

    def visual(self, video: str, n_frames: int) -> np.ndarray:
        """(n_frames, visual_dim) float32 frame features ((n_frames, 0) when speech-only)."""

    def transcript(self, video: str, n_frames: int) -> np.ndarray:
        """(n_frames, transcript_dim) float32 per-second transcript features."""

    def query_embedding(self, text: str) -> np.ndarray:
        """(query_dim,) float32 query embedding."""


@dataclass(frozen=True)
class FeatureLayout:
    """The single naming convention of feature files (video keys may carry ``.mp4`` or not)."""

    root: Path
    spec: FeatureSpec

    @staticmethod
    def stem(video: str) -> str:
        return video[:-4] if video.endswith(".mp4") else video

    def visual_path(self, video: str) -> Path:
        return Path(self.root) / self.spec.visual_dir / f"{self.stem(video)}.mp4.pt"

    def srt_path(self, video: str) -> Path:
        return Path(self.root) / self.spec.transcript_dir / f"{self.stem(video)}.srt"

    def transcript_feat_path(self, video: str) -> Path:
        return Path(self.root) / self.spec.transcript_feat_dir / f"{self.stem(video)}.pt"

    def query_path(self) -> Path:
        return Path(self.root) / self.spec.query_file


class FeatureStore:
    """Reads visual, transcript and query features of one dataset root (official layout).

    Args:
        root: dataset root.
        spec: feature spec; default: ``<root>/feature_spec.json`` or the official one.
        length_tolerance: largest |rows - round(duration)| that is fixed instead of raising.
        transcript_alignment: ``reference`` or ``overlap`` (see :func:`quag.data.srt.spread_cues`).
        cache_mb: memory for decoded tensors.
    """

    def __init__(
        self,
        root: str | Path,
        spec: FeatureSpec | None = None,
        length_tolerance: int = 3,
        transcript_alignment: str = "reference",
        cache_mb: int = 4096,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FeatureError(f"dataset root {self.root} does not exist: {OBTAIN_HINT}")
        self.spec = spec or FeatureSpec.load(self.root)
        self.layout = FeatureLayout(self.root, self.spec)
        self.length_tolerance = length_tolerance
        self.transcript_alignment = transcript_alignment
        self.report = LengthReport()
        self._cache = _LRU(cache_mb * 2**20)
        self._queries: dict[str, np.ndarray] | None = None

    def drop_visual(self) -> None:
        """Read this root as speech-only (:meth:`FeatureSpec.without_visual`): frame files are never opened nor
        checked, :meth:`visual` gives (T, 0) arrays. What a model with ``model.visual_dim: 0`` reads."""
        self.spec = self.spec.without_visual()
        self.layout = FeatureLayout(self.root, self.spec)

    # -- paths ------------------------------------------------------------------------------------------
    def visual_path(self, video: str) -> Path:
        return self.layout.visual_path(video)

    def srt_path(self, video: str) -> Path:
        return self.layout.srt_path(video)

    def transcript_feat_path(self, video: str) -> Path:
        return self.layout.transcript_feat_path(video)

    def query_path(self) -> Path:
        return self.layout.query_path()

    # -- loading ----------------------------------------------------------------------------------------
    def visual(self, video: str, n_frames: int) -> np.ndarray:
        """(n_frames, visual_dim) float32 frame features, length policy applied; (n_frames, 0) zeros without
        reading any file when the spec is speech-only."""
        if self.spec.speech_only:
            return np.zeros((n_frames, 0), dtype=np.float32)
        key = ("v", video, n_frames)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        path = self.visual_path(video)
        arr = _check_matrix(load_tensor_file(path, "visual feature"), path, self.spec.visual_dim, "visual features")
        rows = arr.shape[0]
        if rows != n_frames:
            if abs(rows - n_frames) > self.length_tolerance or rows == 0:
                raise FeatureError(
                    f"{path}: {rows} rows but the video lasts {n_frames} s (round(v_duration)); the difference "
                    f"exceeds data.length_tolerance={self.length_tolerance}. Re-extract this video at 1 fps or raise "
                    "the tolerance."
                )
            if rows > n_frames:
                arr = arr[:n_frames]
                self.report.truncated[video] = (rows, n_frames)
            else:
                arr = np.concatenate([arr, np.repeat(arr[-1:], n_frames - rows, axis=0)])
                self.report.padded[video] = (rows, n_frames)
        self.report.checked += 1
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        self._cache.put(key, arr)
        return arr

    def transcript(self, video: str, n_frames: int) -> np.ndarray:
        """(n_frames, transcript_dim) per-second transcript features (zeros where nobody speaks)."""
        key = ("a", video, n_frames)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        srt_path, feat_path = self.srt_path(video), self.transcript_feat_path(video)
        if not srt_path.is_file():
            raise FeatureError(f"transcript {srt_path} not found: {OBTAIN_HINT}")
        cues = read_srt(srt_path)
        emb = _check_matrix(
            load_tensor_file(feat_path, "transcript embedding"),
            feat_path,
            self.spec.transcript_dim,
            "transcript embeddings",
        )
        if emb.shape[0] != len(cues):
            raise FeatureError(
                f"{feat_path}: {emb.shape[0]} embedding rows but {srt_path} has {len(cues)} cues; "
                "re-embed the transcript (one row per cue, in file order)"
            )
        arr = spread_cues(cues, emb, n_frames, self.transcript_alignment)
        self._cache.put(key, arr)
        return arr

    def queries(self) -> dict[str, np.ndarray]:
        """All query embeddings of the root: query text -> (query_dim,) float32."""
        if self._queries is None:
            path = self.query_path()
            if not path.is_file():
                raise FeatureError(
                    f"query-embedding file {path} not found: create it with "
                    f"`quag encode-queries {self.root}` (encoder {self.spec.query_encoder})"
                )
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise torch_file_error(path, "query-embedding", e, f"`quag encode-queries {self.root}`") from None
            if not isinstance(obj, dict) or "queries" not in obj or "embeddings" not in obj:
                raise FeatureError(f"{path}: expected a dict with 'queries' (list of str) and 'embeddings' (Q, D)")
            queries, emb = obj["queries"], obj["embeddings"]
            if not isinstance(emb, torch.Tensor) or not isinstance(queries, list):
                raise FeatureError(f"{path}: field 'embeddings' must be a tensor and 'queries' a list of strings")
            arr = _check_matrix(emb.to(torch.float32).numpy(), path, self.spec.query_dim, "query embeddings")
            if arr.shape[0] != len(queries):
                raise FeatureError(f"{path}: {len(queries)} queries but {arr.shape[0]} embedding rows")
            self._queries = {q: arr[i] for i, q in enumerate(queries)}
        return self._queries

    def query_embedding(self, text: str) -> np.ndarray:
        table = self.queries()
        if text not in table:
            raise FeatureError(
                f"{self.query_path()}: no embedding for query {text!r}; re-run "
                f"`quag encode-queries {self.root}` after adding queries"
            )
        return table[text]

    def check_files(self, videos: list[str]) -> None:
        """Raise one error listing every missing feature file of ``videos`` (checked before training)."""
        missing = []
        for v in videos:
            paths = [self.srt_path(v), self.transcript_feat_path(v)]
            if not self.spec.speech_only:  # a speech-only root has no frame files
                paths.insert(0, self.visual_path(v))
            for p in paths:
                if not p.is_file():
                    missing.append(str(p))
        if missing:
            head = "\n  ".join(missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise FeatureError(
                f"{len(missing)} feature file(s) missing under {self.root}:\n  {head}{more}\n"
                f"To obtain them: {OBTAIN_HINT}"
            )
        self.queries()


# -- checks of whole splits (training reads every file before it writes anything) ------------------------------


def torch_file_error(path: Path, what: str, error: BaseException, remake: str = "`quag extract`") -> FeatureError:
    """Our message for a ``torch.load`` failure: the file, what is wrong with it, how to re-create it.

    PyTorch's own text (advice to retry with ``weights_only=False``, to file an issue) does not apply to a damaged
    data file, so it is left out; ``error`` only decides which of three cases is named.

    Args:
        path: the file.
        what: its kind, e.g. ``visual feature``.
        error: what ``torch.load`` raised.
        remake: the command that writes this kind of file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except OSError as e:
        return FeatureError(f"{path}: cannot be read ({e.strerror}); check the file's permissions")
    objects = "weights only" in str(error).lower() or "unsupported global" in str(error).lower()
    if size == 0:
        reason = "the file is empty (0 bytes)"
    elif not (head.startswith(b"PK") or head.startswith(b"\x80")):  # zip archive, or the legacy pickle format
        reason = "not a torch.save file (it does not start like one)"
    elif objects:
        reason = "it holds Python objects other than tensors, which are not loaded"
    else:
        reason = "a truncated or damaged torch.save file"
    return FeatureError(f"{path}: cannot be read as a {what} file: {reason}; re-create it with {remake}")


def check_feature_contents(store: FeatureStore, items: list[tuple[str, int, str]]) -> list[str]:
    """Read every feature a run will read and return one line per bad file (empty when all are good).

    Each video's frame file (unless the spec is speech-only), transcript and transcript embeddings go through the
    same checks as training (readable, 2-D, the spec's width, finite, the length policy), and each query through
    the query-embedding file. Files are read once however many items name them; what is read stays in the
    store's cache for training.

    Args:
        store: the dataset root.
        items: ``(video, n_frames, query)`` for every example of the run.
    """
    problems: dict[str, str] = {}
    seen: set[tuple[str, int]] = set()

    def attempt(key: str, read: Any, *args: Any) -> None:
        if key in problems:
            return
        try:
            read(*args)
        except (FeatureError, ValueError, OSError) as e:
            problems[key] = str(e).splitlines()[0]

    for video, n_frames, query in items:
        if (video, n_frames) not in seen:
            seen.add((video, n_frames))
            if not store.spec.speech_only:
                attempt(str(store.visual_path(video)), store.visual, video, n_frames)
            attempt(str(store.transcript_feat_path(video)), store.transcript, video, n_frames)
        attempt(f"{store.query_path()} [{query}]", store.query_embedding, query)
    return list(dict.fromkeys(problems.values()))  # a broken query file is reported once, not once per query
