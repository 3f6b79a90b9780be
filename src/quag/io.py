"""Atomic file output: every file this package writes appears whole or not at all.

Writers go to a temporary file in the destination folder, fsync it and ``os.replace`` it over the target, so
an interrupted run never leaves a truncated JSON, SRT or tensor behind. The file gets the permissions a plain
``open(path, "w")`` would give it (``0o666`` less the umask), or keeps those of the file it replaces; a failed
write (a full disk, say) raises an ``OSError`` that names the file and leaves the old one untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@functools.cache
def linux_libc() -> ctypes.CDLL | None:
    """The C library on Linux, loaded with ``use_errno`` (``ctypes.get_errno`` reads its errors); None elsewhere or
    when it cannot be found. For the calls Python does not wrap: ``renameat2`` (checkpoints), ``malloc_trim`` and
    ``mallopt`` (:mod:`quag.heap`)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows (else set and restored at once)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Permission bits of a file made by ``open(path, "w")``: ``0o666`` less the umask (``mkstemp`` gives 0600)."""
    return 0o666 & ~current_umask()


def file_mode(path: str | Path) -> int:
    """Permission bits for a new version of ``path``: those of the existing file, else :func:`new_file_mode`."""
    with contextlib.suppress(OSError):
        return os.stat(path).st_mode & 0o777
    return new_file_mode()


def folder_mode() -> int:
    """Permission bits of a folder made by ``mkdir``: ``0o777`` less the umask (``mkdtemp`` gives 0700)."""
    return 0o777 & ~current_umask()


def named_os_error(e: OSError, path: str | Path) -> OSError:
    """``e`` with ``path`` as its file name when it has none (a failed ``write`` names no file)."""
    if e.filename is not None or e.errno is None:
        return e
    return OSError(e.errno, e.strerror or os.strerror(e.errno), str(path))


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
        os.chmod(tmp_path, file_mode(path))  # mkstemp makes 0600 files
        os.replace(tmp_path, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(e, OSError):
            named = named_os_error(e, path)
            if named is not e:
                raise named from e
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


def json_error_text(e: json.JSONDecodeError) -> str:
    """``"Unterminated string starting at line 1, column 5"``: the decoder's message with its position, read
    once (its own messages such as "... starting at" already end in "at")."""
    msg = e.msg[: -len(" at")] if e.msg.endswith(" at") else e.msg
    return f"{msg} at line {e.lineno}, column {e.colno}"


def prepare_output_folder(folder: str | Path, what: str) -> Path:
    """Create ``folder`` (and its parents) and check that a file can be written in it, before any work starts.

    Args:
        folder: the folder an output will go to.
        what: how the user named it, for the message (e.g. ``--out predictions/x.json``).

    Raises:
        ValueError: the folder cannot be created or written; the message names it, the reason and the fix.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".quag-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        where = e.filename or folder
        raise ValueError(
            f"{what}: cannot write in {folder} ({e.strerror or e}: {where}); choose a folder you can create and "
            "write to"
        ) from None
    return folder


def marked_section(path: str | Path, marker: str) -> tuple[str, int, int]:
    """The text of ``path`` and the offsets of its ``<!-- marker:start -->`` / ``<!-- marker:end -->`` lines; call it
    before long work whose result :func:`replace_marked_section` will write, so a missing marker fails first.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    path = Path(path)
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = path.read_text()
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{path}: needs the lines {start} and {end} (in that order) around the generated section")
    return text, i + len(start), j


def replace_marked_section(path: str | Path, marker: str, body: str) -> Path:
    """Replace the text between the lines ``<!-- marker:start -->`` and ``<!-- marker:end -->`` of ``path``
    (atomically): how the demo and the benchmarks regenerate their tables in the README and the docs.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    text, i, j = marked_section(path, marker)
    return atomic_write_text(path, text[:i] + "\n" + body.strip("\n") + "\n" + text[j:])
