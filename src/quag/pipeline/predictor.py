"""Moment, steps and captions for a new video: load a checkpoint once, encode a video once, ask many queries.

::

    predictor = Predictor.from_checkpoint("runs/x/checkpoints/best", eva_clip_checkpoint="eva_clip_psz14.pt")
    video = predictor.encode_video("cooking.mp4")          # frames, transcript, cue embeddings (cached on disk)
    for query in ("Make pancakes", "Clean the pan"):
        prediction = predictor.predict(query, video)        # retrieval -> segmentation -> a caption per step
        record = prediction.to_record()                     # the record evaluation and `quag infer` write

The checkpoint's :class:`~quag.data.features.FeatureSpec` says which encoders made each of its streams (visual,
transcript, query); the predictor checks them one by one and refuses a checkpoint whose features it cannot
reproduce from a video file:

* visual stream from an EVA-CLIP tower: needs that EVA-CLIP checkpoint (``eva_clip_psz14.pt`` for the paper's g/14);
* no visual stream (``visual_encoder "none"``, ``visual_dim 0``): a speech-only model (``model.visual_dim: 0``),
  runs on the transcript alone, no visual weights needed; trained on any root, HiREST-sim included, whose
  transcript cues and queries are all-MiniLM-L6-v2 embeddings like those made here;
* a simulated visual stream (HiREST-sim's ``sim-minilm-proj1024``) is computed from annotations, not from video
  pixels: refused, with a message naming the stream.

Queries are encoded with the checkpoint's ``query_encoder``: all-MiniLM-L6-v2, or the EVA-CLIP text tower of the
same EVA-CLIP checkpoint file. The model runs through :func:`quag.inference.runner.predict_end_to_end` on an
in-memory :class:`~quag.data.features.FeatureSource`; nothing is written to a dataset root.

Feature cache: with ``cache_dir`` each encoded video is stored as ``<cache_dir>/<video sha256>-<encoders>.pt``
(atomic write), keyed by the file's content and by everything that changes the features (encoders, EVA-CLIP file,
Whisper model and decoding options), so a second run on the same file (or a copy of it) skips extraction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from quag.config import ExperimentConfig
from quag.data.annotations import VideoAnnotation
from quag.data.features import FeatureError, FeatureSpec
from quag.data.srt import format_srt, parse_srt, spread_cues
from quag.data.timestamps import num_frames
from quag.io import atomic_torch_save, atomic_write_json
from quag.pipeline.asr import WhisperOptions
from quag.pipeline.extract import NO_VISUAL, ExtractOptions, FeatureExtractor, VideoFeatures, fit_rows, require_visual
from quag.pipeline.queries import QueryEncoder
from quag.pipeline.text import MINILM_DIM, MINILM_NAME

if TYPE_CHECKING:
    from quag.models import HiRESTModel

logger = logging.getLogger(__name__)

EVA_WEIGHTS = "eva_clip_psz14.pt"
CACHE_FORMAT = 1
"""Version of the cached-feature file; part of the cache key."""


def default_cache_dir() -> Path:
    """``$QUAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/quag/features``, else ``~/.cache/quag/features``."""
    if os.environ.get("QUAG_CACHE_DIR"):
        return Path(os.environ["QUAG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "quag" / "features"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Step:
    """One predicted step of the moment, in seconds, with its caption."""

    start: float
    end: float
    caption: str


@dataclass
class Prediction:
    """What the model says about one (query, video) pair. Times are in seconds.

    Attributes:
        video: video key (file name, e.g. ``cooking.mp4``).
        query: the query text.
        duration: video duration.
        moment: predicted moment ``(start, end)``.
        steps: the moment split into steps, each captioned.
    """

    video: str
    query: str
    duration: float
    moment: tuple[float, float]
    steps: list[Step] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """The end-to-end record of :func:`~quag.inference.runner.predict_end_to_end` (and of evaluation):
        ``{"video", "query", "duration", "moment": [s, e], "steps": [{"start", "end", "sentence"}]}``."""
        return {
            "video": self.video,
            "query": self.query,
            "duration": self.duration,
            "moment": [self.moment[0], self.moment[1]],
            "steps": [{"start": s.start, "end": s.end, "sentence": s.caption} for s in self.steps],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        """Inverse of :meth:`to_record`."""
        s, e = record["moment"]
        steps = [Step(float(x["start"]), float(x["end"]), str(x["sentence"])) for x in record["steps"]]
        return cls(str(record["video"]), str(record["query"]), float(record["duration"]), (float(s), float(e)), steps)


@dataclass
class EncodedVideo(VideoFeatures):
    """:class:`~quag.pipeline.extract.VideoFeatures` of a file, with its name and content hash."""

    video: str = "video.mp4"
    """Video key used in predictions (the file name)."""
    path: str = ""
    sha256: str = ""


class MemoryFeatures:
    """A :class:`~quag.data.features.FeatureSource` over one encoded video and the embeddings of some queries.

    Args:
        name: the video key the datasets ask for.
        features: the video's features.
        visual_dim: the model's frame-feature width (0 = speech-only: zero-width rows).
        queries: query text -> (query_dim,) embedding.
        transcript_alignment: cue-to-second rule when another length than ``features.n_frames`` is asked for.
    """

    def __init__(
        self,
        name: str,
        features: VideoFeatures,
        visual_dim: int,
        queries: dict[str, np.ndarray],
        transcript_alignment: str = "reference",
    ) -> None:
        self.name = name
        self.features = features
        self.visual_dim = visual_dim
        self.queries = queries
        self.transcript_alignment = transcript_alignment

    def _check(self, video: str) -> None:
        if video != self.name:
            raise FeatureError(f"in-memory features hold {self.name!r}, not {video!r}")

    def visual(self, video: str, n_frames: int) -> np.ndarray:
        self._check(video)
        if self.visual_dim == 0:
            return np.zeros((n_frames, 0), dtype=np.float32)
        if self.features.visual is None:
            raise FeatureError(f"{video}: encoded without frame features, but the model needs them")
        return np.ascontiguousarray(fit_rows(self.features.visual, n_frames), dtype=np.float32)

    def transcript(self, video: str, n_frames: int) -> np.ndarray:
        self._check(video)
        if n_frames == self.features.n_frames:
            return self.features.transcript
        return spread_cues(self.features.cues, self.features.cue_embeddings, n_frames, self.transcript_alignment)

    def query_embedding(self, text: str) -> np.ndarray:
        if text not in self.queries:
            raise FeatureError(f"no embedding for query {text!r}")
        return self.queries[text]


def simulated_streams(spec: FeatureSpec) -> list[str]:
    """The streams a model trained on ``spec`` reads that are simulated (no video can reproduce them). A visual
    encoder named ``sim-*`` counts as simulated even in a spec that does not say so."""
    sim = set(spec.simulated)
    if not spec.speech_only and spec.visual_encoder.startswith("sim-"):
        sim.add("visual")
    return [s for s in spec.streams if s in sim]


def check_features_producible(spec: FeatureSpec, extractor: FeatureExtractor, checkpoint: str | Path) -> None:
    """Raise :class:`FeatureError` unless ``extractor`` makes the frame and transcript features ``spec`` describes.

    Args:
        spec: the checkpoint's feature spec.
        extractor: the extractor the predictor would use (its EVA-CLIP file decides the visual features).
        checkpoint: the checkpoint folder, for messages.
    """
    simulated = simulated_streams(spec)
    if simulated:
        named = ", ".join(f"{s} ({spec.describe(s)})" for s in simulated)
        raise FeatureError(
            f"checkpoint {checkpoint} reads simulated features in its {' and '.join(simulated)} stream: {named}. "
            "HiREST-sim derives them from the annotations, not from video pixels, so no real video can be encoded "
            "for it. Use a checkpoint that reads no simulated stream: a speech-only model trained on the same data "
            "(model.visual_dim=0, e.g. configs/sim_speech_cpu.yaml, which `make example` trains), or one trained on "
            f"features of real videos (the official HiREST features or `quag extract` output; EVA-CLIP-g/14 frames "
            f"need {EVA_WEIGHTS})."
        )
    made = extractor.spec()
    if spec.speech_only:
        made = replace(made, visual_encoder=spec.visual_encoder, visual_dim=0)
    elif made.speech_only:
        try:
            require_visual(made, needed_by=f"checkpoint {checkpoint}")
        except FeatureError as e:
            raise FeatureError(
                f"checkpoint {checkpoint} was trained on EVA-CLIP frame features (visual_encoder "
                f"{spec.visual_encoder!r}) and no EVA-CLIP weights were given to compute them: pass the weights file "
                f"{EVA_WEIGHTS} (BAAI/EVA on Hugging Face) with `quag predict VIDEO --checkpoint CKPT "
                f"--eva-clip-checkpoint {EVA_WEIGHTS}` or Predictor.from_checkpoint(CKPT, "
                f"eva_clip_checkpoint='{EVA_WEIGHTS}'), or use a checkpoint trained speech-only (model.visual_dim=0)."
            ) from e
    made = replace(made, query_encoder=spec.query_encoder, query_dim=spec.query_dim)
    spec.check_compatible(made, what=f"checkpoint {checkpoint}", other_what="features this predictor computes")
    if spec.transcript_model.startswith("sim-"):
        logger.info(
            "checkpoint %s learnt from simulated narration (%s); this video is transcribed by %s",
            checkpoint,
            spec.transcript_model,
            made.transcript_model,
        )
    elif spec.transcript_model != made.transcript_model:
        logger.warning(
            "checkpoint %s was trained on transcripts of %s; transcribing with %s (pass --whisper-model to match)",
            checkpoint,
            spec.transcript_model,
            made.transcript_model,
        )


class Predictor:
    """A loaded checkpoint plus the encoders that turn a video and a query into its inputs.

    Build it with :meth:`from_checkpoint`. Then :meth:`encode_video` once per video and :meth:`predict` once per
    query: the video features are reused across queries (and, with ``cache_dir``, across runs).

    Args:
        model: the model in eval mode, on ``device``.
        config: the checkpoint's experiment config (data and eval sections drive decoding).
        spec: the checkpoint's feature spec.
        extractor: frame / transcript / cue-embedding encoders matching ``spec``.
        query_encoder: encoder of ``spec.query_encoder``; None = all-MiniLM-L6-v2 (shared with the extractor).
        eva_clip_checkpoint: EVA-CLIP file for the text tower when ``spec.query_encoder`` is EVA-CLIP text.
        bpe: CLIP BPE merges file for the EVA-CLIP text tower (default: from an installed package).
        device: torch device.
        cache_dir: where encoded videos are cached; None = memory only.
    """

    def __init__(
        self,
        model: HiRESTModel,
        config: ExperimentConfig,
        spec: FeatureSpec,
        extractor: FeatureExtractor,
        query_encoder: QueryEncoder | None = None,
        eva_clip_checkpoint: str | Path | None = None,
        bpe: str | Path | None = None,
        device: str | torch.device = "cpu",
        cache_dir: str | Path | None = None,
    ) -> None:
        self.model = model.eval()
        self.config = config
        self.spec = spec
        self.extractor = extractor
        self.device = torch.device(device)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.eva_clip_checkpoint = Path(eva_clip_checkpoint) if eva_clip_checkpoint is not None else None
        self.bpe = bpe
        self._query_encoder = query_encoder
        self._queries: dict[str, np.ndarray] = {}
        self._videos: dict[str, EncodedVideo] = {}  # sha256 -> features encoded by this predictor
        self._last: EncodedVideo | None = None
        m = config.model
        expected = {"visual_dim": spec.visual_dim, "transcript_dim": spec.transcript_dim, "query_dim": spec.query_dim}
        bad = [f"model.{k}={getattr(m, k)} vs feature spec {v}" for k, v in expected.items() if getattr(m, k) != v]
        if bad:
            raise FeatureError(f"the checkpoint's model and feature spec disagree: {'; '.join(bad)}")
        self._check_query_encoder()

    # -- construction ------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        eva_clip_checkpoint: str | Path | None = None,
        whisper_model: str | Path | None = None,
        bpe: str | Path | None = None,
        device: str = "cpu",
        cache_dir: str | Path | None = None,
        whisper_options: WhisperOptions | None = None,
    ) -> Predictor:
        """Load a checkpoint folder and check that its features can be computed here.

        Encoders are loaded on first use; the checks only read configurations.

        Args:
            path: checkpoint folder (``model.safetensors``, ``config.yaml``, ``feature_spec.json``).
            eva_clip_checkpoint: EVA-CLIP weights (``eva_clip_psz14.pt``); needed unless the checkpoint is
                speech-only and its queries are MiniLM-encoded.
            whisper_model: faster-whisper model directory; None = Whisper tiny.en.
            bpe: CLIP BPE merges file for EVA-CLIP text queries.
            device: torch device for the model and the encoders.
            cache_dir: feature cache folder; None = no disk cache.
            whisper_options: Whisper decoding settings (default: the reference's, deterministic).

        Returns:
            The predictor.

        Raises:
            FeatureError: the checkpoint's features cannot be made from a video with the given weights (the
                message names what is missing).
        """
        from quag.checkpoint import load_checkpoint, read_checkpoint_info

        _, spec, _ = read_checkpoint_info(path)  # check before loading any weights
        visual_file = None if spec.speech_only else eva_clip_checkpoint
        options = ExtractOptions(
            eva_clip_checkpoint=Path(visual_file) if visual_file is not None else None,
            whisper_model=Path(whisper_model) if whisper_model is not None else None,
            whisper=whisper_options or WhisperOptions(),
            device=device,
            no_audio="empty",
        )
        extractor = FeatureExtractor(options)
        check_features_producible(spec, extractor, path)
        model, cfg, spec, _ = load_checkpoint(path, device)
        predictor = cls(
            model,
            cfg,
            spec,
            extractor,
            eva_clip_checkpoint=eva_clip_checkpoint,
            bpe=bpe,
            device=device,
            cache_dir=cache_dir,
        )
        logger.info("loaded %s (%s, %s)", path, cfg.model.arch, "speech-only" if spec.speech_only else "visual+speech")
        return predictor

    def _eva_text_name(self) -> str | None:
        if self.eva_clip_checkpoint is None:
            return None
        from quag.pipeline.weights import checkpoint_config

        return f"{checkpoint_config(self.eva_clip_checkpoint).name}-text"

    def _check_query_encoder(self) -> None:
        wanted = self.spec.query_encoder
        if self._query_encoder is not None:
            if self._query_encoder.dim != self.spec.query_dim:
                raise FeatureError(
                    f"query encoder {self._query_encoder.name!r} makes {self._query_encoder.dim}-d "
                    f"embeddings, the checkpoint expects {self.spec.query_dim}-d ({wanted})"
                )
            return
        if wanted == MINILM_NAME:
            if self.spec.query_dim != MINILM_DIM:
                raise FeatureError(
                    f"{MINILM_NAME} queries are {MINILM_DIM}-d, the checkpoint says {self.spec.query_dim}"
                )
            return
        if wanted.startswith("eva-clip") and wanted.endswith("-text"):
            have = self._eva_text_name()
            if have is None:
                raise FeatureError(
                    f"the checkpoint encodes queries with the EVA-CLIP text tower ({wanted}), which needs the EVA-CLIP "
                    f"weights {EVA_WEIGHTS} (BAAI/EVA on Hugging Face): pass --eva-clip-checkpoint {EVA_WEIGHTS} "
                    "(Predictor.from_checkpoint(..., eva_clip_checkpoint=...))"
                )
            if have != wanted:
                raise FeatureError(
                    f"the checkpoint's queries were encoded by {wanted}, but "
                    f"{self.eva_clip_checkpoint} holds {have}; pass the matching EVA-CLIP file"
                )
            return
        raise FeatureError(
            f"unknown query encoder {wanted!r} in the checkpoint's feature spec; the predictor encodes "
            f"queries with {MINILM_NAME} or an EVA-CLIP text tower"
        )

    @property
    def query_encoder(self) -> QueryEncoder:
        """The encoder of the checkpoint's ``query_encoder`` (loaded on first use)."""
        if self._query_encoder is None:
            if self.spec.query_encoder == MINILM_NAME:
                self._query_encoder = self.extractor.embedder  # one MiniLM for cues and queries
            else:
                from quag.pipeline.queries import EvaClipTextEncoder

                assert self.eva_clip_checkpoint is not None  # checked in _check_query_encoder
                self._query_encoder = EvaClipTextEncoder(
                    self.eva_clip_checkpoint, bpe_path=self.bpe, device=str(self.device)
                )
        return self._query_encoder

    # -- video -----------------------------------------------------------------------------------------
    def cache_key(self) -> str:
        """Hash of everything besides the video's bytes that changes its features."""
        o = self.extractor.options
        visual = None
        if self.extractor.has_visual and o.eva_clip_checkpoint is not None:
            p = Path(o.eva_clip_checkpoint)
            visual = {"file": p.name, "size": p.stat().st_size, "jpeg_quality": o.jpeg_quality}
        made = self.extractor.spec()
        fingerprint = {
            "format": CACHE_FORMAT,
            "spec": {
                k: getattr(made, k)
                for k in (
                    "visual_encoder",
                    "visual_dim",
                    "fps",
                    "transcript_model",
                    "transcript_encoder",
                    "transcript_dim",
                )
            },
            "visual": visual,
            "whisper": {k: v for k, v in dataclasses.asdict(o.whisper).items() if k != "cpu_threads"},
            "no_audio": o.no_audio,
        }
        return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _cache_path(self, sha: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{sha[:32]}-{self.cache_key()}.pt"

    def encode_video(self, path: str | Path) -> EncodedVideo:
        """Frame features (unless speech-only), transcript and cue embeddings of a video file, aligned to
        ``round(duration)`` 1-fps clips. Computed once per file content (memory, then ``cache_dir``).

        Args:
            path: the video file.

        Returns:
            The features; pass them to :meth:`predict` (the last encoded video is also the default there).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"video {path} not found")
        sha = file_sha256(path)
        video = self._videos.get(sha) or self._load_cached(sha, path)
        if video is None:
            logger.info("encoding %s (%s)", path, "speech only" if not self.extractor.has_visual else "frames + speech")
            feats = self.extractor.encode_video(path, transcript_alignment=self.config.data.transcript_alignment)
            video = EncodedVideo(
                **{f.name: getattr(feats, f.name) for f in dataclasses.fields(VideoFeatures)},
                video=path.name,
                path=str(path),
                sha256=sha,
            )
            self._save_cached(video)
        elif video.video != path.name:  # same content under another name
            video = replace(video, video=path.name, path=str(path))
        if not video.cues:
            logger.warning("%s: no transcript cues (no audio track, or no speech found): no speech input", path)
        self._videos[sha] = video
        self._last = video
        return video

    def _load_cached(self, sha: str, path: Path) -> EncodedVideo | None:
        cache = self._cache_path(sha)
        if cache is None or not cache.is_file():
            return None
        try:
            obj = torch.load(cache, map_location="cpu", weights_only=True)
            cues = parse_srt(obj["srt"], str(cache))
            emb = obj["cue_embeddings"].numpy()
            n = int(obj["n_frames"])
            visual = obj["visual"].numpy() if obj["visual"] is not None else None
        except Exception as e:  # a damaged cache file is recomputed, never fatal
            logger.warning("ignoring unreadable cache file %s (%s: %s)", cache, type(e).__name__, e)
            return None
        logger.info("features of %s from cache %s", path, cache)
        return EncodedVideo(
            visual=visual,
            transcript=spread_cues(cues, emb, n, self.config.data.transcript_alignment),
            cues=cues,
            cue_embeddings=emb,
            duration=float(obj["duration"]),
            n_frames=n,
            visual_rows=int(obj["visual_rows"]),
            video=path.name,
            path=str(path),
            sha256=sha,
        )

    def _save_cached(self, video: EncodedVideo) -> None:
        cache = self._cache_path(video.sha256)
        if cache is None:
            return
        payload = {
            "format": CACHE_FORMAT,
            "visual": torch.from_numpy(np.ascontiguousarray(video.visual)) if video.visual is not None else None,
            "cue_embeddings": torch.from_numpy(np.ascontiguousarray(video.cue_embeddings, dtype=np.float32)),
            "srt": format_srt(video.cues),
            "duration": float(video.duration),
            "n_frames": int(video.n_frames),
            "visual_rows": int(video.visual_rows),
        }
        atomic_torch_save(cache, payload)

    # -- queries -------------------------------------------------------------------------------------------
    def encode_query(self, query: str) -> np.ndarray:
        """(query_dim,) float32 embedding of ``query`` (memoised)."""
        if query not in self._queries:
            emb = self.query_encoder.encode([query])
            self._queries[query] = np.asarray(emb[0], dtype=np.float32)
        return self._queries[query]

    @torch.no_grad()
    def predict(self, query: str, video: VideoFeatures | None = None) -> Prediction:
        """Retrieve the moment of ``query``, split it into steps and caption each step.

        Args:
            query: the text query.
            video: features from :meth:`encode_video` (or :meth:`FeatureExtractor.encode_video`); None = the video
                encoded last.

        Returns:
            The prediction (times in seconds).
        """
        from quag.inference.runner import predict_end_to_end

        if not query.strip():
            raise ValueError("the query is empty")
        feats = video if video is not None else self._last
        if feats is None:
            raise ValueError("no video: call encode_video(path) first, or pass its features")
        if not self.spec.speech_only and feats.visual is None:
            require_visual(replace(self.spec, visual_encoder=NO_VISUAL, visual_dim=0), needed_by="this checkpoint")
        name = feats.video if isinstance(feats, EncodedVideo) else "video.mp4"
        duration = float(feats.duration)
        if num_frames(duration) < 1:
            raise ValueError(f"{name}: {duration:.2f} s is too short to predict on (less than one 1-fps clip)")
        if self.spec.speech_only and not feats.cues:
            raise FeatureError(
                f"{name}: no speech to read (no audio track, or nothing Whisper could transcribe), and this checkpoint "
                "is speech-only (model.visual_dim=0): its answer would not depend on the video. Use a video with "
                "speech, or a checkpoint trained on frame features (with --eva-clip-checkpoint)."
            )
        source = MemoryFeatures(
            name, feats, self.spec.visual_dim, {query: self.encode_query(query)}, self.config.data.transcript_alignment
        )
        pair = VideoAnnotation(
            query=query, video=name, relevant=True, clip=True, duration=duration, bounds=(0.0, duration), steps=()
        )
        (record,) = predict_end_to_end(self.model, [pair], source, self.config.data, self.config.eval, self.device)
        return Prediction.from_record(record)


# -- output files ----------------------------------------------------------------------------------------------
def prediction_section(prediction: Prediction, video: VideoFeatures) -> str:
    """HTML for one query: a timeline (moment, captioned steps, transcript cues) and the table of steps."""
    import html

    from quag.report import plural, timeline_svg

    rows = [
        ("moment", [(prediction.moment[0], prediction.moment[1], "")]),
        ("steps", [(s.start, s.end, s.caption) for s in prediction.steps]),
        ("transcript", [(c.start, c.end, c.text) for c in video.cues]),
    ]
    steps = "".join(
        f"<tr><td>{i + 1}</td><td>{s.start:.0f}</td><td>{s.end:.0f}</td><td>{html.escape(s.caption)}</td></tr>"
        for i, s in enumerate(prediction.steps)
    )
    s, e = prediction.moment
    return (
        f'<div class="video"><h2>{html.escape(prediction.query)}</h2>'
        f'<p class="q">moment {s:.0f}-{e:.0f} s of {prediction.duration:.1f} s, '
        f"{plural(len(prediction.steps), 'step')}</p>"
        f"{timeline_svg(prediction.duration, rows)}"
        f"<table><tr><th>#</th><th>start (s)</th><th>end (s)</th><th>caption</th></tr>{steps}</table></div>"
    )


def write_prediction_files(
    out_dir: str | Path, predictions: list[Prediction], video: VideoFeatures, stem: str, note: str | None = None
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<stem>.json`` (one record per query) and ``<out_dir>/<stem>.html`` (atomically).

    Args:
        out_dir: output folder (created).
        predictions: predictions for one video.
        video: its features (the transcript lane of the page).
        stem: file name stem, usually the video's.
        note: a line shown at the top of the page.

    Returns:
        The JSON and HTML paths.
    """
    from quag.report import write_report

    out = Path(out_dir)
    json_path = atomic_write_json(out / f"{stem}.json", [p.to_record() for p in predictions])
    title = f"quag predict: {predictions[0].video}" if predictions else f"quag predict: {stem}"
    html_path = write_report(
        out / f"{stem}.html", title, [prediction_section(p, video) for p in predictions], note=note
    )
    return json_path, html_path
