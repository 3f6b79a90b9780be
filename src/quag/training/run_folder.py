"""The run folder ``runs/<name>/`` of a training: one writer at a time, no silent reuse, a log that fits the resume.

* **Lock.** ``train.lock`` is held (``flock``) for the whole run and names its holder: pid, host, user, start time
  and command. A second training into the same folder stops at once with that holder in its message. The kernel
  drops the lock when the holder dies, however it dies, so a stale file never blocks anyone.
* **Reuse.** A folder that holds a previous run's outputs (a checkpoint, metrics rows, predictions) is used again
  only with ``--resume`` (continue it) or ``--overwrite`` (start over: the old outputs are removed once the new run
  has passed every check).
* **Resume.** ``metrics.jsonl`` is cut back to the rows that existed when the resumed checkpoint was saved, so a
  run killed after its last checkpoint and resumed logs every step once.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import json
import logging
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from quag.io import atomic_write_text

LOCK = "train.lock"
METRICS = "metrics.jsonl"
OUTPUTS: tuple[str, ...] = (
    "checkpoints",
    "predictions",
    METRICS,
    "train.log",
    "config.yaml",
    "feature_report.json",
)
"""What a training writes into its run folder (``--overwrite`` removes exactly these)."""


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked; the message names it and the options that would work."""


def holder_info() -> dict[str, Any]:
    """Who is running: what the lock file records."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": user,
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([command_name(), *sys.argv[1:]]),
    }


def command_name() -> str:
    """How this process was started: ``quag``, ``python -m quag`` (whose ``argv[0]`` is ``.../__main__.py``), or the
    script's file name."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return "python -m quag" if name == "__main__.py" else name


def describe_holder(text: str) -> str:
    """The lock file's content in words (``pid 123 on host x, user u, since ...: quag train ...``)."""
    try:
        info = json.loads(text)
        return (
            f"pid {info['pid']} on host {info['host']}, user {info['user']}, since {info['started']}: {info['command']}"
        )
    except (json.JSONDecodeError, KeyError, TypeError):
        return "a process that has not written its name yet"


@dataclass
class RunLock:
    """The held lock of one run folder (release it with :meth:`release`; closing the file releases it too)."""

    path: Path
    file: IO[str] | None

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """Take ``run_dir/train.lock`` or raise naming the process that holds it.

        Raises:
            RunFolderError: another process holds the lock.
        """
        try:
            import fcntl
        except ImportError:  # no flock (Windows): run unlocked
            return cls(run_dir / LOCK, None)
        path = run_dir / LOCK
        while True:
            f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the whole run)
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = describe_holder(f.read())
                f.close()
                raise RunFolderError(
                    f"{run_dir} is in use by another training ({holder}; lock file {path}). Wait for it to finish or "
                    "stop it, or train into another folder (name=... or output_dir=...)."
                ) from None
            try:  # the previous holder may have removed the file between our open and our lock
                same = os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        f.seek(0)
        f.truncate()
        f.write(json.dumps(holder_info()) + "\n")
        f.flush()
        return cls(path, f)

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self.file is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.file.close()
        self.file = None


def previous_outputs(run_dir: Path) -> list[str]:
    """What in ``run_dir`` shows an earlier run: checkpoints, metrics rows, predictions (empty: a fresh folder)."""
    found: list[str] = []
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir():
        found += [f"checkpoints/{p.name}" for p in sorted(checkpoints.iterdir()) if not p.name.startswith(".")]
    metrics = run_dir / METRICS
    if metrics.is_file() and metrics.stat().st_size > 0:
        found.append(METRICS)
    predictions = run_dir / "predictions"
    if predictions.is_dir() and any(predictions.iterdir()):
        found.append("predictions/")
    return found


def is_inside(path: Path, folder: Path) -> bool:
    """True when ``path`` lies in ``folder`` (both resolved)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_reuse(run_dir: Path, resume: Path | None, overwrite: bool) -> list[str]:
    """Refuse to reuse a run folder unless asked to; returns the previous outputs found.

    Raises:
        RunFolderError: the folder holds a previous run and neither ``--resume`` (from inside it) nor
            ``--overwrite`` was given, or both were given for the same folder.
    """
    found = previous_outputs(run_dir)
    resumes_here = resume is not None and is_inside(resume, run_dir)
    if overwrite and resumes_here:
        raise RunFolderError(
            f"--overwrite would delete {resume}, the checkpoint --resume continues from; give only one of them"
        )
    if found and not overwrite and not resumes_here:
        listed = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        last = run_dir / "checkpoints" / "last"
        if (last / "model.safetensors").is_file():
            options = f"Pass --resume {last} to continue it, --overwrite to replace it"
        else:
            options = "It has no checkpoint to resume: pass --overwrite to start over"
        raise RunFolderError(
            f"{run_dir} already holds a run ({listed}); nothing was changed. {options}, or name=... for a new run "
            "folder."
        )
    return found


def clear_outputs(run_dir: Path) -> list[str]:
    """Remove what a training wrote into ``run_dir`` (:data:`OUTPUTS`); returns the names removed."""
    removed = []
    for name in OUTPUTS:
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


def read_metrics(path: Path) -> list[str]:
    """The complete rows of ``metrics.jsonl`` (a line cut short by a crash is left out)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            json.loads(line)
        except json.JSONDecodeError:
            continue
        rows.append(line)
    return rows


def rewind_metrics(path: Path, rows: int | None, step: int) -> tuple[int, int]:
    """Cut ``metrics.jsonl`` back to a checkpoint: its first ``rows`` rows, or (a checkpoint that did not count
    them) the rows up to ``step``. Returns (rows kept, rows dropped); the file is rewritten atomically."""
    if not path.is_file():
        return 0, 0
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    complete = read_metrics(path)
    if rows is not None:
        keep = complete[:rows]
    else:
        keep = [line for line in complete if json.loads(line).get("step", 0) <= step]
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in keep))
    return len(keep), len(lines) - len(keep)


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append one row to ``metrics.jsonl`` (one ``write``); a failed write raises an ``OSError`` naming the file."""
    line = json.dumps(record) + "\n"
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


class RunLogHandler(logging.FileHandler):
    """``train.log``: a write that fails (a full disk) says so once on stderr and stops logging to the file, where
    logging's default prints a traceback for every record."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or error
        print(f"quag: cannot write {self.baseFilename} ({reason}); logging to the console only", file=sys.stderr)
        logging.getLogger("quag").removeHandler(self)
        with contextlib.suppress(OSError, ValueError):  # flushing the failed stream fails again
            self.close()
