"""TVSum hyper-parameter check that never reads a test video: leave-one-training-video-out validation.

For every category and every one of its 4 training videos, train on the other 3 and score the held-out one
(top-5 mAP every ``eval_every`` epochs): 40 validation videos per setting instead of the 10 test videos, and no
test label is read. The mean curve over the 40 tells which setting and which epoch count generalise; its best
epoch is the label-free epoch of ``benchmarks/tvsum_protocol.py --label-free-from runs/tvsum/cv/<name>.json``.

    python benchmarks/tvsum_cv.py --name base                                   # the default config
    python benchmarks/tvsum_cv.py --name neg train.negative_query_weight=1      # one change
    python benchmarks/tvsum_cv.py --config configs/tvsum_quag.yaml --epochs 400 --seed 0

Writes ``runs/tvsum/cv/<name>.json`` ({"curve": [[epoch, mean mAP]], "best_epoch", "per_fold_curve":
{"CAT/vid": [mAP, ...]}, "setting_fingerprint": the config's fingerprint without the epoch count}) and prints the
best epoch. Each finished fold is kept in ``runs/tvsum/cv/<name>/folds/``, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
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
from quag.tvsum.train import train_job


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
    fold_dir = Path(cfg.output_dir) / "cv" / args.name / "folds"
    fingerprint = cfg.training_fingerprint()
    jobs, results = [], {}
    for cat in categories:
        train_ids = TVSUM_SPLITS[cat]["train"]
        for held in train_ids:
            tag = f"{cat}/{held}"
            path = fold_dir / f"{cat}_{held}.json"
            if path.is_file():
                old = json.loads(path.read_text())
                if old.get("fingerprint") == fingerprint and old.get("seed") == args.seed:
                    results[tag] = old
                    continue
            rest = [videos[v] for v in train_ids if v != held]
            jobs.append((tag, rest, [videos[held]]))
    if results:
        print(f"{len(results)} finished fold(s) found in {fold_dir}, skipped", file=sys.stderr)
    start = time.perf_counter()
    with ProcessPoolExecutor(cfg.train.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(train_job, cfg, tag, rest, held, args.seed, None) for tag, rest, held in jobs]
        for i, f in enumerate(as_completed(futures), 1):
            r: dict[str, Any] = f.result()
            cat, held = r["category"].split("/")
            fold = {"fingerprint": fingerprint, "seed": args.seed, "curve": r["curve"], "wall_s": r["wall_s"]}
            atomic_write_json(fold_dir / f"{cat}_{held}.json", fold)
            results[r["category"]] = fold
            print(f"\r{i}/{len(futures)} folds done", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    order = [f"{cat}/{held}" for cat in categories for held in TVSUM_SPLITS[cat]["train"]]
    epochs = [e for e, _ in results[order[0]]["curve"]]
    grid = np.array([[m for _, m in results[tag]["curve"]] for tag in order])  # (folds, evaluations)
    curve = grid.mean(0)
    best = int(curve.argmax())  # the earliest best epoch
    out = {
        "name": args.name,
        "config": args.config,
        "overrides": args.overrides,
        "epochs": args.epochs,
        "eval_every": cfg.train.eval_every,
        "seed": args.seed,
        "categories": categories,
        "setting_fingerprint": cfg.training_fingerprint(exclude=("epochs",)),
        "curve": [[e, float(m)] for e, m in zip(epochs, curve, strict=True)],
        "best_epoch": epochs[best],
        "best_mean_map": float(curve[best]),
        "final_mean_map": float(curve[-1]),
        "per_fold_curve": {tag: [m for _, m in results[tag]["curve"]] for tag in order},
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
