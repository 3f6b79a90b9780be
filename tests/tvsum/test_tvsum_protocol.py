"""The protocol and screen benchmarks on the synthetic folder: job files, resume, the three rules, docs sections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from quag.io import replace_marked_section
from quag.tvsum.config import TVSUM_CATEGORIES, load_tvsum_config
from quag.tvsum.data import TVSUM_SPLITS, load_tvsum
from quag.tvsum.protocol import (
    LabelFreeRule,
    average_evaluations,
    check_label_free_epoch,
    label_free_from_cv,
)
from quag.tvsum.train import evaluate_map
from tests.helpers import benchmark
from tests.tvsum.helpers import tiny_tvsum_overrides


def args(synthetic: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--name", "t", "--out-dir", str(out), "--epochs", "4", "--eval-every", "2", "--seeds", "0", "1",
        "--categories", "VU", "BK", "--workers", "1", *extra, *tiny_tvsum_overrides(synthetic),
    ]  # fmt: skip


def test_protocol_jobs_resume_and_rules(
    synthetic_tvsum: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    protocol = benchmark("tvsum_protocol")
    out = tmp_path / "p"
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # not the jobs' train.num_threads (1)
    try:
        assert protocol.main(args(synthetic_tvsum, out, "--label-free-epoch", "2")) == 0
        # the in-process jobs give the caller its thread count back (later work in the process depends on it)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    printed = capsys.readouterr().out
    assert "[4/4]" in printed and "ETA" in printed and "label-free rule: --label-free-epoch 2" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["rules"]) == {"protocol", "fixed", "label_free"}
    assert summary["label_free_rule"] == {"epoch": 2, "source": "--label-free-epoch 2"}
    job = json.loads((out / "jobs" / "seed_1" / "VU.json").read_text())
    assert [e for e, _ in job["curve"]] == [2, 4] and job["wall_s"] > 0
    for rule in ("protocol", "fixed", "label_free"):
        preds = json.loads((out / "predictions" / "seed_0" / f"{rule}.json").read_text())
        assert len(preds) == 2
    # The label-free predictions are those of epoch 2; the fixed ones those of epoch 4.
    lf = json.loads((out / "predictions" / "seed_1" / "label_free.json").read_text())
    vid = next(iter(job["predictions_fixed"]))
    if job["best_epoch"] == 2:
        assert lf[vid] == job["predictions_protocol"][vid]
    assert summary["per_seed"]["label_free"]["1"]["VU"] == job["curve"][0][1]
    assert "label-free" in (out / "table.md").read_text() and "QUAG (paper)" in (out / "table.md").read_text()
    # A rerun skips every finished job and says so; the numbers stay.
    before = (out / "jobs" / "seed_0" / "BK.json").read_text()
    assert protocol.main(args(synthetic_tvsum, out, "--label-free-epoch", "4")) == 0
    printed = capsys.readouterr().out
    assert "seed 0: 2 finished job(s) found, skipped" in printed and "[1/" not in printed
    assert (out / "jobs" / "seed_0" / "BK.json").read_text() == before
    # One missing job: only that one reruns, and the seed gets no whole-run wall time.
    (out / "jobs" / "seed_0" / "VU.json").unlink()
    assert protocol.main(args(synthetic_tvsum, out)) == 0
    printed = capsys.readouterr().out
    assert "[1/1] seed 0 VU" in printed and "label-free rule: none" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_s"]["0"]["elapsed_s"] is None and "label_free" not in summary["rules"]
    # The resumed seed still reports the time its jobs took, summed; the other one its wall time as well.
    walls = (out / "table.md").read_text().split("Wall time per seed")[1]
    seed0 = sum(json.loads((out / "jobs" / "seed_0" / f"{c}.json").read_text())["wall_s"] for c in ("VU", "BK"))
    assert f"seed 0: resumed, no single run ({seed0 / 60:.1f} min summed over its jobs)" in walls
    assert "seed 1: " in walls and "seed 1: resumed" not in walls
    # --write-docs fills the section --docs-section names, and only it; finished jobs are not rerun.
    doc = tmp_path / "tvsum.md"
    doc.write_text(
        "<!-- tvsum-protocol:start -->\nkeep\n<!-- tvsum-protocol:end -->\n<!-- p400:start -->\n<!-- p400:end -->\n"
    )
    monkeypatch.setattr(protocol, "DOCS", doc)
    assert protocol.main(args(synthetic_tvsum, out, "--docs-section", "p400", "--write-docs")) == 0
    text = doc.read_text()
    assert "\nkeep\n" in text and "Filled by `python benchmarks/tvsum_protocol.py" in text and "QUAG (paper)" in text
    assert "[1/" not in capsys.readouterr().out
    # A section the docs lack is refused before any job runs, in one line.
    (out / "jobs" / "seed_0" / "VU.json").unlink()
    with pytest.raises(SystemExit) as exit_info:
        protocol.main(args(synthetic_tvsum, out, "--docs-section", "missing", "--write-docs"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--docs-section missing" in err and "<!-- missing:start -->" in err and "Traceback" not in err
    assert not (out / "jobs" / "seed_0" / "VU.json").exists()


def test_label_free_rule_checks(tmp_path: Path) -> None:
    cfg = load_tvsum_config(None, ["train.epochs=20", "train.eval_every=5"])
    check_label_free_epoch(LabelFreeRule(15, "x"), cfg)
    with pytest.raises(ValueError, match="not evaluated"):
        check_label_free_epoch(LabelFreeRule(7, "x"), cfg)
    cv = tmp_path / "cv.json"
    cv.write_text(json.dumps({"best_epoch": 10, "setting_fingerprint": cfg.setting_fingerprint()}))
    assert label_free_from_cv(cv, load_tvsum_config(None, ["train.epochs=400"])).epoch == 10
    with pytest.raises(ValueError, match="another setting"):
        label_free_from_cv(cv, load_tvsum_config(None, ["model.position=qd_detr"]))
    # Under the linear schedule the rate at each epoch depends on the total: a CV of another length is refused.
    linear = load_tvsum_config(None, ["train.epochs=20", "train.lr_schedule=linear"])
    cv.write_text(json.dumps({"best_epoch": 10, "setting_fingerprint": linear.setting_fingerprint()}))
    assert label_free_from_cv(cv, linear).epoch == 10
    with pytest.raises(ValueError, match="another setting"):
        label_free_from_cv(cv, load_tvsum_config(None, ["train.epochs=400", "train.lr_schedule=linear"]))
    cv.write_text(json.dumps({"best_epoch": 10, "setting_fingerprint": cfg.setting_fingerprint()}))
    # The averaging window: both ends evaluated, start first; a CV file without it is refused with the fix.
    check_label_free_epoch(LabelFreeRule(20, "x", start=5), cfg)
    with pytest.raises(ValueError, match="not evaluated"):
        check_label_free_epoch(LabelFreeRule(20, "x", start=3), cfg)
    with pytest.raises(ValueError, match="ends before it starts"):
        check_label_free_epoch(LabelFreeRule(10, "x", start=15), cfg)
    with pytest.raises(ValueError, match="no 'average' result.*rerun benchmarks/tvsum_cv.py"):
        label_free_from_cv(cv, cfg, "average")
    data = json.loads(cv.read_text())
    cv.write_text(json.dumps({**data, "average": {"start_epoch": 5, "end_epoch": 20}}))
    rule = label_free_from_cv(cv, cfg, "average")
    assert (rule.start, rule.epoch) == (5, 20) and "averaging epochs 5-20" in rule.source
    assert rule.to_dict()["start"] == 5 and "start" not in label_free_from_cv(cv, cfg).to_dict()
    with pytest.raises(ValueError, match="choose epoch, average or best"):
        label_free_from_cv(cv, cfg, "top")
    # "best": the rule with the higher mean validation mAP on the CV, the single epoch on a tie.
    for epoch_map, average_map, start in ((55.0, 56.0, 5), (56.0, 56.0, None), (57.0, 56.0, None)):
        content = {**data, "best_mean_map": epoch_map, "average": {"start_epoch": 5, "end_epoch": 20}}
        content["average"]["mean_map"] = average_map
        cv.write_text(json.dumps(content))
        assert label_free_from_cv(cv, cfg, "best").start == start


def test_average_evaluations() -> None:
    # Each evaluation is standardised over the clips before the mean: scale and offset do not matter.
    a = np.array([0.0, 1.0, 2.0, 3.0])
    z = (a - a.mean()) / a.std()
    np.testing.assert_allclose(average_evaluations(np.stack([a, 100 * a - 7])), z)
    # Two evaluations ranking the clips in opposite orders cancel; a constant row adds zeros, not NaN.
    np.testing.assert_allclose(average_evaluations(np.stack([a, -a])), 0.0, atol=1e-12)
    np.testing.assert_allclose(average_evaluations(np.stack([a, np.full(4, 5.0)])), z / 2)
    # A scale-10 evaluation does not outvote a scale-1 one: the order comes from both equally.
    b = np.array([3.0, 2.0, 0.0, 1.0])
    mixed = average_evaluations(np.stack([10 * a, b]))
    np.testing.assert_allclose(mixed, (z + (b - b.mean()) / b.std()) / 2)


def test_cv_and_averaged_label_free_rule(
    synthetic_tvsum: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cv_script, protocol = benchmark("tvsum_cv"), benchmark("tvsum_protocol")
    tiny = tiny_tvsum_overrides(synthetic_tvsum)
    cv_args = ["--name", "c", "--epochs", "6", "--eval-every", "2", "--categories", "VU", "--workers", "1"]
    assert cv_script.main([*tiny, f"output_dir={tmp_path}", *cv_args]) == 0
    out = json.loads((tmp_path / "cv" / "c.json").read_text())
    folds = [f"VU/{v}" for v in TVSUM_SPLITS["VU"]["train"]]
    assert list(out["per_fold_curve"]) == folds and [e for e, _ in out["curve"]] == [2, 4, 6]
    avg = out["average"]
    assert avg["end_epoch"] == 6 and [e for e, _ in avg["curve"]] == [2, 4, 6]
    assert max(m for _, m in avg["curve"]) == avg["mean_map"] == dict(avg["curve"])[avg["start_epoch"]]
    # Averaging from the last epoch alone is that epoch's evaluation.
    assert avg["curve"][-1][1] == pytest.approx(out["final_mean_map"])
    # Every fold is a job with its held-out predictions; a rerun trains nothing.
    held = TVSUM_SPLITS["VU"]["train"][0]
    with np.load(tmp_path / "cv" / "c" / "jobs" / "seed_0" / f"VU_{held}.evals.npz") as z:
        assert z[held].shape[0] == 3
    assert cv_script.main([*tiny, f"output_dir={tmp_path}", *cv_args]) == 0
    assert "4 finished fold(s) found" in capsys.readouterr().err
    # The protocol takes the CV's window; its label-free predictions are the average of those evaluations.
    p_out = tmp_path / "p"
    cv_file = str(tmp_path / "cv" / "c.json")
    run = ["--name", "t", "--out-dir", str(p_out), "--epochs", "6", "--eval-every", "2", "--seeds", "1"]
    run += ["--categories", "VU", "--workers", "1", *tiny]
    assert protocol.main([*run, "--label-free-from", cv_file, "--label-free-kind", "average"]) == 0
    summary = json.loads((p_out / "summary.json").read_text())
    start = avg["start_epoch"]
    assert summary["label_free_rule"]["start"] == start and summary["label_free_rule"]["epoch"] == 6
    video = load_tvsum(synthetic_tvsum, ["VU"], normalize=True)[TVSUM_SPLITS["VU"]["test"][0]]
    with np.load(p_out / "jobs" / "seed_1" / "VU.evals.npz") as z:
        window = z["epochs"] >= start
        expected = average_evaluations(z[video.video_id][window])
    lf = json.loads((p_out / "predictions" / "seed_1" / "label_free.json").read_text())
    np.testing.assert_allclose(lf[video.video_id], expected)
    assert summary["per_seed"]["label_free"]["1"]["VU"] == pytest.approx(evaluate_map(lf, [video]))
    assert f"mean of the standardised evaluations at epochs {start}-6" in (p_out / "table.md").read_text()
    # A window the run does not evaluate is refused in one line, before any job runs.
    with pytest.raises(SystemExit) as exit_info:
        protocol.main([*run, "--label-free-average", "3", "6"])
    assert exit_info.value.code == 2 and "label-free epoch 3 is not evaluated" in capsys.readouterr().err


def test_marked_section(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text("a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n")
    replace_marked_section(doc, "x", "new table")
    assert doc.read_text() == "a\n<!-- x:start -->\nnew table\n<!-- x:end -->\nb\n"
    with pytest.raises(ValueError, match="needs the lines"):
        replace_marked_section(doc, "y", "t")


def test_screen_runs_variants(synthetic_tvsum: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    screen = benchmark("tvsum_screen")
    out = tmp_path / "s"
    # overrides first: --variants and --combine take every word after them
    argv = [
        *tiny_tvsum_overrides(synthetic_tvsum),
        *args(synthetic_tvsum, out)[: -len(tiny_tvsum_overrides(synthetic_tvsum))],
    ]
    argv += ["--variants", "base", "global_token", "--combine", "tokens+position"]
    assert screen.main([*argv, "--label-free-epoch", "2", "--base-seeds", "0", "1", "2"]) == 0
    table = (out / "screen.md").read_text()
    assert "| base | - | 0 1 2 |" in table and "| tokens+position |" in table and "no CV of its own" in table
    assert "| global_token | `model.saliency_head=global_token` | 0 1 |" in table
    assert (out / "tokens+position" / "jobs" / "seed_1" / "BK.json").is_file()
    assert (out / "base" / "jobs" / "seed_2" / "BK.json").is_file()
    assert not (out / "global_token" / "jobs" / "seed_2").exists()
    capsys.readouterr()
    assert screen.main([*argv, "--print-cv-commands"]) == 0
    printed = capsys.readouterr().out
    assert "tvsum_cv.py --name screen_global_token" in printed and "  " not in printed
    # A variant with a CV file of its own takes its averaging window from it; the others keep --label-free-epoch.
    cv_dir = tmp_path / "cv"
    cv_dir.mkdir()
    base_cfg = load_tvsum_config(str(out / "base" / "config.yaml"))
    fingerprint = base_cfg.setting_fingerprint()
    average = {"start_epoch": 2, "end_epoch": 4}
    (cv_dir / "screen_base.json").write_text(
        json.dumps({"best_epoch": 2, "setting_fingerprint": fingerprint, "average": average})
    )
    rerun = [*argv, "--label-free-epoch", "2", "--base-seeds", "0", "1", "2", "--label-free-cv-dir", str(cv_dir)]
    assert screen.main([*rerun, "--label-free-kind", "average"]) == 0
    table = (out / "screen.md").read_text()
    assert "| base | - | 0 1 2 |" in table and "mean of the standardised evaluations at epochs 2-4 (CV " in table
    assert "| global_token |" in table and "epoch 2 (--label-free-epoch 2, no CV of its own)" in table
    # Every variant is also scored at the common epoch: for the base, the mean of its jobs' mAP at epoch 2.
    assert "| At epoch 2 |" in table
    rows = {r["variant"]: r for r in json.loads((out / "screen.json").read_text())["variants"]}
    jobs = [json.loads(f.read_text()) for f in sorted((out / "base" / "jobs").glob("seed_*/*.json"))]
    at_2 = [m for job in jobs for e, m in job["curve"] if e == 2]
    assert len(at_2) == 6 and rows["base"]["common_epoch"]["stats"]["Avg."]["mean"] == pytest.approx(sum(at_2) / 6)
    assert "[1/" not in capsys.readouterr().out  # nothing retrained
    # The default is chosen on the seeds every variant ran: the base's label-free mean over seeds 0 and 1 only.
    per_seed = rows["base"]["summary"]["per_seed"]["label_free"]
    on_01 = sum(sum(per_seed[s].values()) / len(per_seed[s]) for s in ("0", "1")) / 2
    assert "| Label-free, seeds 0 1 |" in table
    assert f"| {rows['base']['summary']['rules']['label_free']['Avg.']['mean']:.1f} ± " in table
    assert f" | {on_01:.1f} | " in table.split("| base |")[1].splitlines()[0]
    # A runner-up can be given the base's seeds; a name that is not screened is refused.
    assert screen.main([*rerun, "--base-seeds-for", "global_token"]) == 0
    assert (out / "global_token" / "jobs" / "seed_2" / "BK.json").is_file()
    assert "| global_token | `model.saliency_head=global_token` | 0 1 2 |" in (out / "screen.md").read_text()
    with pytest.raises(SystemExit):
        screen.main([*rerun, "--base-seeds-for", "position"])
    assert "--base-seeds-for position: not among --variants/--combine" in capsys.readouterr().err


def test_curves_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curves = benchmark("tvsum_curves")
    run = tmp_path / "run"
    for i, cat in enumerate(TVSUM_CATEGORIES):
        job = run / "jobs" / "seed_3" / f"{cat}.json"
        job.parent.mkdir(parents=True, exist_ok=True)
        job.write_text(json.dumps({"curve": [[5, 40.0 + i], [10, 60.0 + i]]}))
    (run / "jobs" / "seed_4").mkdir()  # an unfinished seed is left out
    cv = tmp_path / "cv.json"
    cv.write_text(json.dumps({"seed": 0, "curve": [[5, 50.0], [10, 52.0]], "best_epoch": 10}))
    out = tmp_path / "c.svg"
    assert curves.main(["--jobs", str(run), "--cv", str(cv), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test, seed 3: mean 54.5, range 44.5-64.5" in printed and "seed 4" not in printed
    svg = out.read_text()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and "<style>" in svg
    assert "test, seed 3" in svg and "validation (CV, seed 0)" in svg and 'stroke-dasharray="6 4"' in svg
    with pytest.raises(SystemExit) as exit_info:
        curves.main(["--jobs", str(tmp_path / "none"), "--cv", str(cv), "--out", str(out)])
    assert exit_info.value.code == 2 and "no jobs/ folder" in capsys.readouterr().err
