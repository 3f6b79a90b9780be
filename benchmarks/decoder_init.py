"""Caption-decoder initialisation, random vs all-MiniLM-L6-v2, at the demo budget (not collected by pytest).

Run: ``.venv/bin/python benchmarks/decoder_init.py [--seeds 2222 2223 2224] [--inits random minilm]``.

For each (init, seed) it trains ``configs/sim_quag_cpu.yaml`` (the config of ``make demo``: QUAG at H = 128,
5 epochs on HiREST-sim) with ``model.decoder_init=<init> train.seed=<seed>`` into
``runs/decoder_init/<init>_s<seed>/``, decodes the val steps with the best checkpoint (by ``val/mean_score``, as
the demo) and scores them: ``CIDEr``, ``METEOR`` and distinct captions / steps
(:mod:`quag.evaluation.caption_diversity`). The nearest-query baseline (each val video takes the captions of the
train video with the most similar query) is scored once on the same split.

Resumable: a finished (init, seed) keeps its ``result.json`` and is skipped; an interrupted training run resumes
from its last checkpoint. ``--rescore`` decodes and scores finished runs again without training (after a decoding
change). Prints the table and writes everything to ``--json`` (default ``benchmarks/results/decoder_init.json``).
Each run takes ~5 minutes of CPU alone on two cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

from quag.io import atomic_write_json

CAPTION_METRICS = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
COLUMNS = ("CIDEr", "METEOR", "distinct_ratio")


def data_fingerprint(root: Path) -> str:
    """Hash of the data root's ``sim_config.json`` and ``feature_spec.json`` (every run must see the same data)."""
    digest = hashlib.sha256()
    for name in ("sim_config.json", "feature_spec.json"):
        path = root / name
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:16]


def score_run(best: Path, split: str) -> dict[str, Any]:
    """Decode ``split``'s steps with a checkpoint and score them (caption metrics + diversity)."""
    from quag.evaluation.caption_diversity import caption_diversity, prediction_captions
    from quag.inference.api import run_inference

    summary = run_inference(
        best,
        split=split,
        tasks=["step_captioning"],
        evaluate=True,
        device="cpu",
        progress=False,
        caption_metrics=CAPTION_METRICS,
    )
    pred_file = next(f for f in summary["files"] if f.endswith(f"{split}_step_captioning.json"))
    diversity = caption_diversity(prediction_captions(json.loads(Path(pred_file).read_text())))
    metrics = {m: float(summary["metrics"][f"step_captioning/{m}"]) for m in CAPTION_METRICS}
    return {**metrics, "distinct_ratio": diversity.distinct_ratio, "diversity": diversity.to_dict()}


def run_one(config: str, init: str, seed: int, out: Path, rescore: bool, extra: list[str]) -> dict[str, Any]:
    """Train (or resume, or reuse) one (init, seed) run and score it; the result is cached in ``result.json``."""
    from quag.config import load_config
    from quag.training.recipe import train

    name = f"{init}_s{seed}"
    overrides = [f"model.decoder_init={init}", f"train.seed={seed}", f"name={name}", f"output_dir={out}", *extra]
    cfg = load_config(config, overrides)
    result_file = cfg.run_dir / "result.json"
    if result_file.is_file() and not rescore:
        return dict(json.loads(result_file.read_text()))
    best = cfg.run_dir / "checkpoints" / "best"
    if rescore and result_file.is_file():
        result = dict(json.loads(result_file.read_text()))
    else:
        last = cfg.run_dir / "checkpoints" / "last"
        fingerprint = data_fingerprint(Path(cfg.data.root))
        print(f"[{name}] training ({'resuming' if last.is_dir() else 'from scratch'})", flush=True)
        start = time.time()
        train(cfg, resume=last if last.is_dir() else None, device="cpu", progress=False)
        if data_fingerprint(Path(cfg.data.root)) != fingerprint:
            raise RuntimeError(f"{cfg.data.root} changed while {name} trained: delete {cfg.run_dir} and rerun")
        result = {"init": init, "seed": seed, "train_seconds": time.time() - start, "data": fingerprint}
    result.update(score_run(best, cfg.data.val_split))
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def baseline(config: str, extra: list[str]) -> dict[str, Any]:
    """The nearest-query caption baseline on the config's val split (with its diversity)."""
    from quag.config import load_config
    from quag.data import annotations as A
    from quag.data.datasets import make_store
    from quag.evaluation.baselines import nearest_train_captions, run_baselines
    from quag.evaluation.caption_diversity import caption_diversity, prediction_captions
    from quag.evaluation.captions import CaptionOptions
    from quag.evaluation.evaluate import flat_metrics
    from quag.evaluation.ground_truth import step_ground_truth, steps_from_split

    cfg = load_config(config, extra)
    root, split = cfg.data.root, cfg.data.val_split
    queries = make_store(cfg.data).queries()
    report = run_baselines(root, split, embed=queries, caption_options=CaptionOptions(metrics=CAPTION_METRICS))
    flat = flat_metrics(report["results"]["step_captioning"]["nearest_caption"])
    videos = A.load_split(root, split)
    gt_file = Path(root) / A.EVAL_GT_FILES.get(split, "-")
    steps = step_ground_truth(gt_file) if gt_file.is_file() else steps_from_split(videos)  # as run_baselines
    preds, _ = nearest_train_captions(A.load_split(root, "train"), videos, steps, queries)
    diversity = caption_diversity(prediction_captions(preds))
    return {
        **{m: float(flat[f"step_captioning/{m}"]) for m in CAPTION_METRICS},
        "distinct_ratio": diversity.distinct_ratio,
        "diversity": diversity.to_dict(),
    }


def table(results: list[dict[str, Any]], base: dict[str, Any], inits: list[str]) -> str:
    """Per-seed rows, the mean of each init, and the baseline (percentages for the distinct ratio)."""

    def cells(r: dict[str, Any]) -> str:
        return " | ".join(f"{100 * r[c]:.1f}%" if c == "distinct_ratio" else f"{r[c]:.2f}" for c in COLUMNS)

    lines = ["| decoder init | seed | CIDEr | METEOR | distinct captions / steps |", "|---|---|---:|---:|---:|"]
    for init in inits:
        rows = sorted((r for r in results if r["init"] == init), key=lambda r: r["seed"])
        lines += [f"| {init} | {r['seed']} | {cells(r)} |" for r in rows]
        if rows:
            mean = {c: statistics.mean(r[c] for r in rows) for c in COLUMNS}
            lines.append(f"| **{init}** | mean of {len(rows)} | {cells(mean)} |")
    lines.append(f"| nearest-query captions (baseline) | - | {cells(base)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/sim_quag_cpu.yaml", help="experiment config (the demo's)")
    parser.add_argument("--inits", nargs="+", default=["random", "minilm"], help="model.decoder_init values")
    parser.add_argument("--seeds", nargs="+", type=int, default=[2222, 2223, 2224], help="train.seed values")
    parser.add_argument("--out", default="runs/decoder_init", help="folder of the runs")
    parser.add_argument("--json", default="benchmarks/results/decoder_init.json", help="where the results go")
    parser.add_argument("--rescore", action="store_true", help="decode and score finished runs again")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more config overrides")
    parser.add_argument("--write-docs", action="store_true", help="regenerate the table in docs/benchmarks.md")
    args = parser.parse_args()

    results = []
    for seed in args.seeds:  # seed-major, so an interrupted sweep still compares the inits on the same seeds
        for init in args.inits:
            results.append(run_one(args.config, init, seed, Path(args.out), args.rescore, args.set))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "diversity"}), flush=True)
    base = baseline(args.config, args.set)
    text = table(results, base, args.inits)
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": args.config,
        "overrides": args.set,
        "split": "val",
        "runs": results,
        "nearest_query_baseline": base,
    }
    atomic_write_json(args.json, payload)
    print(f"wrote {args.json}")
    if args.write_docs:
        from quag.io import replace_marked_section

        sets = " ".join(args.set)
        command = "python benchmarks/decoder_init.py" + (f" --set {sets}" if sets else "") + " --write-docs"
        doc = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        print(f"wrote {replace_marked_section(doc, 'decoder-init', f'Output of `{command}`:' + chr(10) * 2 + text)}")


if __name__ == "__main__":
    main()
