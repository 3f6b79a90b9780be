"""Speech-only models (``model.visual_dim: 0``): train two steps on the sim fixture as it is (its frame files are
never read: they are made unreadable first), then ``quag infer`` on it and ``quag predict`` a generated video
without any EVA-CLIP weights."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from quag.cli import main
from quag.config import ModelConfig
from quag.data.features import FeatureSpec
from quag.models import build_model
from quag.models.encoders import InputEmbedding
from tests.helpers import tiny_speech_experiment
from tests.pipeline.helpers import load_speech, make_video


def test_input_embedding_without_visual_stream() -> None:
    import torch

    embed = InputEmbedding(0, 8, 4, 16)
    assert embed.video_proj is None and not any("video" in n for n, _ in embed.named_parameters())
    v, a, q = embed(torch.zeros(2, 3, 0), torch.randn(2, 3, 8), torch.randn(2, 4))
    assert v.shape == a.shape == (2, 3, 16) and not v.any() and q.shape == (2, 16)
    with pytest.raises(ValueError, match="visual_dim"):
        ModelConfig(visual_dim=-1)


@pytest.fixture(scope="module")
def speech_checkpoint(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two training steps of a tiny speech-only QUAG on the sim fixture's transcripts (frame files left out)."""
    from quag.training.recipe import train

    work = tmp_path_factory.mktemp("speech")
    root = work / "hirest-sim"
    shutil.copytree(sim_root, root)
    for frames in (root / "eva_clip_features").iterdir():
        frames.write_bytes(b"not a tensor")  # reading or checking any of them would fail
    assert FeatureSpec.load(root).simulated == ("visual",)
    cfg = tiny_speech_experiment(root, work / "runs", "speech")
    result = train(cfg, device="cpu", progress=False)
    assert result.steps == 2 and all(np.isfinite(x["loss"]) for x in result.losses)
    return result.run_dir / "checkpoints" / "last"


def test_speech_only_model_of_a_simulated_root(speech_checkpoint: Path, tmp_path: Path) -> None:
    """Trained on HiREST-sim, the checkpoint holds no simulated stream; ``quag infer`` reads the root speech-only."""
    from quag.checkpoint import read_checkpoint_info
    from quag.inference.api import run_inference

    cfg, spec, _ = read_checkpoint_info(speech_checkpoint)
    assert spec.speech_only and spec.simulated == () and spec.streams == ("transcript", "query")
    assert spec.transcript_model == "sim-pseudo-transcript" and spec.query_encoder == "all-MiniLM-L6-v2"
    summary = run_inference(
        speech_checkpoint,
        split="val",
        out_dir=tmp_path / "pred",
        tasks=["moment_retrieval"],
        device="cpu",
        progress=False,
    )
    (official,) = [f for f in summary["files"] if f.endswith("val_moment_retrieval.json")]
    assert json.loads(Path(official).read_text())
    assert cfg.data.root.endswith("hirest-sim")


def test_speech_only_predict_without_visual_weights(speech_checkpoint: Path, tmp_path: Path) -> None:
    from quag.checkpoint import load_checkpoint

    model, cfg, spec, _ = load_checkpoint(speech_checkpoint)
    assert spec.speech_only and cfg.model.visual_dim == 0
    assert not any(n.startswith("embed.video") for n, _ in model.named_parameters())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in build_model(cfg.model).parameters())
    speech = load_speech()
    video = make_video(tmp_path / "cooking.mp4", 24, 4, audio=np.concatenate([speech, speech]))
    out = tmp_path / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(
            [
                "predict",
                str(video),
                "-q",
                "Pour the milk",
                "--checkpoint",
                str(speech_checkpoint),
                "--out",
                str(out),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--whisper-compute-type",
                "int8",
            ]
        )
    assert rc == 0
    assert "speech-only" in buffer.getvalue()
    (record,) = json.loads((out / "cooking.json").read_text())
    assert record["video"] == "cooking.mp4" and record["query"] == "Pour the milk"
    assert record["duration"] == pytest.approx(6.0)
    s, e = record["moment"]
    assert 0 <= s <= e <= 6.0 and all(s - 1 <= x["start"] <= x["end"] <= e for x in record["steps"])
    page = (out / "cooking.html").read_text()
    assert "<svg" in page and "milk" in page.lower()
