"""Helpers of the reliability tests: tiny runs on the sim fixture, the CLI in-process, files compared byte for byte."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

from quag.cli import main
from quag.config import apply_overrides
from tests.training.helpers import TINY

FAST = ["train.tasks=[moment_retrieval]", "train.eval_every_epochs=99"]
"""Moment retrieval only (no caption decoding) and one validation, at the end: a run of a few seconds."""


def write_config(path: Path, root: Path, out: Path, *extra: str) -> Path:
    """A YAML config of the tiny model on ``root`` with ``section.key=value`` overrides written in."""
    import yaml

    data = apply_overrides({"name": "tiny", "output_dir": str(out)}, [f"data.root={root}", *TINY, *extra])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    """``quag ARGS`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse usage errors
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``root``."""
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


def metric_rows(run: Path) -> list[dict[str, object]]:
    """``metrics.jsonl`` rows without their wall-clock ``time`` field."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def no_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" not in text
