"""Fixtures of the pipeline tests (helpers live in ``tests.pipeline.helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from quag.pipeline.asr import WhisperOptions, WhisperTranscriber
from quag.pipeline.eva_clip import build_text_tower, build_vision_tower
from quag.pipeline.weights import save_checkpoint
from tests.pipeline.helpers import TINY_EVA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random EVA-CLIP checkpoint of :data:`TINY_EVA` in the official layout, with the config embedded."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("eva") / "tiny_eva_clip.pt"
    return save_checkpoint(path, build_vision_tower(TINY_EVA), build_text_tower(TINY_EVA), TINY_EVA)


@pytest.fixture(scope="session")
def transcriber() -> WhisperTranscriber:
    """Whisper tiny.en (int8), loaded once for the session."""
    return WhisperTranscriber(options=WhisperOptions(compute_type="int8"))
