"""``quag`` command line. Each subcommand lives in ``quag/commands/<name>.py`` and is imported only when run.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int``; its work is one library call.
``main(argv)`` returns the exit status, so tests call it in-process.

Errors: one handler turns every exception into one line, ``quag COMMAND: error: <what, which file, the fix>``
(plus one indented line per item when a check lists several bad files), exit status 1; ``--debug`` prints the
traceback first. Usage errors exit with 2 (argparse), Ctrl-C with 130 and SIGTERM with 143, each with one line.

Help texts: every option has one, and :class:`HelpFormatter` prints an option's default once, as
``(default: X)``. An option whose default is ``None`` (or a flag) shows nothing, unless its help ends with its own
``(default: ...)`` saying what happens when it is omitted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType

from quag import __version__

# name -> (module under quag.commands, one-line help). Order = order in `quag --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the main job: simulated data -> train QUAG on CPU -> evaluate vs baselines -> HTML report"),
    "make-sim": ("make_sim", "write HiREST-sim, a simulated feature set in the official layout (the default data)"),
    "data-stats": ("data_stats", "example counts per split and task (official filters) and feature checks"),
    "train": ("train", "train QUAG or the Joint baseline (torchrun for several processes)"),
    "infer": ("infer", "decode a checkpoint on a split: moments, segments, captions (official formats + JSONL)"),
    "evaluate": ("evaluate", "score prediction files with the official HiREST metrics"),
    "baselines": ("baselines", "score the trivial baselines (whole video, mean span, uniform steps, caption lookup)"),
    "model-info": ("model_info", "parameters per module for QUAG / Joint at a config"),
    "tvsum": ("tvsum", "query-based video summarization on TVSum (paper Table 5)"),
    "extract": ("extract", "raw videos -> features in the official layout (frames, EVA-CLIP, Whisper, MiniLM)"),
    "encode-queries": ("encode_queries", "precompute the query-embedding file of a dataset root"),
    "predict": ("predict", "one video + a query -> moment, steps and captions (JSON + HTML)"),
    "import-checkpoint": ("import_checkpoint", "the authors' HiREST_BEST.pth / QUAG file -> a quag checkpoint folder"),
    "example": ("example", "the speech-only model on the example videos: prediction + score vs their scripts"),
    "serve": ("serve", "a web page and a JSON API for asking questions of a video (FastAPI, 127.0.0.1)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quag",
        description="QUAG and the HiREST Joint baseline: moment retrieval, segmentation, step captioning, TVSum.",
    )
    parser.add_argument("--version", action="version", version=f"quag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also accepted after the command)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a value to show and the help does not give one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "(default" in text or default is None or default is False or default is argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text  # a required positional has no default
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"  # the help string is %-formatted next


def command_parser(name: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    """The parser of subcommand ``name`` and its module (imported here)."""
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(f"quag.commands.{module_name}")
    parser = argparse.ArgumentParser(prog=f"quag {name}", description=help_text, formatter_class=HelpFormatter)
    module.add_arguments(parser)
    return parser, module


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks run (locks released, temporary files removed).

    A ``BaseException`` like ``KeyboardInterrupt``: code that turns ``Exception`` into a per-item failure (one video
    of a corpus) must not swallow it."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Terminated` (only in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


ERRNO_FIXES: dict[int, str] = {
    errno.ENOSPC: "no space left on the device; free some space or write to another disk",
    errno.EDQUOT: "disk quota exceeded; free some space or write to another disk",
    errno.EACCES: "permission denied; check the permissions or choose another path",
    errno.EPERM: "operation not permitted; check the permissions or choose another path",
    errno.EROFS: "read-only file system; write to another folder",
    errno.ENOENT: "no such file or directory; check the path",
    errno.ENOTDIR: "a part of this path is a file, not a folder; check the path",
    errno.EISDIR: "is a folder where a file is expected; check the path",
    errno.EEXIST: "already exists and is in the way; move it or choose another path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or lower data.num_workers",
    errno.ENOMEM: "out of memory; lower the batch size or data.cache_mb",
}
"""One-line explanation and fix for the ``OSError`` codes a user can act on."""

DECODING_COMMANDS = ("infer", "predict", "serve")
"""Commands that only decode (no training): they keep freed memory for the next call
(:func:`quag.heap.keep_freed_memory`), which spares the page faults of allocating the same shapes again."""

INTERRUPT_HINTS: dict[str, str] = {
    "train": "; every file written so far is complete: continue with --resume <run folder>/checkpoints/last",
    "extract": "; every file written so far is complete: run the same command again to continue",
}


def _where(error: BaseException) -> str:
    """``quag/x.py:12``: the innermost frame of the traceback inside the package (else the innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    package = Path(__file__).resolve().parent
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(package)]
    frame = (ours or frames)[-1]
    path = Path(frame.filename).resolve()
    shown = path.relative_to(package.parent) if path.is_relative_to(package.parent) else path
    return f"{shown}:{frame.lineno}"


def describe_error(error: BaseException) -> str:
    """The message printed for an exception that ends a command: what went wrong, on which file, what to do.

    Our own errors (``ValueError`` and its kin, ``FileNotFoundError`` and ``RuntimeError`` raised with a message)
    already say that and are printed as they are; a system error is explained from its code and file name; anything
    else is a bug or a case we do not know, named with its type and the place it came from.
    """
    if isinstance(error, OSError) and error.errno is not None:  # a system error; ours carry only a message
        fix = ERRNO_FIXES.get(error.errno, error.strerror or str(error))
        names = [str(n) for n in (error.filename, error.filename2) if n is not None]
        return f"{' -> '.join(names)}: {fix}" if names else fix
    if isinstance(error, MemoryError):
        return "out of memory; lower the batch size (train.batch_size, eval.batch_size) or data.cache_mb"
    if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
        return "out of GPU memory; lower train.batch_size / eval.batch_size, or use train.precision=bf16"
    if isinstance(error, ModuleNotFoundError):
        return f"the package {error.name!r} is missing; install quag's extras: pip install -e '.[all]'"
    if isinstance(error, (ValueError, OSError, RuntimeError, NotImplementedError)) and str(error):
        return str(error)
    text = str(error) or "(no message)"
    return f"unexpected {type(error).__name__}: {text} (at {_where(error)}); run with --debug for the traceback"


def _report(command: str, line: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    head, *rest = line.splitlines() or [""]
    print("\n".join([f"quag {command}: error: {head}", *rest]), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``quag [--debug] [-v] COMMAND ...`` and return its exit status.

    0: done; 1: the command failed (one line naming the file and the fix; ``--debug`` adds the traceback); 2: a
    usage error (argparse); 130: interrupted (Ctrl-C); 143: stopped by SIGTERM.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    # Split "quag [-v] COMMAND args..." by hand so each command owns its own parser (imported lazily).
    idx = next((i for i, a in enumerate(argv) if a in COMMANDS), None)
    if idx is None:
        top.parse_args(argv)  # handles --help / --version / unknown commands
        top.print_help()
        return 2
    top_args = top.parse_args(argv[:idx])
    name, rest = argv[idx], argv[idx + 1 :]
    debug = top_args.debug or "--debug" in rest
    rest = [a for a in rest if a != "--debug"]
    # quag's own progress at INFO; other libraries only from WARNING up (torch logs cache statistics at exit)
    logging.basicConfig(
        level=logging.DEBUG if top_args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("quag").setLevel(logging.DEBUG if top_args.verbose else logging.INFO)
    try:
        with sigterm_raises():
            parser, module = command_parser(name)
            args = parser.parse_intermixed_args(rest)  # key=value overrides may follow options; usage errors exit 2
            if name in DECODING_COMMANDS:
                from quag.heap import keep_freed_memory

                logging.getLogger("quag").info(keep_freed_memory())
            return int(module.run(args) or 0)
    except KeyboardInterrupt:
        _report(name, f"interrupted{INTERRUPT_HINTS.get(name, '')}", debug)
        return 130
    except Terminated:
        _report(name, f"stopped by SIGTERM{INTERRUPT_HINTS.get(name, '')}", debug)
        return 143
    except Exception as e:
        _report(name, describe_error(e), debug)
        return 1


if __name__ == "__main__":
    sys.exit(main())
