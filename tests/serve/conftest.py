"""Fixtures of the server tests: a tiny speech-only checkpoint trained in seconds, generated videos with speech,
and a :class:`~quag.serve.service.VideoService` around them (Whisper tiny.en int8, MiniLM: both ship in packages)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from quag.pipeline.predictor import Predictor
from quag.serve.service import VideoService
from tests.helpers import tiny_speech_experiment
from tests.pipeline.helpers import load_speech, make_video


@pytest.fixture(scope="session")
def speech_checkpoint(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two training steps of a tiny speech-only QUAG (``model.visual_dim=0``) on the sim fixture's transcripts."""
    from quag.training.recipe import train

    work = tmp_path_factory.mktemp("serve-model")
    root = work / "hirest-sim"
    shutil.copytree(sim_root, root, ignore=shutil.ignore_patterns("eva_clip_features"))  # never read at visual_dim 0
    cfg = tiny_speech_experiment(root, work / "runs", "serve-speech")
    result = train(cfg, device="cpu", progress=False)
    assert result.steps == 2
    return result.run_dir / "checkpoints" / "last"


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated H.264 + AAC videos with a spoken sentence: ``cooking.mp4`` (6 s, with a suggested question in
    ``cooking.json``) and ``other.mp4`` (4 s)."""
    folder = tmp_path_factory.mktemp("videos")
    speech = load_speech()
    make_video(folder / "cooking.mp4", 24, 4, audio=np.concatenate([speech, speech]))
    make_video(folder / "other.mp4", 16, 4, audio=speech)
    (folder / "cooking.json").write_text('{"video": "cooking.mp4", "query": "Make pancakes"}')
    (folder / "other.json").write_text("not json")  # a broken sidecar only loses its hint
    return folder


@pytest.fixture(scope="session")
def predictor(speech_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """One predictor for the session (loaded once, like the server's)."""
    from quag.pipeline.asr import WhisperOptions

    cache = tmp_path_factory.mktemp("serve-features")
    return Predictor.from_checkpoint(
        speech_checkpoint, cache_dir=cache, whisper_options=WhisperOptions(compute_type="int8")
    )


@pytest.fixture
def service(predictor: Predictor, tmp_path: Path, video_dir: Path) -> Iterator[VideoService]:
    """A fresh video service (its own cache folder) around the session's predictor; examples = ``video_dir``."""
    svc = VideoService(predictor, tmp_path / "serve", examples_dir=video_dir, max_videos=4)
    yield svc
    svc.close()
