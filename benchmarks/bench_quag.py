"""QUAG at the paper setting on HiREST shapes: training and inference time, FLOPs, peak memory (CPU or CUDA).

    python benchmarks/bench_quag.py                 # full run (~18 min on a 2-core CPU)
    python benchmarks/bench_quag.py --quick         # fewer repeats, no 48-step naive captioning
    python benchmarks/bench_quag.py --device cuda   # the same on a GPU

Shapes: batch 5, 280 one-second frames (1024-d EVA-CLIP, 384-d MiniLM, 1024-d query), 20-frame caption windows,
captions of 10 words padded to 48 tokens, 3 beams; random weights (seed 0). Every ratio is measured in this run:

* training: the ``reference`` path (the model and loss as the authors' code runs them, ``configs/reference_quag.yaml``:
  no padding masks, [PAD] targets in the caption loss, so captions are computed at all 48 positions; fp32) against
  quag's defaults in fp32 and under bf16 autocast (captions cut to their longest, ``trim_caption_padding``); every
  round times each path of each task once, so all training rows share the machine's state;
* inference: naive paths (the whole model in every segmentation round, beam search without the key/value cache)
  against the cached ones, fp32 against bf16; naive and cached outputs are compared (they must be identical). On
  the CPU they run with freed memory kept for reuse, as ``quag infer`` / ``predict`` / ``serve`` do
  (:func:`quag.heap.keep_freed_memory`); the training rows before them run with glibc's default, as the trainer.
  What the policy saves is measured alone: retrieval inference in fresh processes, with and without it,
  alternating (``--heap-child``).

The segmentation row "early stop" costs as many rounds as a trained model needs per video with sequential decoding
(``--ms-rounds``, by default read from ``benchmarks/results/bench_decode.json``). The authors' own code cannot run
here; its figures, measured beside quag on this machine kind at another sitting, are printed in a separate table as
external figures, with that sitting's conditions (``EXTERNAL``), scaled by how fast this machine runs quag's code of
that sitting (``SITTING_COMMIT``, from the git history) today against then: its training steps join the rounds
from a child process (``benchmarks/sitting_steps.py``). A checkout without that commit prints them unscaled.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from quag.config import EvalConfig, ModelConfig
from quag.data.collate import Batch, trim_caption_padding
from quag.data.tokenizer import SEP_ID
from quag.heap import keep_freed_memory, trim_heap
from quag.inference.runner import decode_front, predict_moments
from quag.inference.segmentation import decode_islands, decode_islands_naive
from quag.io import atomic_write_json, atomic_write_text, replace_marked_section
from quag.models import HiRESTModel, build_model
from quag.models.generation import generate_beam
from quag.models.layers import plain_autograd
from quag.models.losses import total_loss
from quag.tasks import TASKS
from quag.training.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).parent))
from probe import gemm_probe  # noqa: E402
from sitting_steps import INFER as INFER_REQUEST  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STATM = Path("/proc/self/statm")
B, T, WINDOW, TOKENS, BEAMS = 5, 280, 20, 48, 3
EXTERNAL = {
    "source": (
        "the authors' QUAG code with precomputed query embeddings beside quag, same shapes and random weights, "
        "measured on this machine kind (2-core AMD EPYC with AVX512-BF16, torch 2.13.0 CPU) in one sitting with "
        "interleaved rounds, recorded before 2026-12-01 (exact day not kept); that sitting's GEMM probe read "
        "5.6-6.8 ms (the probe's shape was not recorded)"
    ),
    "authors_fp32_ms": {
        "train moment_retrieval": 1248,
        "train moment_segmentation": 1271,
        "train step_captioning": 689,
        "infer moment_retrieval": 310,
        "infer segmentation (20 rounds)": 6123,
        "infer captioning (6 steps)": 267,
        "infer captioning (48 steps)": 7033,
    },
    "authors_bf16_autocast_ms": {
        "train moment_retrieval": 686,
        "train moment_segmentation": 689,
        "train step_captioning": 530,
    },
    "authors_peak_gib": 2.16,
    "quag_fp32_ms_then": {
        "train moment_retrieval": 1080,
        "train moment_segmentation": 1073,
        "train step_captioning": 529,
        "infer moment_retrieval": 285,
        "infer segmentation (20 rounds)": 3256,
        "infer captioning (6 steps)": 215,
        "infer captioning (48 steps)": 1548,
    },
    "quag_bf16_ms_then": {
        "train moment_retrieval": 530,
        "train moment_segmentation": 506,
        "train step_captioning": 359,
    },
}
"""External figures (not measured by this script). ``quag_fp32_ms_then`` and ``quag_bf16_ms_then`` are quag at that
sitting; its code (:data:`SITTING_COMMIT`), timed again in this run, says how much faster or slower this machine
runs today (:class:`SittingSteps`)."""


def make_batch(task: str, seed: int = 0, device: str = "cpu") -> Batch:
    g = torch.Generator().manual_seed(seed)
    t = WINDOW if task == "step_captioning" else T
    video = torch.nn.functional.normalize(torch.randn(B, t, 1024, generator=g), dim=-1)
    transcript = torch.nn.functional.normalize(torch.randn(B, t, 384, generator=g), dim=-1)
    transcript[:, ::4] = 0  # silent seconds
    mask = torch.ones(B, t, dtype=torch.bool)
    batch = Batch(
        task=task,
        video=video,
        transcript=transcript,
        query_embedding=torch.randn(B, 1024, generator=g),
        video_mask=mask,
        moment_mask=mask.clone(),
    )
    if task == "moment_retrieval":
        batch.start_target = torch.randint(0, T // 2, (B,), generator=g)
        batch.end_target = batch.start_target + torch.randint(1, T // 2, (B,), generator=g)
    elif task == "moment_segmentation":
        starts = torch.randint(10, 100, (B,), generator=g)
        ends = starts + torch.randint(60, 170, (B,), generator=g)
        idx = torch.arange(T)
        batch.moment_mask = (idx[None] >= starts[:, None]) & (idx[None] <= ends[:, None])
        batch.boundary_mask = idx[None] == starts[:, None]
        batch.segment_target = starts + 15
        batch.moment_frames = torch.stack([starts, ends], dim=1)
    else:
        ids = torch.zeros(B, TOKENS, dtype=torch.long)
        ids[:, 0] = 101
        ids[:, 1:11] = torch.randint(1000, 30000, (B, 10), generator=g)
        targets = torch.zeros_like(ids)
        targets[:, :10] = ids[:, 1:11]
        targets[:, 10] = SEP_ID
        batch.caption_ids, batch.caption_targets, batch.caption_mask = ids, targets, ids != 0
    return batch.to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def elapsed_ms(fn: Callable[[], object], device: str = "cpu") -> float:
    """Wall time of one call of ``fn`` in milliseconds (the device synchronised before and after)."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - t0) * 1000


@dataclass
class TimedPath:
    """One path of a table row: what to run, in how many of the interleaved rounds, after how many warm-ups."""

    fn: Callable[[], object]
    rounds: int
    warmup: int = 1


def interleaved_ms(rows: list[dict[str, TimedPath]], device: str = "cpu") -> list[dict[str, float]]:
    """Median milliseconds of every path of every row (``{path}_ms``), timed in interleaved rounds.

    All paths are warmed up first; then each round runs every row's every path once (a path with fewer
    ``rounds`` drops out after its last one), so that all the rows of a table see the machine in the same state
    and the ratios between them are not a drift of the machine between one row's timing and the next.
    """
    for paths in rows:
        for path in paths.values():
            for _ in range(path.warmup):
                path.fn()
    times: list[dict[str, list[float]]] = [{name: [] for name in paths} for paths in rows]
    for r in range(max(path.rounds for paths in rows for path in paths.values())):
        for paths, row_times in zip(rows, times, strict=True):
            for name, path in paths.items():
                if r < path.rounds:
                    row_times[name].append(elapsed_ms(path.fn, device))
    return [{f"{name}_ms": statistics.median(ts) for name, ts in row_times.items()} for row_times in times]


def paper_model(reference: bool = False, device: str = "cpu") -> HiRESTModel:
    """The paper setting (D 768, 12 heads, 2 layers, query 1024); ``reference``: the authors' unmasked padding."""
    torch.manual_seed(0)
    return build_model(ModelConfig(padding="reference" if reference else "masked")).to(device)


@dataclass
class TrainPath:
    """One way to run a training step: precision, caption trimming and the [PAD]-target caption loss."""

    bf16: bool
    trim: bool = True
    caption_ignore_pad: bool = True
    release_memory: bool = True
    """Trim the heap before backward (``train.release_memory``, the trainer's default on CPU)."""


REFERENCE_PATH = TrainPath(bf16=False, trim=False, caption_ignore_pad=False, release_memory=False)
FP32_PATH = TrainPath(bf16=False)
BF16_PATH = TrainPath(bf16=True)


def train_step_fn(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    batch: Batch,
    path: TrainPath,
    device: str = "cpu",
    phase: Callable[[str], None] | None = None,
) -> Callable[[], float]:
    """One optimiser step as the trainer runs it; returns the loss. ``phase`` (if given) is called with "forward",
    "backward" and "clip + step" as each begins (``--memory-phases``)."""
    if path.trim:
        batch = trim_caption_padding(copy.copy(batch))
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    mark = phase or (lambda _: None)
    release = path.release_memory and device_type == "cpu"

    def step() -> float:
        mark("forward")
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=path.bf16):
            losses = total_loss(batch.task, model(batch), batch, 0.0003, path.caption_ignore_pad)
        mark("backward")
        if release:
            trim_heap()
        losses["loss"].backward()
        mark("clip + step")
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        opt.zero_grad(set_to_none=True)  # free the gradients before the next forward pass (as the trainer)
        return float(losses["loss"].detach())

    return step


def first_loss(model: torch.nn.Module, batch: Batch, path: TrainPath, device: str = "cpu") -> float:
    """The loss of ``batch`` without a step (same weights for every path)."""
    if path.trim:
        batch = trim_caption_padding(copy.copy(batch))
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=path.bf16):
        return float(total_loss(batch.task, model(batch), batch, 0.0003, path.caption_ignore_pad)["loss"])


def training_flops(model: torch.nn.Module, batch: Batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        total_loss(batch.task, model(batch), batch, 0.0003)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


@dataclass(frozen=True)
class MemorySetting:
    """One row of the peak-memory table: precision, ``train.release_memory`` and the autograd functions."""

    label: str
    bf16: bool
    release_memory: bool = True
    plain_autograd: bool = False

    def flags(self) -> list[str]:
        return [
            f
            for f, on in (
                ("--bf16", self.bf16),
                ("--release-memory", self.release_memory),
                ("--plain-autograd", self.plain_autograd),
            )
            if on
        ]


MEMORY_SETTINGS = (
    MemorySetting("fp32", bf16=False),
    MemorySetting("bf16, plain autograd, no release_memory", bf16=True, release_memory=False, plain_autograd=True),
    MemorySetting("bf16, no release_memory", bf16=True, release_memory=False),
    MemorySetting("bf16 (default on this CPU)", bf16=True),
)
"""``plain autograd``: :func:`quag.models.layers.plain_autograd` (what PyTorch saves for backward);
``release_memory``: the heap trimmed before every backward pass (:func:`quag.heap.trim_heap`)."""


def peak_memory_child(steps: int, setting: MemorySetting, device: str) -> None:
    """Run in a fresh process: training steps over the three tasks; prints the peak memory in GiB and ms per step."""
    model = paper_model(device=device).train()
    opt = build_optimizer(model, 1e-5, 0.01)
    path = TrainPath(bf16=setting.bf16, release_memory=setting.release_memory)
    steps_fns = [train_step_fn(model, opt, make_batch(t, device=device), path, device) for t in TASKS]
    sampler = None if device.startswith("cuda") else PrivatePeak()
    with plain_autograd() if setting.plain_autograd else contextlib.nullcontext(), sampler or contextlib.nullcontext():
        steps_fns[0]()  # warm-up, not timed
        sync(device)
        start = time.perf_counter()
        for i in range(1, steps):
            steps_fns[i % 3]()
        sync(device)
    ms = 1000 * (time.perf_counter() - start) / (steps - 1)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else peak_rss_gib()
    private = None if sampler is None else sampler.peak_gib
    print(json.dumps({"peak_gib": peak, "private_peak_gib": private, "ms_per_step": ms}))


def resident_gib(statm: TextIO) -> tuple[float, float]:
    """This process's resident memory and its private part, in GiB, from an open ``/proc/self/statm``.

    statm's third field counts the resident shared pages (files and shared memory), so resident - shared is the
    process's own anonymous memory (``RssAnon`` in ``/proc/self/status``).
    """
    page = os.sysconf("SC_PAGE_SIZE")
    statm.seek(0)
    resident, shared = (int(v) * page / 2**30 for v in statm.read().split()[1:3])
    return resident, resident - shared


class PrivatePeak:
    """The highest private (anonymous) resident memory of this process while the block runs, in GiB.

    ``VmHWM`` counts every resident page, the shared library pages too (``RssFile``, mostly torch's own code).
    How many of those are counted depends on the state of the kernel's page cache, so the same run's ``VmHWM``
    moves with it (docs/benchmarks.md gives a measurement); the private part does not.
    The kernel keeps no peak of it: a thread reads it (:func:`resident_gib`) every 5 ms (None where
    ``/proc/self/statm`` is missing). Inside ``with``, ``peak_gib`` is the peak so far.
    """

    def __init__(self) -> None:
        self.peak_gib: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        if not STATM.is_file():
            return
        with STATM.open() as f:
            while not self._done.is_set():
                self.peak_gib = max(self.peak_gib or 0.0, resident_gib(f)[1])
                time.sleep(0.005)

    def __enter__(self) -> PrivatePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def memory_phases(rounds: int, bf16: bool) -> dict[str, dict[str, tuple[float, float]]]:
    """Where the CPU training peak happens: the highest resident memory (GiB), all of it and its private part (as
    :class:`PrivatePeak`), seen in each phase of each task's step.

    A thread reads both (:func:`resident_gib`) every 0.5 ms while the three tasks step in turn
    (:func:`train_step_fn`), ``rounds`` times; the first round (the optimizer state being created) is left out.
    The phases are the step's: forward + loss, backward, gradient clipping + optimizer step + freeing the
    gradients.
    """
    if not STATM.is_file():
        raise SystemExit("--memory-phases reads /proc/self/statm (Linux only)")
    model = paper_model().train()
    opt = build_optimizer(model, 1e-5, 0.01)
    current: list[str | None] = [None, None]  # (task, phase) being sampled; task None = not sampled
    peaks: dict[str, dict[str, tuple[float, float]]] = {t: {} for t in TASKS}
    done = threading.Event()

    def sample() -> None:
        with STATM.open() as f:
            while not done.is_set():
                resident, private_now = resident_gib(f)
                task, name = current
                if task is not None and name is not None:
                    total, private = peaks[task].get(name, (0.0, 0.0))
                    peaks[task][name] = (max(total, resident), max(private, private_now))
                time.sleep(0.0005)

    def mark(name: str) -> None:
        current[1] = name

    path = TrainPath(bf16=bf16)
    steps = {t: train_step_fn(model, opt, make_batch(t), path, phase=mark) for t in TASKS}
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for r in range(rounds):
        for task in TASKS:
            current[0] = task if r else None  # round 0 creates the optimizer state: not sampled
            steps[task]()
    current[0] = None
    done.set()
    sampler.join()
    return peaks


def peak_rss_gib() -> float:
    """This process's peak resident memory. ``VmHWM`` belongs to the process's own address space; ``ru_maxrss``
    would also carry the parent's peak across fork + exec (Linux keeps it), i.e. this benchmark's."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_child(what: str, args: list[str]) -> dict[str, Any]:
    """This script in a fresh process with ``args`` (one of its ``--*-child`` modes): the JSON of its last line."""
    child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"{what} child failed:\n{child.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def measure_peak_memory(threads: int, setting: MemorySetting, device: str) -> dict[str, float]:
    args = ["--memory-child", "10", "--threads", str(threads), "--device", device, *setting.flags()]
    return run_child("memory", args)


def measure_memory_settings(threads: int, device: str, rounds: int) -> dict[str, dict[str, Any]]:
    """Each setting of :data:`MEMORY_SETTINGS` ``rounds`` times, the settings alternating: the highest peak and
    the median time per step of its runs. Off the CPU ``release_memory`` does nothing (it trims the C heap), so
    settings that differ only by it are run once, under the later label."""
    cuda = device.startswith("cuda")
    effective = {(s.bf16, s.plain_autograd, s.release_memory and not cuda): s for s in MEMORY_SETTINGS}
    settings = list(effective.values())
    runs: dict[str, list[dict[str, float]]] = {s.label: [] for s in settings}
    for _ in range(rounds):
        for s in settings:
            runs[s.label].append(measure_peak_memory(threads, s, device))
    return {
        label: {
            "peak_gib": max(r["peak_gib"] for r in rs),
            "private_peak_gib": highest(r.get("private_peak_gib") for r in rs),
            "ms_per_step": statistics.median(r["ms_per_step"] for r in rs),
            "runs": rs,
        }
        for label, rs in runs.items()
    }


HEAP_POLICIES = ("default", "keep")
"""The rows of the inference heap comparison: glibc's default, and freed memory kept (``keep_freed_memory``)."""


def heap_policy_child(policy: str, calls: int) -> None:
    """Run in a fresh process: bf16 retrieval inference at the bench's shapes, ``calls`` timed calls after 2
    warm-ups, with glibc's default or with freed memory kept; prints the median ms, the minor page faults per
    call and the peak resident memory as JSON."""
    line = keep_freed_memory() if policy == "keep" else "glibc's default"
    model = paper_model().eval()
    batch, cfg = make_batch("moment_retrieval"), EvalConfig()

    def call() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            predict_moments(model, batch, cfg)

    for _ in range(2):
        call()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = [elapsed_ms(call) for _ in range(calls)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    out = {"ms": statistics.median(times), "faults_per_call": faults / calls, "peak_gib": peak_rss_gib()}
    print(json.dumps({**out, "policy": line}))


def measure_heap_policies(threads: int, rounds: int, calls: int) -> dict[str, dict[str, Any]]:
    """:func:`heap_policy_child` for each of :data:`HEAP_POLICIES`, ``rounds`` times, the policies alternating:
    the median of the runs' medians, the median faults per call and the highest peak."""
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in HEAP_POLICIES}
    for _ in range(rounds):
        for policy in HEAP_POLICIES:
            args = ["--heap-child", policy, "--threads", str(threads), "--calls", str(calls)]
            runs[policy].append(run_child("heap", args))
    return {
        policy: {
            "ms": statistics.median(r["ms"] for r in rs),
            "faults_per_call": statistics.median(r["faults_per_call"] for r in rs),
            "peak_gib": max(r["peak_gib"] for r in rs),
            "policy": rs[-1]["policy"],
            "runs": rs,
        }
        for policy, rs in runs.items()
    }


def highest(values: Iterable[float | None]) -> float | None:
    """The largest of the values that are not None (None if there are none)."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def default_ms_rounds() -> tuple[float, str]:
    """Segmentation rounds per video of the trained checkpoint in ``benchmarks/results/bench_decode.json``."""
    path = Path(__file__).parent / "results" / "bench_decode.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run benchmarks/bench_decode.py first, or pass --ms-rounds R")
    data = json.loads(path.read_text())
    row = next(r for r in data["rows"] if r["path"] == "fast, bf16")
    where = f"{data['checkpoint']} on {data['split']} of {data['data_root']}, {path.name}"
    return float(row["ms_rounds_per_video"]), where


def fmt(v: float | None, spec: str = "{:.0f}") -> str:
    return "-" if v is None else spec.format(v)


SITTING_COMMIT = "e3ab42c4cd3fea87fbc69e3b45171a2e2bddb30a"
"""This repository's code at the external sitting: the last commit before 2026-12-01 (the sitting was recorded
before that day). The sitting already had ``train.release_memory``, added by 8868b00 earlier the same day, and the
commits between the two change no training computation."""


class SittingSteps:
    """The training steps of :data:`SITTING_COMMIT`'s own code, run by a child process
    (``benchmarks/sitting_steps.py``) one step per request, so that they join this run's interleaved rounds.

    Its fp32 steps over quag's fp32 times at the sitting (``quag_fp32_ms_then``) say how much slower or faster this
    machine runs today; the same code on both days, so nothing that changed in quag since then moves the factor.
    The child waits on a pipe between requests.
    """

    def __init__(self, source: Path, threads: int) -> None:
        script = Path(__file__).with_name("sitting_steps.py")
        self._proc = subprocess.Popen(
            [sys.executable, str(script), str(source), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    def _expect(self, word: str) -> None:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if line != word:
            self.close()
            raise RuntimeError(f"the sitting's code (commit {SITTING_COMMIT[:7]}) failed: its error is printed above")

    def step_fn(self, task: str, bf16: bool) -> Callable[[], None]:
        """One training step of ``task`` in the child, fp32 or bf16, returning once it is done."""
        return self._request_fn(f"{task} {'bf16' if bf16 else 'fp32'}")

    def infer_fn(self) -> Callable[[], None]:
        """One fp32 moment-retrieval inference call in the child (as the sitting's script timed it)."""
        return self._request_fn(f"{INFER_REQUEST} fp32")

    def _request_fn(self, request: str) -> Callable[[], None]:
        request += "\n"

        def step() -> None:
            assert self._proc.stdin is not None
            self._proc.stdin.write(request)
            self._proc.stdin.flush()
            self._expect("done")

        return step

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        self._proc.wait()


def extract_sitting_code(into: Path, repo: Path = REPO) -> str | None:
    """Write ``src/`` and ``benchmarks/`` of :data:`SITTING_COMMIT` under ``into`` (``git archive``); None when
    done, else why it could not be (no git, or the commit missing from a shallow clone or an exported tree)."""
    try:
        tar = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", SITTING_COMMIT, "src", "benchmarks"],
            capture_output=True,
        )
    except OSError as e:
        return f"git could not run ({e})"
    if tar.returncode:
        reason = tar.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return f"commit {SITTING_COMMIT[:7]} is not in {repo}'s history (git: {reason[0]}); a full clone has it"
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(into, filter="data")
        else:  # Python before 3.10.12 and 3.11.4 has no filters; the archive is this repository's own
            archive.extractall(into)
    return None


def machine_speeds(train_rows: list[dict[str, Any]], then: dict[str, float]) -> dict[str, float]:
    """Per training row whose sitting-code fp32 step was timed: its time today over quag's fp32 time at the sitting
    (runs before the sitting's code was run here timed today's code under that name, see :func:`render`)."""
    return {r["name"]: r["fp32_sitting_ms"] / then[r["name"]] for r in train_rows if "fp32_sitting_ms" in r}


def render(payload: dict[str, Any]) -> str:
    """The printed tables of one run (``payload`` is what the run writes to its JSON)."""
    probe, train_rows, infer_rows = payload["gemm_probe"], payload["train"], payload["infer"]
    memory, ms = payload["peak_training_memory"], payload["ms_rounds"]
    lines = [f"torch {payload['torch']}, {payload['device']}; {probe['line']}", ""]
    lines += [
        "training step, ms (batch 5)  reference fp32   quag fp32   quag bf16   x ref.  x fp32  bf16 loss"
        "   GFLOP  % GEMM",
    ]
    for r in train_rows:
        rel = 100 * (r["loss_bf16"] - r["loss_fp32"]) / r["loss_fp32"]
        lines.append(
            f"{r['name']:<29}{r['reference_ms']:>15.0f}{r['fp32_ms']:>12.0f}{r['bf16_ms']:>12.0f}"
            f"{r['reference_ms'] / r['bf16_ms']:>8.2f}x{r['fp32_ms'] / r['bf16_ms']:>7.2f}x{rel:>+9.2f}%"
            f"{r['gflop']:>8.0f}{100 * r['fraction_of_fp32_gemm']:>7.0f}%"
        )
    lines += [
        "",
        "inference, ms (batch 5)                  naive fp32   quag fp32   quag bf16  x naive  x fp32  same  naive is",
    ]
    for r in infer_rows:
        naive = r.get("naive_ms")
        same = {True: "yes", False: "NO"}.get(r.get("identical"), "-")
        lines.append(
            f"{r['name']:<41}{fmt(naive):>11}{r['fp32_ms']:>12.0f}{r['bf16_ms']:>12.0f}"
            f"{fmt(naive / r['bf16_ms'] if naive else None, '{:.2f}x'):>9}{r['fp32_ms'] / r['bf16_ms']:>7.2f}x"
            f"{same:>6}  {r.get('naive', '')}"
        )
    lines.append(f"early stop: {ms['rounds']:.2f} rounds per video on average ({ms['from']})")
    if payload.get("inference_heap"):
        lines.append(f"inference rows: {payload['inference_heap']} (the training rows: glibc's default)")
    heap = payload.get("inference_heap_policies")
    if heap:
        runs = len(heap["keep"]["runs"])
        lines += [
            "",
            f"retrieval inference, bf16, fresh processes ({runs} per row, alternating)       ms  faults/call  peak GiB",
        ]
        for policy, h in heap.items():
            label = "glibc's default" if policy == "default" else "freed memory kept (decoding commands)"
            lines.append(f"{label:<74}{h['ms']:>5.0f}{h['faults_per_call']:>13.0f}{h['peak_gib']:>10.2f}")
        lines.append(f"kept against default: {heap['default']['ms'] / heap['keep']['ms']:.2f}x as fast")
    runs = max(len(m.get("runs", [m])) for m in memory.values())
    each = f"highest peak / median time of {runs} runs per row, rows alternating" if runs > 1 else "one run per row"
    lines += ["", f"peak training memory, 10 steps ({each})".ljust(52) + " peak GiB  private   ms/step"]
    for name, m in memory.items():
        private = fmt(m.get("private_peak_gib"), "{:.2f}")
        lines.append(f"{name:<52}{m['peak_gib']:>9.2f}{private:>9}{m['ms_per_step']:>10.0f}")
    default = next((k for k in memory if k.startswith("bf16 (default")), None)
    for other in memory if default else ():  # the default against each other bf16 row
        if other != default and other.startswith("bf16"):
            new, old = memory[default], memory[other]
            lines.append(
                f"{default} against {other}: peak {new['peak_gib'] - old['peak_gib']:+.2f} GiB, "
                f"time per step {100 * (new['ms_per_step'] / old['ms_per_step'] - 1):+.0f}%"
            )

    ext = payload["external"]
    ext_fp32, ext_bf16, then = ext["authors_fp32_ms"], ext["authors_bf16_autocast_ms"], ext["quag_fp32_ms_then"]
    speeds = machine_speeds(train_rows, then)
    sitting = payload.get("sitting")
    lines += ["", "external figures (not measured here): " + ext["source"]]
    scales = None  # the machine speed: lowest, median and highest of the rows
    if speeds:
        scales = min(speeds.values()), statistics.median(speeds.values()), max(speeds.values())
        how = (
            f"the sitting's own code (commit {sitting['commit'][:7]}) in this run's rounds"
            if sitting
            else "today's code with the sitting's where-mask dropout"
        )
        each = ", ".join(f"{name.removeprefix('train ')} {v:.2f}x" for name, v in speeds.items())
        lines.append(
            f"machine speed: quag's fp32 training steps, {how}, take {each} their time then; the authors' figures "
            f"are also shown scaled by the median, {scales[1]:.2f}x, and in brackets by the lowest and highest of "
            "them (a spread between the rows is timing noise of this machine, and the scaled ratios carry it)"
        )
    else:
        why = sitting["why_not"] if sitting else "no machine-speed rows in this run"
        lines.append(f"machine speed: not measured ({why}); the authors' figures are compared unscaled")
    infer_speed = next(
        (r["fp32_sitting_ms"] / then[r["name"]] for r in infer_rows if "fp32_sitting_ms" in r and r["name"] in then),
        None,
    )
    if infer_speed is not None:
        lines.append(
            f"machine speed, inference: the sitting's code's fp32 retrieval call takes {infer_speed:.2f}x its time "
            f"then ({then['infer moment_retrieval']} ms), timed in the inference rounds; the inference rows are "
            "scaled by it, and also by the training rows' speed as above"
        )
    bf16_then = ext.get("quag_bf16_ms_then", {})
    by_bf16 = {r["name"]: r["bf16_sitting_ms"] / r["bf16_ms"] for r in train_rows if "bf16_sitting_ms" in r}
    if by_bf16:
        each = ", ".join(f"{name.removeprefix('train ')} {v:.2f}x" for name, v in by_bf16.items())
        lines.append(
            f"quag bf16 now against the sitting's code in bf16, this run: {each} as fast; `by bf16` below is the "
            "sitting's ratio of the authors' fp32 to quag's bf16 then times that (scaled by bf16 speed, not fp32)"
        )
    lines.append(
        "row                                          authors fp32  authors bf16  quag bf16 now"
        "  authors fp32 / quag bf16"
    )
    for r in train_rows + infer_rows:
        name = r["name"] if not r["name"].startswith("infer segmentation (early") else "infer segmentation (20 rounds)"
        if name not in ext_fp32:
            continue
        label = r["name"].replace("infer segmentation (early stop, ", "infer seg. (early stop vs 20, ")
        line = (
            f"{label:<45.45}{ext_fp32[name]:>13}{fmt(ext_bf16.get(name)):>14}{r['bf16_ms']:>15.0f}"
            f"{ext_fp32[name] / r['bf16_ms']:>9.2f}x raw"
        )
        if infer_speed is not None and name.startswith("infer"):
            line += f", {ext_fp32[name] * infer_speed / r['bf16_ms']:.2f}x scaled by inference speed"
        if scales is not None:
            scaled = [ext_fp32[name] * v / r["bf16_ms"] for v in scales]
            by = " by training speed" if infer_speed is not None and name.startswith("infer") else ""
            line += f", {scaled[1]:.2f}x scaled{by} ({scaled[0]:.2f}-{scaled[2]:.2f})"
        if name in by_bf16 and name in bf16_then:
            line += f", {ext_fp32[name] / bf16_then[name] * by_bf16[name]:.2f}x by bf16"
        lines.append(line)
    lines.append(f"authors' peak training memory then: {ext['authors_peak_gib']} GiB")
    return "\n".join(lines)


def write_outputs(
    payload: dict[str, Any], text: str, out: Path, write_docs: bool, command: str, marker: str = "bench-quag"
) -> None:
    """Print ``text`` (the rendered tables), write ``out`` (the JSON ``payload``) and ``text`` beside it as .txt, and
    with ``write_docs`` put it under ``marker`` in docs/benchmarks.md with the ``command`` that produced it."""
    print()
    print(text)
    atomic_write_json(out, payload)
    atomic_write_text(out.with_suffix(".txt"), text + "\n")
    print(f"written {out} and {out.with_suffix('.txt')}")
    if write_docs:
        body = f"Output of `{command}` ({out.with_suffix('.txt')}):\n\n```text\n{text}\n```"
        print(f"wrote {replace_marked_section(REPO / 'docs' / 'benchmarks.md', marker, body)}")


def gemm_share(gflop: float, ms: float, gflops: float) -> float:
    """The rate of ``gflop`` of matrix products done in ``ms`` as a share of a probe's ``gflops``."""
    return gflop / (ms / 1000) / gflops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--ms-rounds", type=float, help="rounds per video of early-stopped segmentation")
    parser.add_argument("--out", default="benchmarks/results/bench_quag.json")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the table in docs/benchmarks.md")
    parser.add_argument("--render", metavar="JSON", help="print (and --write-docs) the tables of an earlier run")
    parser.add_argument(
        "--memory-phases",
        action="store_true",
        help="print the peak resident memory of each phase of each task's training step (CPU, bf16 unless --fp32)",
    )
    parser.add_argument("--fp32", action="store_true", help="with --memory-phases: fp32 instead of bf16")
    parser.add_argument(
        "--memory-child",
        type=int,
        default=0,
        metavar="STEPS",
        help="only one row of the memory table: STEPS training steps in this process, its peaks printed as JSON",
    )
    parser.add_argument("--release-memory", action="store_true", help="with --memory-child: train.release_memory")
    parser.add_argument("--plain-autograd", action="store_true", help="with --memory-child: plain autograd")
    parser.add_argument("--bf16", action="store_true", help="with --memory-child: bf16 autocast")
    parser.add_argument(
        "--heap-child",
        choices=HEAP_POLICIES,
        help="only one run of the inference heap comparison: bf16 retrieval calls in this process, printed as JSON",
    )
    parser.add_argument("--calls", type=int, default=10, help="with --heap-child: timed calls")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    if args.heap_child:
        heap_policy_child(args.heap_child, args.calls)
        return
    if args.memory_child:
        setting = MemorySetting("child", args.bf16, args.release_memory, args.plain_autograd)
        peak_memory_child(args.memory_child, setting, dev)
        return
    if args.memory_phases:
        if dev != "cpu":
            raise SystemExit("--memory-phases measures resident memory on the CPU; drop --device")
        peaks = memory_phases(3, bf16=not args.fp32)
        columns = ("forward", "backward", "clip + step")
        precision = "fp32" if args.fp32 else "bf16"
        print(f"peak resident memory, GiB, all / private, {precision}, rounds 2-3 of 3 (one step per task each)")
        print(f"{'task':<22}" + "".join(f"{c:>16}" for c in columns))
        for task, phase_peaks in peaks.items():
            cells = (phase_peaks.get(c, (float("nan"), float("nan"))) for c in columns)
            print(f"{task:<22}" + "".join(f"{total:>8.3f} / {private:.3f}" for total, private in cells))
        print(f"process peak (VmHWM, round 1 included): {peak_rss_gib():.3f}")
        return
    if args.render:
        path = Path(args.render)
        payload = json.loads(path.read_text())
        write_outputs(payload, render(payload), path, args.write_docs, "python benchmarks/bench_quag.py")
        return
    ms_rounds, rounds_from = (args.ms_rounds, "--ms-rounds") if args.ms_rounds else default_ms_rounds()
    reps, warm = (3, 1) if args.quick else (5, 2)
    probe = gemm_probe(dev)
    print(f"torch {torch.__version__}, {dev}; {probe['line']}", flush=True)
    fp32_rate = probe["fp32_gflops"]

    train_rows: list[dict[str, Any]] = []
    model = paper_model(device=dev)
    ref_model = paper_model(reference=True, device=dev)
    opt = build_optimizer(model, 1e-5, 0.01)
    ref_opt = build_optimizer(ref_model, 1e-5, 0.01)
    sitting_dir = tempfile.TemporaryDirectory(prefix="quag-sitting-")
    tmp = sitting_dir.name
    sitting_why_not = "the sitting's code ran on the CPU only" if dev != "cpu" else extract_sitting_code(Path(tmp))
    if sitting_why_not:
        print(f"machine speed not measured: {sitting_why_not}", flush=True)
    sitting = None if sitting_why_not else SittingSteps(Path(tmp), args.threads)
    try:
        # every task's paths are timed in the same interleaved rounds (interleaved_ms), the sitting's code's
        # steps included, so that all training rows and the machine-speed rows see the machine in the same state
        train_paths: list[dict[str, TimedPath]] = []
        for task in TASKS:
            batch = make_batch(task, device=dev)
            model.train()
            ref_model.train()
            train_row: dict[str, Any] = {
                "name": f"train {task}",
                "loss_fp32": first_loss(model, batch, FP32_PATH, dev),
                "loss_bf16": first_loss(model, batch, BF16_PATH, dev),
                "gflop": training_flops(model, trim_caption_padding(copy.copy(batch))) / 1e9,
            }
            paths = {
                "reference": TimedPath(train_step_fn(ref_model, ref_opt, batch, REFERENCE_PATH, dev), reps),
                "fp32": TimedPath(train_step_fn(model, opt, batch, FP32_PATH, dev), reps),
                "bf16": TimedPath(train_step_fn(model, opt, batch, BF16_PATH, dev), reps),
            }
            if sitting is not None:
                paths["fp32_sitting"] = TimedPath(sitting.step_fn(task, bf16=False), reps)
                paths["bf16_sitting"] = TimedPath(sitting.step_fn(task, bf16=True), reps)
            train_rows.append(train_row)
            train_paths.append(paths)
        timed_rows = interleaved_ms(train_paths, dev)
        for train_row, med in zip(train_rows, timed_rows, strict=True):
            train_row.update(med)
            train_row["fraction_of_fp32_gemm"] = gemm_share(train_row["gflop"], med["fp32_ms"], fp32_rate)
            print(f"  {train_row['name']}: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()), flush=True)

        infer_rows: list[dict[str, Any]] = []
        infer_paths: list[dict[str, TimedPath]] = []
        device_type = "cuda" if dev.startswith("cuda") else "cpu"

        def autocast(bf16: bool) -> Any:
            return torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16)

        model.eval()
        ref_model.eval()
        # as the decoding commands run (the training rows above ran with glibc's default, as the trainer)
        inference_heap = keep_freed_memory() if device_type == "cpu" else "-"
        print(f"inference: {inference_heap}", flush=True)
        with torch.no_grad():
            cfg = EvalConfig()
            mr = make_batch("moment_retrieval", device=dev)

            def mr_fn(m: HiRESTModel, bf16: bool) -> Callable[[], object]:
                def run() -> object:
                    with autocast(bf16):
                        return predict_moments(m, mr, cfg)

                return run

            infer_rows.append({"name": "infer moment_retrieval", "naive": "reference padding"})
            infer_paths.append(
                {
                    "naive": TimedPath(mr_fn(ref_model, False), reps, warm),
                    "fp32": TimedPath(mr_fn(model, False), reps, warm),
                    "bf16": TimedPath(mr_fn(model, True), reps, warm),
                }
            )
            if sitting is not None:  # the machine speed of the inference rows (the sitting's code, fp32)
                infer_paths[-1]["fp32_sitting"] = TimedPath(sitting.infer_fn(), reps, warm)

            ms = make_batch("moment_segmentation", device=dev)
            lengths = ms.video_mask.sum(1)

            def seg_fn(bf16: bool, rounds: int, naive: bool = False) -> Callable[[], list]:
                def cached_front() -> torch.Tensor:
                    return decode_front(model, ms)

                def run() -> list:
                    with autocast(bf16):
                        if naive:

                            def naive_logits(r: torch.Tensor, region: torch.Tensor, bnd: torch.Tensor) -> torch.Tensor:
                                f = model.encode_front(
                                    ms.video[r], ms.transcript[r], ms.query_embedding[r], ms.video_mask[r]
                                ).features
                                return model.segment_logits(model.encode_context(f, ms.video_mask[r], region, bnd))

                            return decode_islands_naive(naive_logits, ms.moment_frames, lengths, rounds, 0.5)
                        front = cached_front()

                        def logits(r: torch.Tensor, region: torch.Tensor, bnd: torch.Tensor) -> torch.Tensor:
                            return model.segment_logits(model.encode_context(front[r], ms.video_mask[r], region, bnd))

                        return decode_islands(logits, ms.moment_frames, lengths, rounds, 0.5, early_stop=False)

                return run

            infer_rows.append(
                {
                    "name": "infer segmentation (20 rounds)",
                    "naive": "whole model every round",
                    "identical": seg_fn(False, 20)() == seg_fn(False, 20, naive=True)(),
                }
            )
            infer_paths.append(
                {
                    "naive": TimedPath(seg_fn(False, 20, naive=True), 1 if args.quick else 2, 0),
                    "fp32": TimedPath(seg_fn(False, 20), reps, warm),
                    "bf16": TimedPath(seg_fn(True, 20), reps, warm),
                }
            )
            k = max(1, math.ceil(ms_rounds))
            infer_rows.append(
                {
                    "name": f"infer segmentation (early stop, {k} rounds)",
                    "rounds": ms_rounds,
                    "rounds_from": rounds_from,
                }
            )
            infer_paths.append(
                {"fp32": TimedPath(seg_fn(False, k), reps, warm), "bf16": TimedPath(seg_fn(True, k), reps, warm)}
            )

            sc = make_batch("step_captioning", device=dev)
            model.decoder.output_bias[SEP_ID] = -1e4  # never stop early: exactly max_len decoding steps
            for steps in (6, 48):

                def cap_fn(bf16: bool, use_cache: bool, steps: int = steps) -> Callable[[], list]:
                    def run() -> list:
                        with autocast(bf16):
                            h = model.encode_context(decode_front(model, sc), sc.video_mask, sc.moment_mask, None)
                            return generate_beam(model.decoder, h, sc.video_mask, BEAMS, steps, use_cache=use_cache)

                    return run

                row: dict[str, Any] = {"name": f"infer captioning ({steps} steps)", "naive": "no key/value cache"}
                paths = {
                    "fp32": TimedPath(cap_fn(False, True), reps, warm),
                    "bf16": TimedPath(cap_fn(True, True), reps, warm),
                }
                if steps == 6 or not args.quick:
                    paths["naive"] = TimedPath(cap_fn(False, False), 1 if (args.quick or steps == 48) else reps, 0)
                    row["identical"] = cap_fn(False, True)() == cap_fn(False, False)()
                infer_rows.append(row)
                infer_paths.append(paths)
            # every inference path in the same interleaved rounds, as the training rows (the decoder's SEP bias stays
            # at -1e4 throughout: only the captioning rows read it)
            for row, med in zip(infer_rows, interleaved_ms(infer_paths, dev), strict=True):
                row.update(med)
    finally:
        if sitting is not None:
            sitting.close()
        sitting_dir.cleanup()

    memory = measure_memory_settings(args.threads, dev, 1 if args.quick else 3)
    heap = None if dev != "cpu" else measure_heap_policies(args.threads, 2 if args.quick else 3, 10)

    payload = {
        "torch": torch.__version__,
        "device": dev,
        "gemm_probe": probe,
        "train": train_rows,
        "infer": infer_rows,
        "ms_rounds": {"rounds": ms_rounds, "from": rounds_from},
        "peak_training_memory": memory,
        "inference_heap": inference_heap,
        "inference_heap_policies": heap,
        "external": EXTERNAL,
        "sitting": {"commit": SITTING_COMMIT, "measured": not sitting_why_not, "why_not": sitting_why_not},
    }
    command = "python benchmarks/bench_quag.py" + (" --quick" if args.quick else "")
    write_outputs(payload, render(payload), Path(args.out), args.write_docs, command)


if __name__ == "__main__":
    main()
