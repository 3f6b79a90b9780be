"""Processes killed for real: SIGKILL and SIGTERM during training, two trainings into one folder, determinism across
processes. Each resume must end bit-identical to the uninterrupted run (weights and metrics rows).

The long version (N kills at random points, extraction too, a real tmpfs when root may mount one) is
``benchmarks/fault_suite.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quag.training.recipe import train
from tests.helpers import REPO
from tests.reliability.helpers import FAST, digest, metric_rows, no_traceback, run_cli, write_config
from tests.training.helpers import tiny_experiment

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STEPS = ("train.max_steps=10", "train.save_every=2")


def quag_process(*args: str, env: dict[str, str] | None = None, module: str = "quag") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_step(run: Path, step: int, process: subprocess.Popen[str], timeout: float = 300) -> int:
    """Wait until ``run``'s last checkpoint holds ``step`` or later; returns the step seen."""
    meta = run / "checkpoints" / "last" / "meta.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the training ended before step {step}: {process.communicate()}")
        try:
            seen = json.loads(meta.read_text())["step"]
        except (OSError, ValueError, KeyError):
            seen = -1
        if seen >= step:
            return int(seen)
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of step {step} after {timeout} s")


@pytest.fixture(scope="module")
def reference(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    return train(tiny_experiment(sim_root, out, *FAST, *STEPS), device="cpu", progress=False).run_dir


def assert_same_run(run: Path, reference: Path) -> None:
    assert metric_rows(run) == metric_rows(reference)
    for name in ("last", "best"):
        weights = Path("checkpoints") / name / "model.safetensors"
        assert digest(run / weights) == digest(reference / weights), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "last"]
    assert not (run / "train.lock").exists()


def test_sigkill_and_a_second_training_into_the_same_folder(sim_root: Path, tmp_path: Path, reference: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", sim_root, tmp_path / "runs", *FAST, *STEPS)
    run = tmp_path / "runs" / "tiny"
    first = quag_process("train", str(config), "--no-progress", "--device", "cpu")
    try:
        wait_for_step(run, 2, first)
        code, _, err = run_cli("train", str(config), "--no-progress", "--device", "cpu")
        assert code == 1 and f"is in use by another training (pid {first.pid} on host" in err and no_traceback(err)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        first.kill()
    assert first.returncode == -signal.SIGKILL
    train(
        tiny_experiment(sim_root, tmp_path / "runs", *FAST, *STEPS), resume=run / "checkpoints" / "last", device="cpu"
    )
    assert_same_run(run, reference)


def test_sigterm_stops_with_one_line_and_resumes(sim_root: Path, tmp_path: Path, reference: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", sim_root, tmp_path / "runs", *FAST, *STEPS)
    run = tmp_path / "runs" / "tiny"
    process = quag_process("train", str(config), "--no-progress", "--device", "cpu")
    try:
        wait_for_step(run, 2, process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143 and no_traceback(err)
    assert err.strip().splitlines()[-1].startswith("quag train: error: stopped by SIGTERM; every file written")
    assert not (run / "train.lock").exists()
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    code, _, err = run_cli("train", str(config), "--resume", str(run / "checkpoints" / "last"), "--device", "cpu")
    assert code == 0, err
    assert_same_run(run, reference)


def test_same_weights_in_two_processes(sim_root: Path, tmp_path: Path) -> None:
    """A few steps twice, in separate processes with different hash seeds, one with a busy neighbour thread:
    bit-identical weights and losses."""
    runs = []
    for i, (seed, module) in enumerate((("0", "quag"), ("4242", "tests.reliability.busy_worker"))):
        config = write_config(tmp_path / f"c{i}.yaml", sim_root, tmp_path / f"out{i}", *FAST, "train.max_steps=4")
        process = quag_process(
            "train", str(config), "--no-progress", "--device", "cpu", env={"PYTHONHASHSEED": seed}, module=module
        )
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        runs.append(tmp_path / f"out{i}" / "tiny")
    assert digest(runs[0] / "checkpoints/last/model.safetensors") == digest(
        runs[1] / "checkpoints/last/model.safetensors"
    )
    assert metric_rows(runs[0]) == metric_rows(runs[1])
