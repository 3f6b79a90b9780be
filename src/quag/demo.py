"""The main job (``make demo`` / ``quag demo``): simulated data -> train QUAG on CPU -> evaluate -> table + HTML.

1. Build HiREST-sim (``data/hirest-sim``) if it is missing (real annotations, simulated features).
2. Train QUAG with ``configs/sim_quag_cpu.yaml`` (resumes an interrupted run; a finished run is reused).
3. Decode the val split with the best checkpoint and score it with the official metrics.
4. Score the trivial baselines on the same split and print one table.
5. Write ``runs/<name>/report.html``: the table, the training curves and end-to-end timelines of a few videos.

Every number is on SIMULATED features and is not comparable with the paper.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from quag import __version__
from quag.config import ExperimentConfig, dump_config, load_config
from quag.io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

TABLE_COLUMNS = (
    "moment_retrieval/R@0.5",
    "moment_retrieval/R@0.7",
    "moment_segmentation/recall@0.5",
    "moment_segmentation/precision@0.5",
    "moment_segmentation/recall@0.7",
    "moment_segmentation/precision@0.7",
    "step_captioning/Bleu_4",
    "step_captioning/METEOR",
    "step_captioning/ROUGE_L",
    "step_captioning/CIDEr",
)
"""The metric keys of the results table (``flat_metrics`` keys); tables head each column with its key."""


def _baseline_rows(
    root: str, split: str, embed: dict[str, Any], caption_metrics: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    from quag.evaluation.baselines import run_baselines
    from quag.evaluation.captions import CaptionOptions
    from quag.evaluation.evaluate import flat_metrics

    result = run_baselines(root, split, embed=embed, caption_options=CaptionOptions(metrics=caption_metrics))
    names = {
        "whole_video": "whole video (MR)",
        "mean_span": "mean train span (MR)",
        "uniform_steps": "uniform steps, train median (MS)",
        "nearest_caption": "nearest-query captions (SC)",
        "frequent_caption": "most frequent caption (SC)",
    }
    rows: dict[str, dict[str, float]] = {}
    for reports in result["results"].values():
        for name, rep in reports.items():
            if name in names:
                rows[names[name]] = {k: float(v) for k, v in flat_metrics(rep).items() if isinstance(v, (int, float))}
    return rows


def format_table(rows: dict[str, dict[str, float]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """A plain-text table; each column is headed by its metric key, the task over its columns, then the metric."""
    from quag.report import column_groups

    width = max(len(n) for n in ["system", *rows]) + 2
    tasks, metrics, widths = f"{'':<{width}}", f"{'system':<{width}}", []
    for task, names in column_groups(columns):
        group = [max(len(metric), 6) + 2 for metric in names]  # 6 = "100.00"
        group[-1] += max(0, len(task) + 2 - sum(group))  # the task name fits over its columns
        tasks += f"  {task:<{sum(group) - 2}}"
        metrics += "".join(f"{metric:>{w}}" for metric, w in zip(names, group, strict=True))
        widths += group
    lines = [tasks.rstrip(), metrics, "-" * len(metrics)]
    for name, m in rows.items():
        cells = (f"{m[c]:>{w}.2f}" if c in m else f"{'-':>{w}}" for c, w in zip(columns, widths, strict=True))
        lines.append(f"{name:<{width}}" + "".join(cells))
    return "\n".join(lines)


README_MARKER = "demo-table"
README_MARKERS = (f"<!-- {README_MARKER}:start -->", f"<!-- {README_MARKER}:end -->")
"""The README lines around the demo's table."""
"""The README lines between which ``quag demo --write-readme`` writes :func:`markdown_table`."""


def markdown_table(rows: dict[str, dict[str, float]], about: str, columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """The results as Markdown: a line naming the run and the column groups, then one row per system.

    Args:
        rows: system name -> flat metric keys -> value.
        about: what produced the numbers (split, data, seed, config, command).
        columns: metric keys, ``<task>/<metric>``.
    """
    from quag.report import column_groups

    groups = column_groups(columns)
    legend = "; ".join(f"`{task}/`: " + ", ".join(f"`{m}`" for m in names) for task, names in groups)
    header = ["system", *[m for _, names in groups for m in names]]
    lines = [about, "", f"Columns by task: {legend}.", "", "| " + " | ".join(header) + " |"]
    lines.append("|---|" + "---:|" * (len(header) - 1))
    for name, m in rows.items():
        cells = [f"{m[c]:.2f}" if c in m else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


RESULTS_FILE = "demo_results.json"
"""The demo's rows, what produced them and the config hash: ``runs/<name>/demo_results.json`` every run, and
``docs/demo_results.json`` beside the README with ``--write-readme`` (the committed copy the README table is
checked against)."""


def config_hash(cfg: ExperimentConfig) -> str:
    """16 hex digits of SHA-256 over the resolved config's YAML: changes whenever a setting of the run changes."""
    import hashlib

    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()[:16]


def readme_table(results: dict[str, Any]) -> str:
    """The README table of a ``demo_results.json`` object (:func:`markdown_table` of its rows and ``about``)."""
    return markdown_table(results["rows"], results["about"])


def write_readme_table(readme: str | Path, table: str) -> Path:
    """Replace the text between :data:`README_MARKER` in ``readme`` by ``table`` (atomically).

    Raises:
        ValueError: the markers are missing or out of order.
    """
    from quag.io import replace_marked_section

    return replace_marked_section(readme, README_MARKER, table)


def _gt_record(v: Any) -> dict[str, Any]:
    return {
        "video": v.video,
        "query": v.query,
        "duration": v.duration,
        "moment": list(v.bounds),
        "steps": [{"start": s.start, "end": s.end, "sentence": s.caption} for s in v.steps],
    }


def _step_captions(files: list[str]) -> list[str] | None:
    """Every step caption of the decoded split (its ``*_step_captioning.json``), or None if not decoded."""
    import json

    from quag.evaluation.caption_diversity import prediction_captions

    path = next((Path(f) for f in files if f.endswith("_step_captioning.json")), None)
    return None if path is None else prediction_captions(json.loads(path.read_text()))


def run_demo(
    config_path: str | Path = "configs/sim_quag_cpu.yaml",
    overrides: list[str] | None = None,
    report_videos: int = 6,
    progress: bool = True,
    caption_metrics: tuple[str, ...] = ("Bleu_4", "METEOR", "ROUGE_L", "CIDEr"),
    readme: str | Path | None = None,
) -> dict[str, Any]:
    """Run the main job; returns the table rows, the files written and timings.

    With ``readme``, the Markdown table (:func:`markdown_table`) replaces the one between the README's markers.
    """
    import torch

    from quag.checkpoint import load_checkpoint, read_checkpoint_info
    from quag.data import annotations as A
    from quag.data.datasets import make_store
    from quag.data.sim import SimConfig, build_sim
    from quag.evaluation.caption_diversity import caption_diversity
    from quag.inference.api import run_inference
    from quag.inference.runner import predict_end_to_end
    from quag.pipeline.text import MiniLMEncoder
    from quag.report import caption_diversity_html, loss_curves_svg, metrics_table, video_section, write_report
    from quag.training.recipe import train

    timings: dict[str, float] = {}
    cfg: ExperimentConfig = load_config(config_path, overrides)
    root = Path(cfg.data.root)
    t = time.time()
    if not (root / "feature_spec.json").is_file():
        print(f"[1/4] building HiREST-sim in {root} (real annotations, simulated features)")
        build_sim("data/hirest", root, SimConfig(), encode=MiniLMEncoder(), progress=progress)
    else:
        print(f"[1/4] HiREST-sim found in {root}")
    timings["data"] = time.time() - t

    t = time.time()
    last = cfg.run_dir / "checkpoints" / "last"
    best = cfg.run_dir / "checkpoints" / "best"
    resume = None
    if last.is_dir():
        _, _, meta = read_checkpoint_info(last)
        resume = last
        print(f"[2/4] resuming {cfg.name} from {last} (step {meta.step})")
    else:
        print(
            f"[2/4] training {cfg.name} on CPU ({cfg.model.arch}, width {cfg.model.hidden_dim}, "
            f"{cfg.train.epochs} epochs)"
        )
    # a run folder without a checkpoint holds nothing to continue: start over
    train(cfg, resume=resume, device="cpu", progress=progress, overwrite=resume is None)
    timings["train"] = time.time() - t

    t = time.time()
    print(f"[3/4] decoding and scoring the {cfg.data.val_split} split with {best}")
    summary = run_inference(
        best, split=cfg.data.val_split, device="cpu", evaluate=True, progress=progress, caption_metrics=caption_metrics
    )
    rows = {f"QUAG ({cfg.name})": summary["metrics"]}
    store = make_store(cfg.data)
    rows.update(_baseline_rows(str(root), cfg.data.val_split, store.queries(), caption_metrics))
    timings["evaluate"] = time.time() - t
    table = format_table(rows)
    print(f"[4/4] results on HiREST-sim {cfg.data.val_split} (SIMULATED features; seed {cfg.train.seed}):")
    print(table)
    captions = _step_captions(summary["files"])
    if captions is not None:
        print(caption_diversity(captions).summary())
    command = "quag demo" + (f" --config {config_path}" if str(config_path) != "configs/sim_quag_cpu.yaml" else "")
    about = (
        f"`{command}` (= `make demo`) on HiREST-sim {cfg.data.val_split} (simulated features), seed "
        f"{cfg.train.seed}, config `{config_path}`{' with ' + ' '.join(overrides) if overrides else ''}, best "
        f"checkpoint by `val/mean_score`; regenerate with `{command} --write-readme`."
    )
    results = {
        "rows": rows,
        "about": about,
        "config": str(config_path),
        "overrides": list(overrides or []),
        "config_hash": config_hash(cfg),
        "quag_version": __version__,
    }
    markdown = readme_table(results)
    atomic_write_text(cfg.run_dir / "demo_table.md", markdown + "\n")
    atomic_write_json(cfg.run_dir / RESULTS_FILE, results)
    if readme is not None:
        print(f"README table: {write_readme_table(readme, markdown)}")
        print(f"its source: {atomic_write_json(Path(readme).parent / 'docs' / RESULTS_FILE, results)}")

    model, ckpt_cfg, _, _ = load_checkpoint(best, "cpu")
    val = [v for v in A.moment_videos(A.load_split(root, cfg.data.val_split)) if v.steps][:report_videos]
    e2e = predict_end_to_end(model, val, store, ckpt_cfg.data, ckpt_cfg.eval, torch.device("cpu"))
    sections = [
        "<h2>Results (val split)</h2>",
        metrics_table(rows, TABLE_COLUMNS),
        caption_diversity_html(captions) if captions is not None else "",
        "<p>Moment segmentation is scored on our predicted segments of the ground-truth moment, without the "
        "official ground-truth refill; captioning on the ground-truth steps.</p>",
        "<h2>Training losses</h2>",
        loss_curves_svg(cfg.run_dir / "metrics.jsonl"),
        "<h2>End to end: predicted moment -> its steps -> their captions</h2>",
        *[video_section(_gt_record(v), p) for v, p in zip(val, e2e, strict=True)],
    ]
    report = write_report(
        cfg.run_dir / "report.html",
        f"QUAG on HiREST-sim: {cfg.name}",
        sections,
        note="Features are SIMULATED (quag make-sim): these numbers are not comparable with "
        "the QUAG paper or any published HiREST result.",
    )
    print(f"report: {report}")
    print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return {"rows": rows, "report": str(report), "files": summary["files"], "timings": timings}
