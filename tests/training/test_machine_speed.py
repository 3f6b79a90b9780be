"""bench_quag's machine-speed rows: the sitting's code, extracted from git and stepped by a child process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, benchmark

# A stand-in for the sitting commit's benchmark script: each step appends its task and precision to a log, each
# retrieval inference call "infer" and whether gradients were off.
_FAKE_BENCH = """
from pathlib import Path
import torch
LOG = Path(__file__).with_name("steps.log")
def paper_model():
    class Model:
        def train(self):
            return self
        def eval(self):
            return self
    return Model()
def predict_moments(model, batch, cfg):
    with LOG.open("a") as f:
        f.write(f"infer {batch} {not torch.is_grad_enabled()}\\n")
def build_optimizer(model, lr, weight_decay):
    return None
def make_batch(task):
    return task
def train_step_fn(model, opt, batch, bf16):
    def step():
        with LOG.open("a") as f:
            f.write(f"{batch} {bf16}\\n")
    return step
"""


def _fake_source(root: Path, with_quag: bool = True) -> Path:
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "bench_quag.py").write_text(_FAKE_BENCH)
    if with_quag:
        (root / "src" / "quag").mkdir(parents=True)
        (root / "src" / "quag" / "__init__.py").write_text("")
        (root / "src" / "quag" / "config.py").write_text("class EvalConfig:\n    pass\n")
    return root


def test_sitting_steps_run_the_commit_script_on_request(tmp_path: Path) -> None:
    bench_quag = benchmark("bench_quag")
    source = _fake_source(tmp_path / "sitting")
    steps = bench_quag.SittingSteps(source, 1)
    try:
        steps.step_fn("moment_retrieval", bf16=False)()
        steps.step_fn("step_captioning", bf16=True)()
        steps.step_fn("moment_retrieval", bf16=False)()
        steps.infer_fn()()
    finally:
        steps.close()
    log = (source / "benchmarks" / "steps.log").read_text().splitlines()
    assert log == [
        "moment_retrieval False",
        "step_captioning True",
        "moment_retrieval False",
        "infer moment_retrieval True",
    ]


def test_sitting_steps_refuse_this_checkouts_quag(tmp_path: Path) -> None:
    """Without the commit's own src/quag the child would import this checkout's package: it stops instead."""
    bench_quag = benchmark("bench_quag")
    source = _fake_source(tmp_path / "sitting", with_quag=False)
    with pytest.raises(RuntimeError, match="sitting's code"):
        bench_quag.SittingSteps(source, 1)


def test_extract_sitting_code_says_why_without_the_commit(tmp_path: Path) -> None:
    bench_quag = benchmark("bench_quag")
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    why = bench_quag.extract_sitting_code(tmp_path / "out", repo=tmp_path / "repo")
    assert why is not None and bench_quag.SITTING_COMMIT[:7] in why and "history" in why


def test_extract_sitting_code_from_this_clone(tmp_path: Path) -> None:
    bench_quag = benchmark("bench_quag")
    has_commit = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", bench_quag.SITTING_COMMIT + "^{commit}"], capture_output=True
    )
    if has_commit.returncode:
        pytest.skip("this checkout lacks the sitting's commit (a shallow clone or an exported tree)")
    assert bench_quag.extract_sitting_code(tmp_path) is None
    assert (tmp_path / "src" / "quag" / "__init__.py").is_file()
    assert (tmp_path / "benchmarks" / "bench_quag.py").is_file()


def test_render_without_machine_speed_compares_unscaled() -> None:
    """A run that could not time the sitting's code prints the authors' figures raw, and says why."""
    bench_quag = benchmark("bench_quag")
    payload = json.loads((REPO / "benchmarks" / "results" / "bench_quag.json").read_text())
    for row in payload["train"]:
        row.pop("fp32_sitting_ms", None)
        row.pop("bf16_sitting_ms", None)
    payload["sitting"] = {"commit": bench_quag.SITTING_COMMIT, "measured": False, "why_not": "no git here"}
    text = bench_quag.render(payload)
    assert "machine speed: not measured (no git here)" in text
    assert "scaled" not in text.split("machine speed")[1].split("\n", 1)[1]
    assert "x raw" in text
