"""Whisper tiny.en (faster-whisper, offline) on the shipped speech clip, and the SRT it produces."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from quag.data.srt import format_srt, parse_srt
from quag.pipeline.asr import WhisperTranscriber, asr_model_name
from tests.pipeline.helpers import SPEECH_CLIP, SPEECH_TEXT


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_tiny_en_transcribes_the_speech_clip(transcriber: WhisperTranscriber) -> None:
    cues = transcriber.transcribe_file(SPEECH_CLIP)
    assert transcriber.name == "whisper-tiny.en"
    assert len(cues) >= 1
    text = " ".join(c.text for c in cues)
    assert words(text) == words(SPEECH_TEXT)
    assert 0.0 <= cues[0].start < cues[-1].end <= 3.5
    # SRT round trip: the file quag writes parses back to the same cues
    parsed = parse_srt(format_srt(cues))
    assert [(c.text, round(c.start, 3), round(c.end, 3)) for c in parsed] == [
        (c.text, round(c.start, 3), round(c.end, 3)) for c in cues
    ]


def test_silence_and_empty_audio(transcriber: WhisperTranscriber) -> None:
    assert transcriber.transcribe(np.zeros(0, np.float32)) == []


def test_model_names() -> None:
    assert asr_model_name(None) == "whisper-tiny.en"
    assert asr_model_name("/models/whisper-small.en-ct2") == "faster-whisper:whisper-small.en-ct2"
    assert asr_model_name("/x", "whisper-small.en") == "whisper-small.en"


def test_bad_model_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="faster-whisper model directory"):
        WhisperTranscriber(model_dir=str(tmp_path))
