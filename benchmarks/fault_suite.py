"""The fault-injection suite, long version (``pytest -m faults`` is the short one): kills, full disks, damaged files of
every kind the project reads, two trainings into one folder. Not collected by pytest.

Run from the repository root::

    .venv/bin/python benchmarks/fault_suite.py [--kills 20] [--seed 0] [--json results.json] [--write-doc]

Every command runs as its own process (``python -m quag ...``), as a user would run it. Each case checks: a clear
message (the file named, a fix given), the exit status (1; 2 for a bad argument; 130 Ctrl-C; 143 SIGTERM), no raw
traceback, nothing that existed before lost or half-written, and, for kills, that resuming ends bit-identical to the
uninterrupted run (weights of ``last`` and ``best``, ``metrics.jsonl`` without its clock, predictions; extraction:
every output file).

* **Kills.** ``--kills`` times, a training (and, as many times, an extraction) is killed at a random moment, SIGKILL
  or SIGTERM drawn at random, then started again (``--resume .../last`` when there is one, ``--overwrite`` when the
  folder holds no checkpoint yet); once it finishes, the run is compared with the uninterrupted one.
* **Full disk.** A small tmpfs is mounted (``mount -t tmpfs``, needs root) for checkpoint, prediction, report and
  extraction writes. Where mounting is not allowed, the writes are made to fail with ENOSPC from inside the process
  instead (``open`` and ``safetensors`` patched), and the output says "simulated".
* **Damaged inputs**, one case per kind of file and argument, each with the exact message printed; ``--write-doc``
  puts that table into ``docs/reliability.md`` between its ``fault-suite`` markers.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fault_cases import damaged_input_cases, full_disk_cases
from fault_workspace import REPO, Case, Workspace, finished_outputs_whole, quag, run_fingerprint, start, tree

from quag.io import replace_marked_section

MARKER = "fault-suite"
KILL_RUN = ("train.max_steps=24",)
"""The killed training: all three tasks, 16 steps per epoch, so a validation and a best checkpoint at step 16, the
final validation at step 24, checkpoints every 3 steps (``TINY``)."""


# ---------------------------------------------------------------------------------------------------------
# kills


def kill_chains(
    command: Callable[[bool], list[str]],
    check_whole: Callable[[], list[str]],
    fingerprint: Callable[[], Any],
    reference: Any,
    reset: Callable[[], None],
    kills: int,
    window: float,
    rng: random.Random,
) -> dict[str, Any]:
    """Kill a command ``kills`` times at random moments in ``[0, window]`` s, restarting it each time; whenever it
    completes, compare with ``reference`` and start a new chain."""
    stats: dict[str, Any] = {"kills": 0, "sigkill": 0, "sigterm": 0, "chains": 0, "resumes_equal": 0}
    stats.update({"tracebacks": 0, "half_written": [], "bad_exit": [], "unequal": []})
    reset()
    first = True
    while stats["kills"] < kills:
        process = start(*command(first))
        first = False
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        try:
            process.wait(timeout=rng.uniform(0.0, window))
        except subprocess.TimeoutExpired:
            process.send_signal(sig)
        _, err = process.communicate()
        # -15: SIGTERM before quag installed its handler (while Python imports torch); it dies as by SIGKILL
        killed = process.returncode in (-signal.SIGKILL, -signal.SIGTERM, 143)
        if "Traceback (most recent call last)" in err:
            stats["tracebacks"] += 1
        if killed:
            stats["kills"] += 1
            stats["sigkill" if process.returncode == -signal.SIGKILL else "sigterm"] += 1
            said = [ln for ln in err.splitlines() if ln.startswith("quag ")]
            if process.returncode == 143 and not any("error: stopped by SIGTERM" in ln for ln in said):
                stats["bad_exit"].append(f"exit 143 without its line: {err.strip()[-300:]}")
        elif process.returncode != 0:
            stats["bad_exit"].append(f"exit {process.returncode}: {err.strip()[-300:]}")
        stats["half_written"] += check_whole()
        if process.returncode == 0 or (killed and stats["kills"] == kills):
            finish = quag(*command(False))  # let the chain end (a resume, or nothing left to do)
            if finish.code != 0:
                stats["bad_exit"].append(f"final run exit {finish.code}: {finish.err.strip()[-300:]}")
            stats["chains"] += 1
            if fingerprint() == reference:
                stats["resumes_equal"] += 1
            else:
                stats["unequal"].append(stats["chains"])
            reset()
            first = True
    return stats


def training_kills(ws: Workspace, kills: int, rng: random.Random) -> dict[str, Any]:
    config = ws.config("kill-ref", *KILL_RUN)
    ref = quag("train", str(config), "--no-progress", "--device", "cpu")
    assert ref.code == 0, ref.err
    reference = run_fingerprint(ws.run_dir("kill-ref"))
    config = ws.config("kill", *KILL_RUN)
    run = ws.run_dir("kill")

    def command(first: bool) -> list[str]:
        args = ["train", str(config), "--no-progress", "--device", "cpu"]
        if (run / "checkpoints" / "last" / "model.safetensors").is_file():
            return [*args, "--resume", str(run / "checkpoints" / "last")]
        return args if first else [*args, "--overwrite"]

    def reset() -> None:
        shutil.rmtree(run.parent, ignore_errors=True)

    stats = kill_chains(
        command,
        lambda: finished_outputs_whole(run),
        lambda: run_fingerprint(run),
        reference,
        reset,
        kills,
        ref.seconds * 1.1,
        rng,
    )
    stats["uninterrupted_seconds"] = round(ref.seconds, 1)
    return stats


def extraction_kills(ws: Workspace, kills: int, rng: random.Random) -> dict[str, Any]:
    videos, eva = ws.videos(), ws.eva_checkpoint()
    common = ["--eva-clip-checkpoint", str(eva), "--no-audio", "empty", "--no-progress", "--device", "cpu"]
    ref_out = ws.base / "extract-ref"
    ref = quag("extract", str(videos), str(ref_out), *common)
    assert ref.code == 0, ref.err
    reference = tree(ref_out)
    out = ws.base / "extract-kill"

    def whole() -> list[str]:
        import torch

        bad = []
        for p in sorted(out.rglob("*.pt")) if out.is_dir() else []:
            if not p.name.startswith("."):
                try:
                    torch.load(p, weights_only=True)
                except Exception as e:
                    bad.append(f"{p}: {type(e).__name__}")
        return bad

    stats = kill_chains(
        lambda first: ["extract", str(videos), str(out), *common],
        whole,
        lambda: tree(out),
        reference,
        lambda: shutil.rmtree(out, ignore_errors=True),
        kills,
        ref.seconds * 1.1,
        rng,
    )
    stats["uninterrupted_seconds"] = round(ref.seconds, 1)
    return stats


# ---------------------------------------------------------------------------------------------------------
# report


def markdown(cases: list[Case], kills: dict[str, Any], disk_mode: str, command: str) -> str:
    lines = [
        f"Made by `{command}` ({time.strftime('%Y-%m-%d')}); the full disk: {disk_mode}.",
        "",
        "| kills | SIGKILL | SIGTERM | runs completed | resumes bit-identical | raw tracebacks | half-written | "
        "wrong exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in kills.items():
        lines.append(
            f"| {name}: {s['kills']} | {s['sigkill']} | {s['sigterm']} | {s['chains']} | "
            f"{s['resumes_equal']} of {s['chains']} | {s['tracebacks']} | {len(s['half_written'])} | "
            f"{len(s['bad_exit'])} |"
        )
    lines += ["", "| # | fault | exit | message printed | as expected |", "|---:|---|---:|---|---|"]
    for i, c in enumerate(cases, 1):
        msg = "`<br>`".join(part.replace("|", "\\|") for part in c.message.splitlines())
        verdict = "yes" if c.ok else f"**no** (traceback: {c.traceback}, unchanged: {c.unchanged})"
        lines.append(f"| {i} | {c.fault} | {c.code} | `{msg}` | {verdict} |")
    ok = sum(c.ok for c in cases)
    lines += ["", f"{ok} of {len(cases)} cases as expected; {sum(c.traceback for c in cases)} raw tracebacks."]
    return "\n".join(lines)


def write_doc(path: Path, table: str) -> None:
    replace_marked_section(path, MARKER, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills of a training, and as many of an extraction")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and signals")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--json", type=Path, default=None, help="also write every result here")
    parser.add_argument("--write-doc", action="store_true", help="put the table into docs/reliability.md")
    parser.add_argument(
        "--parts", default="inputs,disk,kills", help="comma-separated subset of inputs,disk,kills (all for the doc)"
    )
    args = parser.parse_args()
    shown = [f"--kills {args.kills}", f"--seed {args.seed}"] + (
        [f"--parts {args.parts}"] if "--parts" in sys.argv else []
    )
    command = "python benchmarks/fault_suite.py " + " ".join(shown)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="quag-faults-") as tmp:
        ws = Workspace(args.work or Path(tmp))
        ws.base.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        ws.build()
        parts = set(args.parts.split(","))
        cases: list[Case] = []
        if "inputs" in parts:
            print("damaged inputs ...", flush=True)
            cases += damaged_input_cases(ws)
        disk_mode = "not run"
        if "disk" in parts:
            print("full disks ...", flush=True)
            disk_cases, disk_mode = full_disk_cases(ws)
            cases += disk_cases
        kills: dict[str, dict[str, Any]] = {}
        if "kills" in parts:
            print(f"{args.kills} training kills ...", flush=True)
            kills["training"] = training_kills(ws, args.kills, rng)
            print(f"{args.kills} extraction kills ...", flush=True)
            kills["extraction"] = extraction_kills(ws, args.kills, rng)
        table = markdown(cases, kills, disk_mode, command)
        print(table)
        print(f"suite time: {time.monotonic() - started:.0f} s")
        if args.json:
            args.json.write_text(json.dumps({"cases": [asdict(c) for c in cases], "kills": kills}, indent=2))
        if args.write_doc:
            if parts != {"inputs", "disk", "kills"}:
                raise SystemExit("--write-doc needs every part (the default --parts)")
            write_doc(REPO / "docs" / "reliability.md", table)
        bad = [c for c in cases if not c.ok]
        problems = sum(
            k["tracebacks"] + len(k["half_written"]) + len(k["unequal"]) + len(k["bad_exit"]) for k in kills.values()
        )
        sys.exit(1 if bad or problems else 0)


if __name__ == "__main__":
    main()
