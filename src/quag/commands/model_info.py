"""``quag model-info [CONFIG] [section.key=value ...] [--arch quag|joint]``: parameters per module.

Builds the model on the ``meta`` device (shapes only, instant), prints the unique trainable parameters per
module and, at the paper setting, reconciles the total with the reference's (whose count includes modules it
builds but never uses). Without a config the paper setting (``ModelConfig`` defaults) is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML config (default: the paper setting)")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides applied after the YAML")
    parser.add_argument("--arch", choices=["quag", "joint"], help="override model.arch")


def run(args: argparse.Namespace) -> int:
    from quag.config import load_config
    from quag.models.summary import parameter_report

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).is_file():
        config, overrides = None, [config, *overrides]  # only overrides were given
    cfg = load_config(config, overrides).model
    if args.arch is not None:
        cfg = dataclasses.replace(cfg, arch=args.arch)
    sys.stdout.write(parameter_report(cfg))
    return 0
