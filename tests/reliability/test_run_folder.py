"""Run folders: checked inputs before any write, no silent reuse, a lock, tidy resumes, a full disk, permissions.

Items of the reliability issue: 1 (bad files of both splits, all listed, nothing written), 2 (a finished run is not
overwritten), 3 (a failing run leaves the old config alone), 4 (a killed save leaves no debris and no duplicate
metrics rows), 5 (a full disk during a checkpoint save), 11 (normal permissions), 13 (the defaults' message).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from quag.checkpoint import read_checkpoint_info
from quag.data import annotations as A
from quag.training.recipe import TrainRecipe, train
from tests.reliability.helpers import FAST, digest, metric_rows, no_traceback, run_cli, tree_digest, write_config
from tests.training.helpers import tiny_experiment

pytestmark = pytest.mark.faults


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def finished(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished 2-step run through the CLI: (its config file, its run folder)."""
    out = tmp_path_factory.mktemp("finished")
    config = write_config(out / "tiny.yaml", sim_root, out / "runs", *FAST, "train.max_steps=2")
    old = os.umask(0o022)
    try:
        code, _, err = run_cli("train", str(config), "--no-progress", "--device", "cpu")
    finally:
        os.umask(old)
    assert code == 0, err
    return config, out / "runs" / "tiny"


def test_a_finished_run_is_not_reused_silently(finished: tuple[Path, Path]) -> None:
    """Item 2: the same command again stops, says how to continue or replace, and changes nothing."""
    config, run = finished
    before = tree_digest(run)
    code, _, err = run_cli("train", str(config), "--no-progress", "--device", "cpu")
    assert code == 1 and no_traceback(err)
    assert "already holds a run" in err and f"--resume {run / 'checkpoints' / 'last'}" in err and "--overwrite" in err
    assert tree_digest(run) == before


def test_a_failing_run_leaves_the_old_config_alone(finished: tuple[Path, Path]) -> None:
    """Item 3: a run that fails its checks (a data root that does not exist) writes nothing, config.yaml included."""
    config, run = finished
    before = tree_digest(run)
    code, _, err = run_cli("train", str(config), "data.root=/nonexistent", "--no-progress", "--device", "cpu")
    assert code == 1 and "/nonexistent" in err and no_traceback(err)
    assert tree_digest(run) == before


def test_outputs_have_normal_permissions(finished: tuple[Path, Path]) -> None:
    """Item 11: files 0644 and folders 0755 under umask 022, as ``open`` and ``mkdir`` make them."""
    _, run = finished
    paths = [run / "config.yaml", run / "metrics.jsonl", run / "predictions" / "val_predictions.jsonl"]
    for name in ("last", "best"):
        paths += sorted((run / "checkpoints" / name).iterdir())
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    for d in (run / "checkpoints" / "last", run / "checkpoints" / "best", run / "predictions"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, d


def test_overwrite_replaces_the_previous_run(sim_root: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", sim_root, tmp_path / "runs", *FAST, "train.max_steps=2")
    assert run_cli("train", str(config), "--no-progress", "--device", "cpu")[0] == 0
    code, _, err = run_cli("train", str(config), "train.max_steps=1", "--overwrite", "--no-progress", "--device", "cpu")
    assert code == 0, err
    run = tmp_path / "runs" / "tiny"
    assert [r["step"] for r in metric_rows(run) if "lr" in r] == [1]  # the old rows are gone, not appended to
    assert read_checkpoint_info(run / "checkpoints" / "last")[2].step == 1
    assert not (run / "train.lock").exists()


def test_every_bad_file_of_both_splits_is_listed_before_anything_is_written(sim_root: Path, tmp_path: Path) -> None:
    """Item 1: a NaN in a val frame file, random bytes in a train transcript embedding and a missing transcript, all
    named in one message; the run folder is never created."""
    root = tmp_path / "root"
    shutil.copytree(sim_root, root)
    train_video = A.load_split(root, "train")[0].video_id
    val_video = A.load_split(root, "val")[0].video_id
    frames = root / "eva_clip_features" / f"{val_video}.mp4.pt"
    tensor = torch.load(frames)
    tensor[-1, 3] = float("nan")
    torch.save(tensor, frames)
    embeddings = root / "ASR_feats_all-MiniLM-L6-v2" / f"{train_video}.pt"
    embeddings.write_bytes(bytes(range(7, 250)) * 3)
    missing = [p for p in sorted((root / "ASR").iterdir()) if p.stem not in (train_video, val_video)][0]
    missing.unlink()
    config = write_config(tmp_path / "tiny.yaml", root, tmp_path / "runs")
    code, _, err = run_cli("train", str(config), "--no-progress", "--device", "cpu")
    assert code == 1 and no_traceback(err)
    assert "3 bad feature file(s)" in err and "nothing was written" in err
    assert f"{frames}: visual features contains NaN/Inf" in err
    assert f"{embeddings}: cannot be read as a transcript embedding file: not a torch.save file" in err
    assert str(missing) in err
    assert not (tmp_path / "runs").exists()


def test_default_config_says_which_config_to_use(sim_root: Path, tmp_path: Path) -> None:
    """Item 13: an empty YAML (the paper's 1024-d queries) on HiREST-sim (384-d MiniLM queries)."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, _, err = run_cli(
        "train", str(empty), f"data.root={sim_root}", f"output_dir={tmp_path / 'runs'}", "--device", "cpu"
    )
    assert code == 1 and no_traceback(err)
    assert "model.query_dim=1024 but the features have 384" in err and "quag train configs/sim_quag_cpu.yaml" in err
    assert not (tmp_path / "runs").exists()


def test_a_held_run_folder_names_its_holder(sim_root: Path, tmp_path: Path) -> None:
    from quag.training.run_folder import RunLock

    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    lock = RunLock.acquire(run)
    try:
        config = write_config(tmp_path / "tiny.yaml", sim_root, tmp_path / "runs", *FAST, "train.max_steps=1")
        code, _, err = run_cli("train", str(config), "--no-progress", "--device", "cpu")
        assert code == 1 and "is in use by another training" in err and f"pid {os.getpid()}" in err
        assert sorted(p.name for p in run.iterdir()) == ["train.lock"]  # nothing else was written
    finally:
        lock.release()
    assert not (run / "train.lock").exists()
    assert run_cli("train", str(config), "--no-progress", "--device", "cpu")[0] == 0  # free again


def test_killed_save_and_log_rows_are_tidied_on_resume(
    sim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 4: the run dies after logging step 3 (its last checkpoint is step 2) with a half-written checkpoint
    folder beside ``last``; the resume removes the folder, logs every step once and ends bit-identical. Then a run
    killed in its final validation: the resume validates again."""
    extra = (*FAST, "train.max_steps=6", "train.save_every=2")
    full = train(tiny_experiment(sim_root, tmp_path / "a", *extra), device="cpu", progress=False)
    log = TrainRecipe._log

    def killed_after_step_3(self: TrainRecipe, record: dict) -> None:
        log(self, record)
        if record.get("step") == 3 and "lr" in record:
            debris = self.run_dir / "checkpoints" / ".last.k1ll3d"
            debris.mkdir()
            (debris / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainRecipe, "_log", killed_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_experiment(sim_root, tmp_path / "b", *extra), device="cpu", progress=False)
    monkeypatch.undo()
    run_b = tmp_path / "b" / "tiny"
    assert (run_b / "checkpoints" / ".last.k1ll3d").is_dir() and not (run_b / "train.lock").exists()
    train(tiny_experiment(sim_root, tmp_path / "b", *extra), resume=run_b / "checkpoints" / "last", device="cpu")
    assert sorted(p.name for p in (run_b / "checkpoints").iterdir()) == ["best", "last"]
    assert metric_rows(run_b) == metric_rows(full.run_dir)
    for name in ("last", "best"):
        file = Path("checkpoints") / name / "model.safetensors"
        assert digest(run_b / file) == digest(full.run_dir / file)

    # killed during the final validation: the resume runs it again instead of ending without it
    validate = TrainRecipe.validate

    def killed_in_validation(self: TrainRecipe) -> tuple:
        raise KeyboardInterrupt

    monkeypatch.setattr(TrainRecipe, "validate", killed_in_validation)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_experiment(sim_root, tmp_path / "c", *extra), device="cpu", progress=False)
    monkeypatch.setattr(TrainRecipe, "validate", validate)
    run_c = tmp_path / "c" / "tiny"
    train(tiny_experiment(sim_root, tmp_path / "c", *extra), resume=run_c / "checkpoints" / "last", device="cpu")
    assert metric_rows(run_c) == metric_rows(full.run_dir)
    assert digest(run_c / "checkpoints/best/model.safetensors") == digest(
        full.run_dir / "checkpoints/best/model.safetensors"
    )


def test_a_checkpoint_parked_by_a_killed_save_is_restored(tmp_path: Path) -> None:
    from quag.checkpoint import recover_checkpoints

    folder = tmp_path / "checkpoints"
    (folder / ".last.old").mkdir(parents=True)
    (folder / ".last.old" / "model.safetensors").write_bytes(b"previous")
    (folder / ".last.x7tmp").mkdir()
    (folder / "best").mkdir()
    lines = recover_checkpoints(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["best", "last"]
    assert (folder / "last" / "model.safetensors").read_bytes() == b"previous" and len(lines) == 2


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(
    sim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 5: ENOSPC while writing step 4's weights (simulated: ``write`` fails as on a full disk)."""
    import safetensors.torch

    real = safetensors.torch.save_model
    calls = {"n": 0}

    def full_disk(model: torch.nn.Module, filename: str, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            Path(filename).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(model, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_model", full_disk)
    config = write_config(tmp_path / "tiny.yaml", sim_root, tmp_path / "runs", *FAST, "train.max_steps=6")
    code, _, err = run_cli("train", str(config), "train.save_every=2", "--no-progress", "--device", "cpu")
    run = tmp_path / "runs" / "tiny"
    assert code == 1 and no_traceback(err) and len(err.strip().splitlines()) == 1
    assert f"{run / 'checkpoints' / 'last' / 'model.safetensors'}: no space left on the device" in err
    assert read_checkpoint_info(run / "checkpoints" / "last")[2].step == 2  # the previous checkpoint, whole
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last"]
    assert not (run / "train.lock").exists()


def test_a_failing_log_file_is_reported_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from quag.training.run_folder import RunLogHandler

    handler = RunLogHandler(tmp_path / "train.log")
    logger = logging.getLogger("quag.test_log")
    logging.getLogger("quag").addHandler(handler)
    try:
        handler.stream.close()  # every later write fails, as on a full disk
        logger.warning("one")
        logger.warning("two")
    finally:
        logging.getLogger("quag").removeHandler(handler)
    err = capsys.readouterr().err
    assert err.count(f"quag: cannot write {tmp_path / 'train.log'}") == 1 and no_traceback(err)
