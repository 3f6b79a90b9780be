"""The CLI's one error handler: every exception is one line naming the file and the fix, with the right exit status."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from quag.cli import main
from quag.evaluation.predictions import PredictionError, load_predictions
from quag.io import atomic_write_json
from tests.reliability.helpers import no_traceback, run_cli

pytestmark = pytest.mark.faults


def fake_command(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make ``quag model-info`` raise ``error`` from inside its work."""

    def run(args: object) -> int:
        raise error

    import quag.commands.model_info as module

    monkeypatch.setattr(module, "run", run)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KeyError("visual"), "unexpected KeyError: 'visual' (at "),
        (OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.jsonl"), "/runs/x/metrics.jsonl: no space"),
        (OSError(errno.EACCES, "Permission denied", "/data/r.json"), "/data/r.json: permission denied"),
        (MemoryError(), "out of memory"),
        (ValueError("model.hidden_dim must be a positive number"), "model.hidden_dim must be a positive number"),
    ],
)
def test_every_exception_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, expected: str
) -> None:
    fake_command(monkeypatch, error)
    code, out, err = run_cli("model-info")
    assert code == 1
    assert err.startswith("quag model-info: error: ") and expected in err
    assert len(err.strip().splitlines()) == 1 and no_traceback(err)


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_command(monkeypatch, KeyError("visual"))
    for args in (["--debug", "model-info"], ["model-info", "--debug"]):
        code, _, err = run_cli(*args)
        assert code == 1 and "Traceback (most recent call last)" in err and "KeyError" in err
        assert err.rstrip().splitlines()[-1].startswith("quag model-info: error: unexpected KeyError")


def test_interrupt_130_sigterm_143_usage_2(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_command(monkeypatch, KeyboardInterrupt())
    code, _, err = run_cli("model-info")
    assert (code, err.strip()) == (130, "quag model-info: error: interrupted")

    def terminated(args: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread: raises inside the command
        raise AssertionError("SIGTERM did not stop the command")

    import quag.commands.model_info as module

    monkeypatch.setattr(module, "run", terminated)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = run_cli("model-info")
    assert code == 143 and err.strip() == "quag model-info: error: stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back afterwards
    code, _, err = run_cli("model-info", "--no-such-option")
    assert code == 2 and "unrecognized arguments" in err


def test_system_errors_name_the_file_and_the_fix() -> None:
    from quag.cli import describe_error

    assert describe_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/y.json")) == (
        "/x/y.json: no such file or directory; check the path"
    )
    line = describe_error(OSError(errno.ENOSPC, "No space left on device", "/r/checkpoints/last/model.safetensors"))
    assert line.startswith("/r/checkpoints/last/model.safetensors: no space left") and "free some space" in line
    assert describe_error(FileNotFoundError("config file c.yaml not found")) == "config file c.yaml not found"


def test_a_full_disk_names_the_file_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC during an atomic write: the error names the target, and the previous file is untouched."""
    target = tmp_path / "report.json"
    atomic_write_json(target, {"old": True})

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")  # what write() raises: no file name

    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(OSError) as info:
        atomic_write_json(target, {"new": True})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_out_in_a_folder_that_cannot_exist(tmp_path: Path) -> None:
    """Item 14: ``--out`` under a file (or /proc) is refused before any work, naming the option and the folder."""
    pred = tmp_path / "pred.json"
    pred.write_text("{}")
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    outs = [blocker / "r.json"] + ([Path("/proc/nope/r.json")] if Path("/proc/self").is_dir() else [])
    for out in outs:
        code, _, err = run_cli("evaluate", "--task", "moment_retrieval", str(pred), str(pred), "--out", str(out))
        assert code == 1 and no_traceback(err)
        assert f"--out {out}: cannot write in {out.parent}" in err and "choose a folder" in err


def test_broken_json_is_described_once(tmp_path: Path) -> None:
    """Item 14: the decoder's "starting at" is not followed by a second "at"."""
    bad = tmp_path / "pred.json"
    bad.write_text('{"query": {"video.mp4": {"bounds": [1, 2]}, "x": "unterminated')
    with pytest.raises(PredictionError) as info:
        load_predictions(bad, "moment_retrieval")
    assert "at at" not in str(info.value)
    assert "Unterminated string starting at line 1, column" in str(info.value)


def test_main_returns_instead_of_raising(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Item 5: before, only FileNotFoundError/ValueError/RuntimeError were caught; a KeyError escaped as a traceback."""
    fake_command(monkeypatch, KeyError("x"))
    assert main(["model-info"]) == 1
    assert no_traceback(capsys.readouterr().err)
    fake_command(monkeypatch, TypeError("bad"))  # any type at all
    assert main(["model-info"]) == 1
