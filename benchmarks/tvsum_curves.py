"""Plot how TVSum test and leave-one-out validation mAP move over training, from finished protocol and CV runs.

    python benchmarks/tvsum_curves.py            # the default setting's 400-epoch jobs and its CV
    python benchmarks/tvsum_curves.py --jobs runs/tvsum/protocol/xavier_2000 --cv runs/tvsum/cv/screen_xavier.json \
        --out runs/tvsum/curves-2000.svg

One line per seed: the test mAP at each evaluation, averaged over the categories (each category's curve from its
job file ``<jobs>/jobs/seed_<s>/<CAT>.json``); a dashed line: the CV's mean validation mAP over its 40 held-out
training videos. Nothing is trained. Writes the SVG (default ``docs/images/tvsum-curves.svg``) and prints, per
seed, the mean and the range of its averaged curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from quag.io import atomic_write_text
from quag.report import line_chart_svg
from quag.tvsum.config import TVSUM_CATEGORIES

ROOT = Path(__file__).resolve().parents[1]


def seed_curves(jobs_dir: Path) -> dict[int, list[tuple[float, float]]]:
    """``{seed: [(epoch, test mAP averaged over the categories)]}`` of every seed with all 10 categories finished."""
    out = {}
    for seed_dir in sorted((jobs_dir / "jobs").glob("seed_*")):
        files = [seed_dir / f"{c}.json" for c in TVSUM_CATEGORIES]
        if not all(f.is_file() for f in files):
            continue
        curves = [json.loads(f.read_text())["curve"] for f in files]
        epochs = [int(e) for e, _ in curves[0]]
        if any([int(e) for e, _ in c] != epochs for c in curves):
            raise SystemExit(f"{seed_dir}: the categories were evaluated at different epochs; rerun them together")
        mean = np.mean([[m for _, m in c] for c in curves], axis=0)
        out[int(seed_dir.name.split("_")[1])] = [(float(e), float(m)) for e, m in zip(epochs, mean, strict=True)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="runs/tvsum/protocol/xavier", help="protocol run folder (has jobs/)")
    parser.add_argument("--cv", default="runs/tvsum/cv/screen_xavier.json", help="tvsum_cv.py result of the setting")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "tvsum-curves.svg"), help="SVG to write")
    args = parser.parse_args(argv)
    jobs, cv = Path(args.jobs), Path(args.cv)
    if not (jobs / "jobs").is_dir():
        parser.error(f"--jobs {jobs}: no jobs/ folder; run benchmarks/tvsum_protocol.py or tvsum_screen.py first")
    if not cv.is_file():
        parser.error(f"--cv {cv}: not found; run benchmarks/tvsum_cv.py first")
    curves = seed_curves(jobs)
    if not curves:
        parser.error(f"--jobs {jobs}: no seed has all 10 categories finished")
    series = {f"test, seed {s}": pts for s, pts in curves.items()}
    data = json.loads(cv.read_text())
    name = f"validation (CV, seed {data.get('seed', 0)})"
    series[name] = [(float(e), float(m)) for e, m in data["curve"]]
    for key, pts in series.items():
        values = [m for _, m in pts]
        print(f"{key}: mean {np.mean(values):.1f}, range {min(values):.1f}-{max(values):.1f} over the evaluations")
    print(f"{name}: best epoch {data['best_epoch']}")
    svg = line_chart_svg(
        series,
        "epoch",
        "top-5 mAP (%), mean over the categories",
        "TVSum test and leave-one-out validation mAP over training",
        width=1000,
        height=340,
        standalone=True,
        dashed={name},
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, svg + "\n")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
