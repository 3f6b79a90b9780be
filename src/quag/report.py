"""Self-contained HTML reports: a results table, the training curves and one timeline per video (inline SVG).

No JavaScript and no external files: the page opens anywhere and can be attached to an issue.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quag.io import atomic_write_text

_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}
.note{background:#fff4d6;border:1px solid #e0c26a;padding:.6em 1em;border-radius:4px}
.video{border-top:1px solid #ddd;padding-top:1em;margin-top:1.5em}.q{color:#555}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def column_groups(columns: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Metric keys ``<task>/<metric>`` as ``[(task, [metric, ...]), ...]``: runs of one task, in column order.

    Tables head a column with its key itself, split in two: the task over its run of columns, then the metric.
    """
    groups: list[tuple[str, list[str]]] = []
    for column in columns:
        task, _, metric = column.rpartition("/")
        if groups and groups[-1][0] == task:
            groups[-1][1].append(metric)
        else:
            groups.append((task, [metric]))
    return groups


def metrics_table(rows: dict[str, dict[str, float]], columns: Sequence[str]) -> str:
    """An HTML table: one row per system, one column per metric key (missing values shown as -)."""
    groups = column_groups(columns)
    tasks = "".join(f'<th colspan="{len(metrics)}">{_esc(task)}</th>' for task, metrics in groups)
    metrics = "".join(f"<th>{_esc(metric)}</th>" for _, names in groups for metric in names)
    head = f'<tr><th rowspan="2">system</th>{tasks}</tr><tr>{metrics}</tr>'
    body = []
    for name, m in rows.items():
        cells = "".join(f"<td>{m[c]:.2f}</td>" if c in m else "<td>-</td>" for c in columns)
        body.append(f"<tr><td>{_esc(name)}</td>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def loss_curves_svg(metrics_jsonl: str | Path, width: int = 900, height: int = 240) -> str:
    """Training loss per task over steps, from a run's ``metrics.jsonl``."""
    series: dict[str, list[tuple[float, float]]] = {}
    for line in Path(metrics_jsonl).read_text().splitlines():
        rec = json.loads(line)
        for k, v in rec.items():
            if k.startswith("train/"):
                series.setdefault(k[6:], []).append((float(rec["step"]), float(v)))
    if not series:
        return "<p>no training losses logged</p>"
    xs = [x for s in series.values() for x, _ in s]
    ys = [y for s in series.values() for _, y in s]
    x0, x1, y0, y1 = min(xs), max(xs) or 1.0, min(ys), max(ys)
    pad = 40

    def px(x: float) -> float:
        return pad + (x - x0) / max(x1 - x0, 1e-9) * (width - 2 * pad)

    def py(y: float) -> float:
        return height - pad - (y - y0) / max(y1 - y0, 1e-9) * (height - 2 * pad)

    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="training losses">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>',
        f'<text x="{pad}" y="{height - 10}">step {x0:.0f}</text>',
        f'<text x="{width - pad - 60}" y="{height - 10}">step {x1:.0f}</text>',
        f'<text x="2" y="{pad}">{y1:.2f}</text><text x="2" y="{height - pad}">{y0:.2f}</text>',
    ]
    for i, (name, pts) in enumerate(sorted(series.items())):
        color = _COLORS[i % len(_COLORS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{width - pad - 170}" y="{pad + 14 * i}" fill="{color}">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(
    duration: float, rows: Sequence[tuple[str, Sequence[tuple[float, float, str]]]], width: int = 1000
) -> str:
    """Horizontal timeline: each row is (label, [(start_s, end_s, text), ...]) drawn as coloured spans."""
    left, lane = 130, 30
    height = lane * len(rows) + 30
    scale = (width - left - 10) / max(duration, 1e-9)
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for r, (label, spans) in enumerate(rows):
        y = 10 + r * lane
        parts.append(f'<text x="4" y="{y + 15}">{_esc(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{duration * scale:.1f}" height="20" fill="#f2f2f2"/>')
        for i, (s, e, text) in enumerate(spans):
            x, w = left + s * scale, max((e - s) * scale, 1.5)
            color = _COLORS[i % len(_COLORS)]
            title = f"{s:.0f}-{e:.0f}s {text}".strip()
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" fill="{color}" opacity="0.85">'
                f"<title>{_esc(title)}</title></rect>"
            )
            if text and w > 40:
                short = text if len(text) * 6 < w else text[: max(1, int(w / 6) - 1)] + "…"
                parts.append(f'<text x="{x + 3:.1f}" y="{y + 14}" fill="#fff">{_esc(short)}</text>')
    ticks = max(1, int(duration // 60))
    for t in range(0, ticks + 1):
        x = left + t * 60 * scale
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" fill="#777">{t}:00</text>')
    parts.append("</svg>")
    return "".join(parts)


def video_section(gt: dict[str, Any], pred: dict[str, Any]) -> str:
    """Ground truth vs prediction for one video. ``gt``/``pred``: ``{"moment": [s, e], "steps": [{start, end,
    sentence}]}`` plus ``video``, ``query``, ``duration`` in ``gt``."""
    dur = float(gt["duration"])
    rows = [
        ("GT moment", [(gt["moment"][0], gt["moment"][1], "")]),
        ("predicted moment", [(pred["moment"][0], pred["moment"][1], "")]),
        ("GT steps", [(s["start"], s["end"], s["sentence"]) for s in gt["steps"]]),
        ("predicted steps", [(s["start"], s["end"], s["sentence"]) for s in pred["steps"]]),
    ]
    caps = "".join(
        f"<tr><td>{i + 1}</td><td>{_esc(g['sentence']) if g else ''}</td>"
        f"<td>{_esc(p['sentence']) if p else ''}</td></tr>"
        for i, (g, p) in enumerate(_zip_longest(gt["steps"], pred["steps"]))
    )
    return (
        f'<div class="video"><h3>{_esc(gt["video"])}</h3><p class="q">query: <b>{_esc(gt["query"])}</b>, '
        f"{dur:.0f} s</p>{timeline_svg(dur, rows)}"
        f"<table><tr><th>#</th><th>GT caption</th><th>predicted caption</th></tr>{caps}</table></div>"
    )


def _zip_longest(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[Any, Any]]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n)]


def write_report(path: str | Path, title: str, sections: Sequence[str], note: str | None = None) -> Path:
    """Assemble and write the page atomically."""
    note_html = f'<p class="note">{_esc(note)}</p>' if note else ""
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title><style>{_CSS}</style>"
        f"</head><body><h1>{_esc(title)}</h1>{note_html}{''.join(sections)}</body></html>"
    )
    return atomic_write_text(path, page)
