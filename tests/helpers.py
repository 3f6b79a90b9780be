"""Helpers shared by every test folder: repository paths and a deterministic stand-in for the MiniLM encoder.

Test modules import these as ``from tests.helpers import ...``; fixtures live in ``tests/conftest.py``.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from quag.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
HIREST = REPO / "data" / "hirest"
BENCHMARKS = REPO / "benchmarks"


def benchmark(name: str) -> ModuleType:
    """Import the script ``benchmarks/<name>.py`` as a module (the folder is not a package)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def hash_encode(texts: list[str], dim: int = 384) -> np.ndarray:
    """Deterministic stand-in for MiniLM: a unit vector per text, seeded by its hash."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        out[i] = v / np.linalg.norm(v)
    return out


def tiny_speech_checkpoint(tmp_path: Path, steps: int = 2) -> Path:
    """A speech-only QUAG checkpoint folder (``model.visual_dim: 0``) trained for ``steps`` steps in seconds.

    Trained on a HiREST-sim root of 4 train and 2 val videos built under ``tmp_path`` with :func:`hash_encode`;
    the frame files of that root are deleted first, so the checkpoint also shows that a speech-only model never
    reads them. Its feature spec is the one a speech-only model trained on HiREST-sim has: no visual stream,
    all-MiniLM-L6-v2 transcript cues and queries, nothing simulated, so ``quag predict`` and
    ``Predictor.from_checkpoint`` accept it for real videos (no EVA-CLIP weights needed). Its answers are
    untrained noise: use it to test plumbing, not quality.

    Args:
        tmp_path: a fresh folder (the root, the run and the checkpoint go under it).
        steps: training steps.

    Returns:
        The checkpoint folder (``<tmp_path>/runs/tiny_speech/checkpoints/last``).
    """
    import shutil

    from quag.data.sim import SimConfig, build_sim
    from quag.training.recipe import train

    root = tmp_path / "hirest-sim"
    build_sim(HIREST, root, SimConfig(seed=0, train_videos=4, val_videos=2), encode=hash_encode, progress=False)
    shutil.rmtree(root / "eva_clip_features")
    cfg = tiny_speech_experiment(root, tmp_path / "runs", "tiny_speech", steps)
    result = train(cfg, device="cpu", progress=False)
    return result.run_dir / "checkpoints" / "last"


def tiny_speech_experiment(root: Path, output_dir: Path, name: str, steps: int = 2) -> ExperimentConfig:
    """A tiny speech-only QUAG (``model.visual_dim=0``, width 32) trained for ``steps`` steps on ``root``.

    Step captioning is left out of training only to keep validation free of the Java caption scorers; the caption
    decoder is still built and captions every predicted step.
    """
    from quag.config import DataConfig, EvalConfig, ModelConfig, TrainConfig

    return ExperimentConfig(
        name=name,
        output_dir=str(output_dir),
        model=ModelConfig(
            hidden_dim=32,
            num_heads=2,
            ffn_dim=64,
            num_encoder_layers=1,
            decoder_layers=1,
            dropout=0.0,
            visual_dim=0,
            query_dim=384,
        ),
        data=DataConfig(root=str(root)),
        train=TrainConfig(
            tasks=["moment_retrieval", "moment_segmentation"],
            epochs=1,
            batch_size=2,
            max_steps=steps,
            lr=1e-3,
            warmup_ratio=0.0,
        ),
        eval=EvalConfig(batch_size=4, num_beams=1, max_caption_tokens=6, segmentation_rounds=4, segmentation_min_gap=2),
    )
