"""Training steps and retrieval inference of this repository's code at an earlier commit, one per request
(bench_quag's machine-speed rows).

    python benchmarks/sitting_steps.py SOURCE THREADS

SOURCE holds ``src/`` and ``benchmarks/`` of that commit (``bench_quag.py`` extracts them with ``git archive``).
This process imports the commit's own ``quag`` package and its own ``benchmarks/bench_quag.py``, never this
checkout's, and builds what that script timed: the paper-setting model with seed 0, its optimizer, and a fp32 and
a bf16 training step of each task on that script's batches; and a second model in eval mode for its fp32
moment-retrieval inference call (``predict_moments`` on its retrieval batch, as the script timed it). Then it
answers on stdout, one line each: ``ready`` once built, and ``done`` after each request read from stdin,
``<task> fp32`` or ``<task> bf16`` (one training step) or ``infer moment_retrieval fp32`` (one inference call).
Between requests it waits on the pipe and uses no CPU, so its calls can join another process's interleaved
rounds. Errors go to stderr; the process ends when stdin closes.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

TASKS = ("moment_retrieval", "moment_segmentation", "step_captioning")
"""The commit's tasks, spelled out: this process imports no ``quag`` before the commit's own."""


INFER = "infer moment_retrieval"
"""The request name of the commit's retrieval inference call (fp32 only, as its script timed it)."""


def build_steps(source: Path) -> dict[tuple[str, str], Callable[[], object]]:
    """The commit's training steps, keyed by (task, ``fp32`` or ``bf16``), on one model and optimizer as its script
    had them, and its retrieval inference, keyed by (:data:`INFER`, ``fp32``)."""
    sys.path[:0] = [str(source / "src"), str(source / "benchmarks")]
    sitting = importlib.import_module("bench_quag")  # the commit's script (found first on the path), not ours
    quag = importlib.import_module("quag")

    if not Path(str(quag.__file__)).resolve().is_relative_to(source.resolve()):
        raise SystemExit(f"{source}: imported quag from {quag.__file__}, not from the commit's src/")
    model = sitting.paper_model()
    model.train()
    opt = sitting.build_optimizer(model, 1e-5, 0.01)
    steps: dict[tuple[str, str], Callable[[], object]] = {}
    for task in TASKS:
        batch = sitting.make_batch(task)
        steps[task, "fp32"] = sitting.train_step_fn(model, opt, batch, False)
        steps[task, "bf16"] = sitting.train_step_fn(model, opt, batch, True)
    import torch

    infer_model = sitting.paper_model()
    infer_model.eval()
    mr, cfg = sitting.make_batch("moment_retrieval"), importlib.import_module("quag.config").EvalConfig()

    def infer() -> object:
        with torch.no_grad():
            return sitting.predict_moments(infer_model, mr, cfg)

    steps[INFER, "fp32"] = infer
    return steps


def serve(steps: dict[tuple[str, str], Callable[[], object]]) -> None:
    """Answer ``ready``, then run one step per request line and answer ``done``, until stdin closes."""
    print("ready", flush=True)
    for line in sys.stdin:
        task, _, precision = line.strip().rpartition(" ")
        key = (task, precision)
        if key not in steps:
            raise SystemExit(
                f"unknown request {line.strip()!r}; send '<task> fp32' or '<task> bf16', task one of {TASKS}, "
                f"or '{INFER} fp32'"
            )
        steps[key]()
        print("done", flush=True)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    source, threads = Path(sys.argv[1]), int(sys.argv[2])
    import torch

    torch.set_num_threads(threads)
    serve(build_steps(source))


if __name__ == "__main__":
    main()
