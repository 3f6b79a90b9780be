"""Self-contained HTML reports: a results table, the training curves and one timeline per video (inline SVG).

No JavaScript and no external files: the page opens anywhere and can be attached to an issue. :data:`STYLE` is
also the stylesheet of the ``quag serve`` page, so reports and the app look alike.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from quag.io import atomic_write_text

COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
"""Span and curve colours, in order (Tableau 10); step i of a timeline and row i of its caption table share one."""
_CUE_COLORS = ("#b8c7d9", "#d3dde8")
"""Transcript cues alternate between two quiet tones, so they never read as steps."""
_CHAR_PX = 6.6
"""Average width of a character at the 12 px label size, to decide whether a label fits its span."""

STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d0d7de;--soft:#f6f8fa;--accent:#4e79a7}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:1.5em 2em;
max-width:1200px;color:var(--fg);line-height:1.45}
h1{font-size:1.5em;margin:.3em 0 .6em}h2{font-size:1.2em;margin-top:1.8em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--soft)}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.wide{overflow-x:auto;max-width:100%}
.note{background:#fff8c5;border:1px solid #e0c26a;padding:.6em 1em;border-radius:6px}
.video{border-top:1px solid var(--line);padding-top:1em;margin-top:1.5em}.q{color:var(--muted)}
svg.chart{display:block;width:100%;height:auto}svg text{font-size:12px;font-family:system-ui,sans-serif;fill:#333}
svg .tick{fill:var(--muted)}svg .grid{stroke:#e6e9ed}svg .axis{stroke:#8c959f}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.45em;vertical-align:-.05em}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def plural(n: int, word: str) -> str:
    """``1 step``, ``2 steps``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """About ``target`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 10) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def time_ticks(duration: float, most: int = 10) -> list[float]:
    """Tick times for a video of ``duration`` seconds: a round step (1 s ... 1 h) giving at most ``most`` + 1."""
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    step = next((s for s in steps if duration / s <= most), 3600 * math.ceil(duration / 3600 / most))
    return [float(t) for t in range(0, int(duration) + 1, step)]


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), whole seconds rounded down as video players show them."""
    s = max(0, math.floor(seconds + 1e-6))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


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
    """An HTML table: one row per system, one column per metric key (missing values shown as -).

    The task heads its run of columns and each column shows only the metric, so ten metrics fit 1000 px; the
    table scrolls sideways inside its own box rather than pushing the page wider.
    """
    groups = column_groups(columns)
    tasks = "".join(f'<th colspan="{len(metrics)}">{_esc(task)}</th>' for task, metrics in groups)
    metrics = "".join(f'<th class="num">{_esc(metric)}</th>' for _, names in groups for metric in names)
    head = f'<tr><th rowspan="2">system</th>{tasks}</tr><tr>{metrics}</tr>'
    body = []
    for name, m in rows.items():
        cells = "".join(f'<td class="num">{m[c]:.2f}</td>' if c in m else '<td class="num">-</td>' for c in columns)
        body.append(f"<tr><td>{_esc(name)}</td>{cells}</tr>")
    return f'<div class="wide"><table>{head}{"".join(body)}</table></div>'


def read_loss_curves(metrics_jsonl: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Training loss per task, ``{task: [(step, loss), ...]}``, from a run's ``metrics.jsonl``.

    Each logged value is the mean over the steps since the previous log. The record written when training stops
    between two regular logs averages only those last few steps (often one): a series' final point whose step gap
    is under half the series' usual gap is left out, as it is noise rather than a trend.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for line in Path(metrics_jsonl).read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        for k, v in rec.items():
            if k.startswith("train/"):
                series.setdefault(k[6:], []).append((float(rec["step"]), float(v)))
    for points in series.values():
        if len(points) >= 3:
            gaps = sorted(b[0] - a[0] for a, b in zip(points, points[1:], strict=False))
            usual = gaps[len(gaps) // 2]
            if points[-1][0] - points[-2][0] < usual / 2:
                points.pop()
    return series


def loss_curves_svg(metrics_jsonl: str | Path, width: int = 1000, height: int = 300) -> str:
    """Training loss per task over steps, from a run's ``metrics.jsonl`` (see :func:`read_loss_curves`)."""
    series = read_loss_curves(metrics_jsonl)
    if not series:
        return "<p>no training losses logged</p>"
    return line_chart_svg(
        dict(sorted(series.items())),
        "training step",
        "loss (mean since the previous log)",
        "training losses per task",
        width,
        height,
    )


SVG_FILE_STYLE = (
    "text{font-size:12px;font-family:system-ui,sans-serif;fill:#333}.tick{fill:#59636e}"
    ".grid{stroke:#e6e9ed}.axis{stroke:#8c959f}"
)
"""The chart classes of :data:`STYLE`, for an SVG file that stands alone (no page around it)."""


def line_chart_svg(
    series: dict[str, Sequence[tuple[float, float]]],
    x_label: str,
    y_label: str,
    label: str,
    width: int = 1000,
    height: int = 300,
    standalone: bool = False,
    dashed: Collection[str] = (),
) -> str:
    """Lines of ``(x, y)`` points on round ticks, one colour each, with a legend on the right.

    Args:
        series: ``{legend name: points}`` in legend order.
        x_label: Title of the x axis.
        y_label: Title of the y axis.
        label: What the chart shows (its accessible name).
        width: viewBox width.
        height: viewBox height.
        standalone: An SVG file of its own (namespace, styles and a white background) rather than markup inside
            a page that carries :data:`STYLE`.
        dashed: Names of the series drawn dashed.
    """
    xs = [x for s in series.values() for x, _ in s]
    ys = [y for s in series.values() for _, y in s]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y_ticks = nice_ticks(min(ys), max(ys))
    y0, y1 = min(y_ticks[0], min(ys)), max(y_ticks[-1], max(ys), min(ys) + 1e-6)
    legend_w = max(190, 24 + 7 * max(len(n) for n in series))
    left, right, top, bottom = 64, legend_w, 14, 48  # room for tick labels and the axis titles; the legend on the right
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    head = f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(label)}">'
    if standalone:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{_esc(label)}"><style>{SVG_FILE_STYLE}</style>'
            f'<rect width="{width}" height="{height}" fill="#fff"/>'
        )
    parts = [head]
    for t in y_ticks:
        y = py(t)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in nice_ticks(x0, x1, 8):
        x = px(t)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t:g}</text>')
    parts += [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">{_esc(x_label)}</text>',
        f'<text transform="translate(16 {top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
        f"{_esc(y_label)}</text>",
    ]
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="6 4"' if name in dashed else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{path}"/>')
        ly = top + 8 + 20 * i
        parts.append(f'<rect x="{left + plot_w + 16}" y="{ly - 9}" width="14" height="4" fill="{color}"/>')
        parts.append(f'<text x="{left + plot_w + 36}" y="{ly - 3}">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(
    duration: float,
    rows: Sequence[tuple[str, Sequence[tuple[float, float, str]]]],
    width: int = 1000,
    numbered: Collection[str] | None = None,
) -> str:
    """Horizontal timeline: each row is (label, [(start_s, end_s, text), ...]) drawn as coloured spans.

    Spans of a numbered row (default: rows whose label ends in "steps") are coloured in order (:data:`COLORS`) and
    show their text when it fits, else their number, so a caption is never cut: the full text is in the span's
    tooltip and in the numbered table under the timeline. Other rows show text only where it fits whole.

    Args:
        duration: seconds; the axis runs from 0 to it, with round ticks (:func:`time_ticks`).
        rows: lanes, top to bottom.
        width: width of the drawing in SVG units (it scales to the page).
        numbered: labels of the rows to number.
    """
    left, lane = 130, 30
    height = lane * len(rows) + 34
    scale = (width - left - 16) / max(duration, 1e-9)
    numbered_rows = {label for label, _ in rows if label.endswith("steps")} if numbered is None else set(numbered)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="timeline">']
    axis_y = 10 + len(rows) * lane
    for t in time_ticks(duration):
        x = left + t * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{axis_y}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">{clock(t)}</text>')
    for r, (label, spans) in enumerate(rows):
        y = 10 + r * lane
        parts.append(f'<text x="4" y="{y + 15}">{_esc(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{duration * scale:.1f}" height="20" fill="#eef1f4"/>')
        is_numbered = label in numbered_rows
        for i, (start, end, text) in enumerate(spans):
            s = min(max(start, 0.0), duration)  # a cue may run past the video's end: keep it on the axis
            e = min(max(end, s), duration)
            x, w = left + s * scale, max((e - s) * scale, 3.0)
            if is_numbered or len(spans) == 1:
                color, ink = COLORS[i % len(COLORS)], "#fff"
            else:
                color, ink = _CUE_COLORS[i % 2], "#1f2328"
            title = f"{f'{i + 1}. ' if is_numbered else ''}{clock(s)}-{clock(e)} {text}".strip()
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" fill="{color}">'
                f"<title>{_esc(title)}</title></rect>"
            )
            shown = f"{i + 1}. {text}" if is_numbered and text else text
            if shown and len(shown) * _CHAR_PX + 6 > w:
                shown = str(i + 1) if is_numbered else ""
            if shown and len(shown) * _CHAR_PX + 6 <= w:
                parts.append(f'<text x="{x + 3:.1f}" y="{y + 14}" style="fill:{ink}">{_esc(shown)}</text>')
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

    def cell(step: dict[str, Any] | None, i: int) -> str:
        if step is None:
            return "<td></td>"
        swatch = f'<span class="swatch" style="background:{COLORS[i % len(COLORS)]}"></span>'
        return f"<td>{swatch}{_esc(step['sentence'])}</td>"

    caps = "".join(
        f'<tr><td class="num">{i + 1}</td>{cell(g, i)}{cell(p, i)}</tr>'
        for i, (g, p) in enumerate(_zip_longest(gt["steps"], pred["steps"]))
    )
    return (
        f'<div class="video"><h3>{_esc(gt["video"])}</h3><p class="q">query: <b>{_esc(gt["query"])}</b>, '
        f"{clock(dur)} ({dur:.0f} s)</p>{timeline_svg(dur, rows)}"
        f"<table><tr><th>#</th><th>GT caption</th><th>predicted caption</th></tr>{caps}</table></div>"
    )


def _zip_longest(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[Any, Any]]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None) for i in range(n)]


def write_report(path: str | Path, title: str, sections: Sequence[str], note: str | None = None) -> Path:
    """Assemble and write the page atomically."""
    note_html = f'<p class="note">{_esc(note)}</p>' if note else ""
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_esc(title)}</title><style>{STYLE}</style>"
        f"</head><body><h1>{_esc(title)}</h1>{note_html}{''.join(sections)}</body></html>"
    )
    return atomic_write_text(path, page)


def caption_diversity_html(captions: Sequence[str]) -> str:
    """One paragraph: distinct captions / steps, highlighted when one caption covers most steps
    (:mod:`quag.evaluation.caption_diversity`)."""
    from quag.evaluation.caption_diversity import caption_diversity

    d = caption_diversity(captions)
    text = f"Step captions: {d.summary()}."
    if d.repetitive:
        text += " Its caption scores mostly reward frequent words, not descriptions of the steps."
    return f'<p class="note">{_esc(text)}</p>' if d.repetitive else f"<p>{_esc(text)}</p>"
