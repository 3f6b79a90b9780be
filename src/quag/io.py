"""Atomic file output: every file this package writes appears whole or not at all.

Writers go to a temporary file in the destination folder, fsync it and ``os.replace`` it over the target, so
an interrupted run never leaves a truncated JSON, SRT or tensor behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write(path: str | Path, write: Callable[[IO[Any]], object], mode: str = "w") -> Path:
    """Open a temporary file in ``mode``, let ``write`` fill it, then move it into place."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as f:
        write(f)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write(path, lambda f: json.dump(obj, f, indent=indent, ensure_ascii=False))


def atomic_write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    def write(f: IO[str]) -> None:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    return atomic_write(path, write)


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save`` atomically; the bytes do not depend on the file name (same object -> same file)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write(path, lambda f: f.write(buf.getvalue()), mode="wb")
