import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training.helpers import tiny_overrides


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.distributed
def test_two_process_ddp_keeps_ranks_identical(sim_root: Path, tmp_path: Path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        str(worker),
        str(tmp_path),
        *tiny_overrides(sim_root, tmp_path / "runs", "train.max_steps=4"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert torch.equal(r0["params"], r1["params"])  # gradients were all-reduced every step
    assert [x["task"] for x in r0["losses"]] == [x["task"] for x in r1["losses"]]  # same task order on both ranks
    assert [x["loss"] for x in r0["losses"]] != [x["loss"] for x in r1["losses"]]  # but different data shards
    assert r0["metrics"] == r1["metrics"] and "mean_score" in r0["metrics"]  # gathered validation, broadcast
    assert (tmp_path / "runs" / "tiny" / "checkpoints" / "last" / "model.safetensors").is_file()
