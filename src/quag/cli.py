"""``quag`` command line. Each subcommand lives in ``quag/commands/<name>.py`` and is imported only when run.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int``; its work is one library call.
``main(argv)`` returns the exit status, so tests call it in-process.

Help texts: every option has one, and :class:`HelpFormatter` prints an option's default once, as
``(default: X)``. An option whose default is ``None`` (or a flag) shows nothing, unless its help ends with its own
``(default: ...)`` saying what happens when it is omitted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quag",
        description="QUAG and the HiREST Joint baseline: moment retrieval, segmentation, step captioning, TVSum.",
    )
    parser.add_argument("--version", action="version", version=f"quag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    # Split "quag [-v] COMMAND args..." by hand so each command owns its own parser (imported lazily).
    idx = next((i for i, a in enumerate(argv) if a in COMMANDS), None)
    if idx is None:
        top.parse_args(argv)  # handles --help / --version / unknown commands
        top.print_help()
        return 2
    top_args = top.parse_args(argv[:idx])
    logging.basicConfig(
        level=logging.DEBUG if top_args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    parser, module = command_parser(argv[idx])
    args = parser.parse_intermixed_args(argv[idx + 1 :])  # key=value overrides may follow options
    try:
        return int(module.run(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        if top_args.verbose:
            raise
        print(f"quag {argv[idx]}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
