"""TVSum hyper-parameter check that never reads a test video: leave-one-training-video-out validation.

For every category and every one of its 4 training videos, train on the other 3 and score the held-out one
(top-5 mAP every ``eval_every`` epochs): 40 validation videos per setting instead of the 10 test videos, and no
test label is read. The mean curve over the 40 tells which setting and which epoch count generalise. Two
label-free rules come out of it for ``benchmarks/tvsum_protocol.py --label-free-from runs/tvsum/cv/<name>.json``:

- ``--label-free-kind epoch``: the epoch with the best mean validation mAP;
- ``--label-free-kind average``: the start epoch S whose average of the evaluations from S to the last epoch
  (``quag.tvsum.protocol.average_evaluations``) has the best mean validation mAP;
- ``--label-free-kind best``: the better of the two on this validation.

    python benchmarks/tvsum_cv.py --name base                                   # the default config
    python benchmarks/tvsum_cv.py --name neg train.negative_query_weight=1      # one change
    python benchmarks/tvsum_cv.py --config configs/tvsum_quag.yaml --epochs 400 --seed 0

Writes ``runs/tvsum/cv/<name>.json`` ({"curve": [[epoch, mean mAP]], "best_epoch", "average": {"start_epoch",
"end_epoch", "mean_map", "curve": [[start epoch, mean mAP]]}, "per_fold_curve": {"CAT/vid": [mAP, ...]},
"setting_fingerprint": the config's fingerprint without the epoch count}) and prints both rules. Each fold is a
protocol job (``runs/tvsum/cv/<name>/jobs/seed_<s>/<CAT>_<vid>.json`` and its ``.evals.npz``, the held-out
predictions at every evaluation), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from quag.io import atomic_write_json
from quag.tvsum.config import load_tvsum_config
from quag.tvsum.data import TVSUM_SPLITS, load_tvsum
from quag.tvsum.protocol import average_evaluations, evals_path, load_job, run_job
from quag.tvsum.train import evaluate_map


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    parser.add_argument("--config", help="YAML config (default: built-in defaults)")
    parser.add_argument("--name", required=True, help="output name under runs/tvsum/cv/")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--eval-every", type=int, help="validation interval (default: train.eval_every = 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--categories", nargs="+", help="default: all 10")
    parser.add_argument("--workers", type=int, help="worker processes (default: train.workers)")
    args = parser.parse_args(argv)

    extra = [f"train.epochs={args.epochs}"]
    if args.eval_every:
        extra.append(f"train.eval_every={args.eval_every}")
    if args.workers:
        extra.append(f"train.workers={args.workers}")
    cfg = load_tvsum_config(args.config, [*args.overrides, *extra])
    categories = args.categories or list(cfg.data.categories)
    videos = load_tvsum(
        cfg.data.root or None, categories, normalize=cfg.data.normalize_features, load_audio=cfg.model.use_audio
    )
    run_dir = Path(cfg.output_dir) / "cv" / args.name
    fingerprint = cfg.training_fingerprint()
    folds = [(cat, held) for cat in categories for held in TVSUM_SPLITS[cat]["train"]]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    jobs = []
    for cat, held in folds:
        done = load_job(run_dir, args.seed, f"{cat}_{held}", fingerprint)
        if done is not None:
            results[cat, held] = done
        else:
            rest = [videos[v] for v in TVSUM_SPLITS[cat]["train"] if v != held]
            jobs.append((cat, held, rest))
    jobs.sort(key=lambda j: len(j[2]) * max(v.num_clips for v in j[2]), reverse=True)  # longest first
    if results:
        print(f"{len(results)} finished fold(s) found in {run_dir}, skipped", file=sys.stderr)
    start = time.perf_counter()
    with ProcessPoolExecutor(cfg.train.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            pool.submit(run_job, cfg, f"{cat}_{held}", rest, [videos[held]], args.seed, run_dir): (cat, held)
            for cat, held, rest in jobs
        }
        for i, f in enumerate(as_completed(futures), 1):
            results[futures[f]] = f.result()
            print(f"\r{i}/{len(futures)} folds done", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    epochs = [int(e) for e, _ in results[folds[0]]["curve"]]
    grid = np.array([[m for _, m in results[fold]["curve"]] for fold in folds])  # (folds, evaluations)
    curve = grid.mean(0)
    best = int(curve.argmax())  # the earliest best epoch
    averaged = np.zeros((len(folds), len(epochs)))  # fold x start epoch: mAP of the average from there to the end
    for i, (cat, held) in enumerate(folds):
        with np.load(evals_path(run_dir, args.seed, f"{cat}_{held}")) as z:
            scores = z[held]
        for j in range(len(epochs)):
            averaged[i, j] = evaluate_map({held: list(average_evaluations(scores[j:]))}, [videos[held]])
    average_curve = averaged.mean(0)
    best_start = int(average_curve.argmax())
    out = {
        "name": args.name,
        "config": args.config,
        "overrides": args.overrides,
        "epochs": args.epochs,
        "eval_every": cfg.train.eval_every,
        "seed": args.seed,
        "categories": categories,
        "setting_fingerprint": cfg.setting_fingerprint(),
        "curve": [[e, float(m)] for e, m in zip(epochs, curve, strict=True)],
        "best_epoch": epochs[best],
        "best_mean_map": float(curve[best]),
        "final_mean_map": float(curve[-1]),
        "average": {
            "start_epoch": epochs[best_start],
            "end_epoch": epochs[-1],
            "mean_map": float(average_curve[best_start]),
            "curve": [[e, float(m)] for e, m in zip(epochs, average_curve, strict=True)],
        },
        "per_fold_curve": {f"{cat}/{held}": [m for _, m in results[cat, held]["curve"]] for cat, held in folds},
        "wall_s": time.perf_counter() - start,
    }
    path = Path(cfg.output_dir) / "cv" / f"{args.name}.json"
    atomic_write_json(path, out)
    avg = out["average"]
    print(
        f"{args.name}: best mean val mAP {out['best_mean_map']:.1f} at epoch {out['best_epoch']}, "
        f"final {out['final_mean_map']:.1f}; averaging epochs {avg['start_epoch']}-{avg['end_epoch']} "
        f"{avg['mean_map']:.1f}; {out['wall_s'] / 60:.1f} min -> {path}"
    )
    print("curve: " + " ".join(f"{e}:{m:.1f}" for e, m in out["curve"]))
    print("average from epoch: " + " ".join(f"{e}:{m:.1f}" for e, m in avg["curve"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
