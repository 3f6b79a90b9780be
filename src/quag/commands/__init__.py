"""One module per ``quag`` subcommand: ``add_arguments(parser)`` and ``run(args) -> int`` (see ``quag.cli``)."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse._ActionsContainer, what: str) -> None:
    """``--device``, the same in every command; ``auto`` is resolved by :func:`quag.inference.device.resolve_device`."""
    parser.add_argument(
        "--device", default="auto", help=f"{what}: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N"
    )
