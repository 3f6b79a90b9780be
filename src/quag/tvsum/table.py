"""Our TVSum numbers beside the paper's Table 5: mean +- std over seeds, per category and on average.

The "Avg." of a seed is the mean of its 10 category mAPs; the table gives the mean and the sample standard
deviation (ddof = 1; 0 for a single seed) over seeds of every column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from quag.io import atomic_write_json, atomic_write_text
from quag.tvsum.config import TVSUM_CATEGORIES, TVSumConfig

PAPER_TABLE5: dict[str, dict[str, float]] = {
    name: dict(zip((*TVSUM_CATEGORIES, "Avg."), values, strict=True))
    for name, values in {
        "TGG": (85.0, 71.4, 81.9, 78.6, 80.2, 75.5, 71.6, 77.3, 78.6, 68.1, 76.8),
        "UMT": (87.5, 81.5, 88.2, 78.8, 81.4, 87.0, 76.0, 86.9, 84.4, 79.6, 83.1),
        "QD-DETR": (87.6, 91.7, 90.2, 88.3, 84.1, 88.3, 78.7, 91.2, 87.8, 77.7, 86.6),
        "UVCOM": (87.6, 91.6, 91.4, 86.7, 86.9, 86.9, 76.9, 92.3, 87.4, 75.6, 86.3),
        "TR-DETR": (90.6, 92.4, 91.7, 81.3, 86.9, 85.5, 79.8, 93.4, 88.3, 81.0, 87.1),
        "QUAG (paper)": (89.8, 93.1, 92.9, 85.6, 87.9, 86.1, 76.7, 91.4, 89.0, 77.7, 87.0),
    }.items()
}
"""Paper Table 5, top-5 mAP (%) per category (columns in the paper's order) and the average."""


class _HasMaps(Protocol):
    protocol_map: float
    fixed_map: float
    wall_s: float


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def summarize(results: Mapping[int, Mapping[str, _HasMaps]], kind: str) -> dict[str, dict[str, float]]:
    """``{column: {"mean", "std", "n"}}`` over seeds for ``kind`` in ``protocol`` / ``fixed``.

    Columns are the categories present in every seed plus ``Avg.`` (the per-seed mean over those categories).
    """
    if kind not in ("protocol", "fixed"):
        raise ValueError(f"kind must be 'protocol' or 'fixed', got {kind!r}")
    return summarize_scores(
        {s: {c: getattr(r, f"{kind}_map") for c, r in by_category.items()} for s, by_category in results.items()}
    )


def summarize_scores(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{column: {"mean", "std", "n"}}`` over seeds of ``{seed: {category: mAP}}``.

    Columns are the categories present in every seed plus ``Avg.`` (each seed's mean over those categories).
    """
    seeds = sorted(per_seed)
    categories = [c for c in TVSUM_CATEGORIES if all(c in per_seed[s] for s in seeds)]
    columns: dict[str, list[float]] = {c: [per_seed[s][c] for s in seeds] for c in categories}
    columns["Avg."] = [sum(per_seed[s][c] for c in categories) / len(categories) for s in seeds]
    out = {}
    for col, vals in columns.items():
        mean, std = mean_std(vals)
        out[col] = {"mean": mean, "std": std, "n": len(vals)}
    return out


def mean_std_cell(stat: Mapping[str, float]) -> str:
    """A :func:`summarize_scores` entry as a table cell: ``mean ± std``, or the mean alone for one seed (it has no
    spread to show); an entry without ``n`` (older summaries) counts as several seeds."""
    return f"{stat['mean']:.1f}" if stat.get("n", 2) < 2 else f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def markdown_table(
    summaries: Mapping[str, Mapping[str, Mapping[str, float]]],
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> str:
    """The paper's rows, optional reference rows (plain numbers), then one row per summary as ``mean ± std``.

    Args:
        summaries: name -> :func:`summarize` output.
        references: name -> {column: value}, e.g. :func:`annotator_mean_reference`.
    """
    cols = [*TVSUM_CATEGORIES, "Avg."]
    lines = ["| Model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in {**PAPER_TABLE5, **(references or {})}.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.1f}" if c in row else "-" for c in cols) + " |")
    for name, summary in summaries.items():
        cells = [f"{summary[c]['mean']:.1f} ± {summary[c]['std']:.1f}" if c in summary else "-" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def annotator_mean_reference(videos: Mapping[str, Any]) -> dict[str, float]:
    """Top-5 mAP (%) of the test videos when the "prediction" is the mean annotator score itself.

    Not a method (it reads the test labels): it shows how high the metric goes for the human consensus, the
    scale against which the peers' best-of-many-evaluations numbers should be read.

    Args:
        videos: video id -> :class:`~quag.tvsum.data.TVSumVideo` holding every test video of the categories.
    """
    from quag.tvsum.data import TVSUM_SPLITS
    from quag.tvsum.metrics import top5_map

    row = {}
    for cat in TVSUM_CATEGORIES:
        test = [videos[v] for v in TVSUM_SPLITS[cat]["test"] if v in videos]
        if test:
            preds = {v.video_id: v.saliency_target() for v in test}
            row[cat] = 100.0 * top5_map(preds, {v.video_id: v.annotations for v in test})
    if row:
        row["Avg."] = sum(row.values()) / len(row)
    return row


def write_summary(
    cfg: TVSumConfig,
    results: Mapping[int, Mapping[str, _HasMaps]],
    wall_s: Mapping[int, float | None],
    references: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """Write ``summary.json`` and ``table.md`` in the run folder; returns the summary.

    Args:
        cfg: The run's config.
        results: seed -> category -> result.
        wall_s: seed -> wall time of a full (not resumed) run of the seed, or None.
        references: Extra fixed rows for the table (name -> {column: value}).
    """
    protocol, fixed = summarize(results, "protocol"), summarize(results, "fixed")
    wall = {str(s): wall_s.get(s) for s in sorted(results)}
    seeds = ", ".join(str(s) for s in sorted(results))
    summary = {
        "name": cfg.name,
        "seeds": sorted(results),
        "fingerprint": cfg.training_fingerprint(),
        "protocol": protocol,
        "fixed": fixed,
        "wall_s_per_seed": wall,
        "references": dict(references or {}),
        "per_seed": {
            str(s): {
                "protocol": {c: r.protocol_map for c, r in cats.items()},
                "fixed": {c: r.fixed_map for c, r in cats.items()},
            }
            for s, cats in sorted(results.items())
        },
    }
    text = (
        f"# TVSum top-5 mAP (%), run `{cfg.name}`, seeds {seeds}: mean ± std over seeds\n\n"
        "protocol = best test-video mAP over evaluations every "
        f"{cfg.train.eval_every} epochs (the peers' practice); fixed = after the last epoch ({cfg.train.epochs}).\n\n"
        + markdown_table({"QUAG (ours, protocol)": protocol, "QUAG (ours, fixed)": fixed}, references)
        + f"\nWall time per seed ({cfg.train.workers} worker process(es) x {cfg.train.num_threads} thread(s)): "
        + ", ".join(f"seed {s}: " + ("resumed" if w is None else f"{w / 60:.1f} min") for s, w in wall.items())
        + "\n"
    )
    atomic_write_json(cfg.run_dir / "summary.json", summary)
    atomic_write_text(cfg.run_dir / "table.md", text)
    return summary
