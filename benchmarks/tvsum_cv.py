"""TVSum hyper-parameter check that never reads a test video: leave-one-training-video-out validation.

For every category and every one of its 4 training videos, train on the other 3 and score the held-out one
(top-5 mAP every ``eval_every`` epochs): 40 validation videos per setting instead of the 10 test videos, and no
test label is read. The mean curve over the 40 tells which setting and which epoch count generalise.

    python benchmarks/tvsum_cv.py --name base                                   # the default config
    python benchmarks/tvsum_cv.py --name noneg train.negative_query_weight=0    # one change
    python benchmarks/tvsum_cv.py --config configs/tvsum_quag.yaml --epochs 300 --seed 0

Writes ``runs/tvsum/cv/<name>.json`` ({"curve": [[epoch, mean mAP]], "per_fold_curve": {"CAT/vid": [mAP, ...]}})
and prints the best epoch.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from quag.io import atomic_write_json
from quag.tvsum.config import load_tvsum_config
from quag.tvsum.data import TVSUM_SPLITS, load_tvsum
from quag.tvsum.train import train_job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    parser.add_argument("--config", help="YAML config (default: built-in defaults)")
    parser.add_argument("--name", required=True, help="output name under runs/tvsum/cv/")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--categories", nargs="+", help="default: all 10")
    args = parser.parse_args(argv)

    cfg = load_tvsum_config(args.config, [*args.overrides, f"train.epochs={args.epochs}"])
    categories = args.categories or list(cfg.data.categories)
    videos = load_tvsum(cfg.data.root or None, categories, normalize=cfg.data.normalize_features)
    jobs = []
    for cat in categories:
        train_ids = TVSUM_SPLITS[cat]["train"]
        for held in train_ids:
            rest = [videos[v] for v in train_ids if v != held]
            jobs.append((f"{cat}/{held}", rest, [videos[held]]))
    start = time.perf_counter()
    with ProcessPoolExecutor(cfg.train.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(train_job, cfg, tag, rest, held, args.seed, None) for tag, rest, held in jobs]
        results = []
        for i, f in enumerate(futures, 1):
            results.append(f.result())
            print(f"\r{i}/{len(futures)} folds done", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    epochs = [e for e, _ in results[0]["curve"]]
    grid = np.array([[m for _, m in r["curve"]] for r in results])  # (folds, evaluations)
    curve = grid.mean(0)
    best = int(curve.argmax())
    out = {
        "name": args.name,
        "overrides": args.overrides,
        "epochs": args.epochs,
        "seed": args.seed,
        "curve": [[e, float(m)] for e, m in zip(epochs, curve, strict=True)],
        "best_epoch": epochs[best],
        "best_mean_map": float(curve[best]),
        "final_mean_map": float(curve[-1]),
        "per_fold_curve": {r["category"]: [m for _, m in r["curve"]] for r in results},
        "wall_s": time.perf_counter() - start,
    }
    path = Path(cfg.output_dir) / "cv" / f"{args.name}.json"
    atomic_write_json(path, out)
    print(
        f"{args.name}: best mean val mAP {out['best_mean_map']:.1f} at epoch {out['best_epoch']}, "
        f"final {out['final_mean_map']:.1f}, {out['wall_s'] / 60:.1f} min -> {path}"
    )
    print("curve: " + " ".join(f"{e}:{m:.1f}" for e, m in out["curve"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
