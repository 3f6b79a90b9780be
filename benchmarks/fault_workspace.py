"""Shared parts of the fault-injection suite (``benchmarks/fault_suite.py``): commands run as processes, the
work folder with its tiny HiREST-sim, checkpoints and videos, and one checked case."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers: the hash text encoder and the video generator

from tests.training.helpers import TINY as TEST_TINY  # noqa: E402 (after the sys.path entry above)

TINY = [*TEST_TINY, "train.save_every=3", "train.epochs=2"]
"""The tiny model and decoding of the training tests, checkpointing every 3 steps for 2 epochs."""


# ---------------------------------------------------------------------------------------------------------
# running commands


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.err


def quag(*args: str, timeout: float = 900, module: str = "quag") -> Outcome:
    start = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Outcome(p.returncode, p.stdout, p.stderr, time.monotonic() - start)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "quag", *args],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a background job inherits an ignored SIGINT; the child gets the default, as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path, pattern: str = "*") -> dict[str, str]:
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob(pattern)) if p.is_file()}


def metric_rows(run: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rows.append({k: v for k, v in json.loads(line).items() if k != "time"})
    return rows


def run_fingerprint(run: Path) -> dict[str, Any]:
    """What must be equal between a resumed run and the uninterrupted one."""
    return {
        "weights": {n: digest(run / "checkpoints" / n / "model.safetensors") for n in ("last", "best")},
        "metrics": metric_rows(run),
        "predictions": tree(run / "predictions"),
    }


def finished_outputs_whole(run: Path) -> list[str]:
    """Finished outputs of a run folder that cannot be read back (should be none, whenever it was killed)."""
    from quag.checkpoint import load_checkpoint

    bad = []
    for ckpt in sorted((run / "checkpoints").glob("[!.]*")) if (run / "checkpoints").is_dir() else []:
        try:
            load_checkpoint(ckpt)
        except Exception as e:
            bad.append(f"{ckpt}: {e}")
    for f in [run / "config.yaml", *sorted((run / "predictions").glob("*.json*"))]:
        if f.is_file():
            try:
                text = f.read_text()
                _ = [json.loads(x) for x in text.splitlines()] if f.suffix == ".jsonl" else None
                if f.suffix == ".json":
                    json.loads(text)
            except ValueError as e:
                bad.append(f"{f}: {e}")
    return bad


# ---------------------------------------------------------------------------------------------------------
# the workspace: a tiny HiREST-sim, configs, a speech-only checkpoint, videos, a tiny EVA-CLIP


@dataclass
class Workspace:
    base: Path
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.base / "sim"

    def build(self) -> None:
        from quag.data.sim import SimConfig, build_sim
        from tests.helpers import HIREST, hash_encode

        build_sim(
            HIREST, self.root, SimConfig(seed=0, train_videos=6, val_videos=3), encode=hash_encode, progress=False
        )

    def config(self, name: str, *extra: str, root: Path | None = None, out: Path | None = None) -> Path:
        import yaml

        from quag.config import apply_overrides

        data = apply_overrides(
            {"name": "tiny", "output_dir": str(out or self.base / "runs" / name)},
            [f"data.root={root or self.root}", *TINY, *extra],
        )
        path = self.base / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def run_dir(self, name: str) -> Path:
        return self.base / "runs" / name / "tiny"

    def finished(self) -> tuple[Path, Path]:
        """A finished 2-step run (moment retrieval only): its config and its run folder (trained on first use)."""
        config = self.config("finished", "train.tasks=[moment_retrieval]", "train.max_steps=2")
        run = self.run_dir("finished")
        if not (run / "checkpoints" / "best").is_dir():
            result = quag("train", str(config), "--no-progress", "--device", "cpu")
            assert result.code == 0, result.err
        return config, run

    def copy_root(self, name: str) -> Path:
        dest = self.base / "roots" / name
        shutil.copytree(self.root, dest)
        return dest

    def speech_checkpoint(self) -> Path:
        from quag.checkpoint import CheckpointMeta, save_checkpoint
        from quag.config import ExperimentConfig, ModelConfig
        from quag.data.features import FeatureSpec
        from quag.models import build_model

        path = self.base / "speech" / "checkpoints" / "best"
        if not path.is_dir():
            m = ModelConfig(
                hidden_dim=32,
                num_heads=2,
                ffn_dim=64,
                num_encoder_layers=1,
                decoder_layers=1,
                visual_dim=0,
                query_dim=384,
            )
            spec = FeatureSpec(
                visual_encoder="none",
                visual_dim=0,
                transcript_model="whisper-tiny.en",
                query_encoder="all-MiniLM-L6-v2",
                query_dim=384,
                query_file="query_feats_all-MiniLM-L6-v2.pt",
            )
            save_checkpoint(path, build_model(m), ExperimentConfig(model=m), spec, CheckpointMeta())
        return path

    def videos(self, n: int = 5, frames: int = 120) -> Path:
        from tests.pipeline.helpers import make_video

        folder = self.base / "videos"
        if not folder.is_dir():
            folder.mkdir()
            for i in range(n):
                make_video(folder / f"clip{i}.mp4", frames + 7 * i, 10)
        return folder

    def eva_checkpoint(self) -> Path:
        import torch

        from quag.pipeline.eva_clip import build_text_tower, build_vision_tower
        from quag.pipeline.weights import save_checkpoint
        from tests.pipeline.helpers import TINY_EVA

        path = self.base / "tiny_eva.pt"
        if not path.is_file():
            torch.manual_seed(0)
            save_checkpoint(path, build_vision_tower(TINY_EVA), build_text_tower(TINY_EVA), TINY_EVA)
        return path


# ---------------------------------------------------------------------------------------------------------
# one case


# ---------------------------------------------------------------------------------------------------------
# damaged inputs, full disks, concurrency: one case each


@dataclass
class Case:
    fault: str
    command: str
    code: int
    message: str
    ok: bool
    traceback: bool
    unchanged: bool
    note: str = ""


def short(text: str, ws: Workspace) -> str:
    return text.replace(str(ws.base), "<ws>").replace(str(REPO) + "/", "")


def check(
    ws: Workspace,
    fault: str,
    args: list[str],
    expect_code: int,
    expect: str,
    watch: Path | None = None,
    note: str = "",
    outcome: Outcome | None = None,
) -> Case:
    before = tree(watch) if watch is not None and watch.is_dir() else None
    result = outcome or quag(*args)
    after = tree(watch) if watch is not None and watch.is_dir() else None
    lines = result.err.strip().splitlines() or [""]
    at = next((i for i in reversed(range(len(lines))) if lines[i].startswith(("quag ", "warning:"))), len(lines) - 1)
    message = lines[at]
    if at + 1 < len(lines) and lines[at + 1].startswith("  "):  # a list of bad files: show the first
        message += "\n" + lines[at + 1].strip()
    ok = result.code == expect_code and expect in result.err and not result.traceback
    unchanged = before is None or {k: v for k, v in (after or {}).items() if k in before} == before
    return Case(
        fault,
        short("quag " + " ".join(args), ws),
        result.code,
        short(message, ws),
        ok and unchanged,
        result.traceback,
        unchanged,
        note,
    )
