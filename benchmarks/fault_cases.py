"""The single cases of the fault-injection suite (``benchmarks/fault_suite.py``): damaged inputs of every kind the
project reads, bad arguments, a finished or held run folder, and full disks (a real tmpfs where one can be mounted,
else simulated)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fault_workspace import Case, Outcome, Workspace, check, finished_outputs_whole, quag, short, start


def damaged_input_cases(ws: Workspace) -> list[Case]:
    import torch

    cases: list[Case] = []
    train = ["--no-progress", "--device", "cpu"]

    def root_case(fault: str, damage: Callable[[Path], Path | None], expect: str, code: int = 1) -> None:
        root = ws.copy_root(f"case{len(cases)}")
        damage(root)
        cfg = ws.config(f"case{len(cases)}", "train.tasks=[moment_retrieval]", root=root)
        cases.append(check(ws, fault, ["train", str(cfg), *train], code, expect, watch=cfg.parent))

    def first(root: Path, folder: str) -> Path:
        return sorted((root / folder).iterdir())[0]

    def tensor(path: Path, t: Any) -> Path:
        torch.save(t, path)
        return path

    vis, emb = "eva_clip_features", "ASR_feats_all-MiniLM-L6-v2"
    root_case("frame features: random bytes", lambda r: first(r, vis).write_bytes(os.urandom(3000)), "not a torch.save")
    root_case(
        "frame features: truncated",
        lambda r: (p := first(r, vis)).write_bytes(p.read_bytes()[:500]),
        "truncated or damaged",
    )
    root_case("frame features: empty file", lambda r: first(r, vis).write_bytes(b""), "empty (0 bytes)")
    root_case(
        "frame features: NaN",
        lambda r: tensor(p := first(r, vis), torch.load(p).index_fill_(0, torch.tensor([0]), float("nan"))),
        "NaN/Inf",
    )
    root_case("frame features: wrong width", lambda r: tensor(first(r, vis), torch.zeros(40, 512)), "rows have 512")
    root_case("frame features: far too few rows", lambda r: tensor(first(r, vis), torch.zeros(2, 1024)), "tolerance")
    root_case("frame features: a list, not a tensor", lambda r: tensor(first(r, vis), ["a.mp4"]), "expected a tensor")
    root_case("frame features: missing", lambda r: first(r, vis).unlink(), "bad feature file")
    root_case("transcript embeddings: random bytes", lambda r: first(r, emb).write_bytes(os.urandom(999)), "torch.save")
    root_case(
        "transcript embeddings: rows != cues",
        lambda r: tensor(first(r, emb), torch.zeros(1, 384)),
        "embedding rows but",
    )
    root_case("transcript: not SRT", lambda r: first(r, "ASR").write_text("1\nnonsense\n"), "lacks '-->'")
    root_case("transcript: not UTF-8", lambda r: first(r, "ASR").write_bytes(b"\xff\xfe\x00bad"), "not UTF-8")
    root_case("transcript: missing", lambda r: first(r, "ASR").unlink(), "not found")
    root_case(
        "query embeddings: truncated",
        lambda r: (p := next(r.glob("query_feats_*.pt"))).write_bytes(p.read_bytes()[:300]),
        "query-embedding file",
    )

    def drop_first_query(root: Path) -> None:
        path = next(root.glob("query_feats_*.pt"))
        obj = torch.load(path)
        tensor(path, {**obj, "queries": obj["queries"][1:], "embeddings": obj["embeddings"][1:]})

    root_case("query embeddings: a query missing", drop_first_query, "no embedding for query")
    root_case("feature_spec.json: broken JSON", lambda r: (r / "feature_spec.json").write_text('{"visual'), "not valid")
    root_case(
        "feature_spec.json: unknown field",
        lambda r: (r / "feature_spec.json").write_text('{"visual_size": 3}'),
        "unknown field",
    )
    root_case(
        "split file: broken JSON", lambda r: (r / "splits" / "all_data_val.json").write_text('{"q": '), "not valid JSON"
    )
    root_case(
        "split file: negative duration",
        lambda r: (p := r / "splits" / "all_data_train.json").write_text(
            p.read_text().replace('"v_duration": ', '"v_duration": -', 1)
        ),
        "v_duration",
    )
    root_case("split file: missing", lambda r: (r / "splits" / "all_data_val.json").unlink(), "not found")

    cfg = ws.config("cfgcase")
    bad_yaml = cfg.parent / "broken.yaml"
    bad_yaml.write_text("model: [unclosed\n")
    cases.append(check(ws, "config: broken YAML", ["train", str(bad_yaml), *train], 1, "not valid YAML"))
    cases.append(check(ws, "config: unknown key", ["train", str(cfg), "model.hiden_dim=8", *train], 1, "Unknown"))
    cases.append(check(ws, "config: bad value", ["train", str(cfg), "train.lr=-1", *train], 1, "train.lr must be"))
    cases.append(check(ws, "config: missing file", ["train", "nope.yaml", *train], 1, "not found"))
    cases.append(
        check(ws, "data root: missing", ["train", str(cfg), "data.root=/nonexistent", *train], 1, "does not exist")
    )
    empty = cfg.parent / "empty.yaml"
    empty.write_text("")
    cases.append(
        check(
            ws,
            "config: all defaults on HiREST-sim",
            ["train", str(empty), f"data.root={ws.root}", *train],
            1,
            "configs/sim_quag_cpu.yaml",
        )
    )

    run_cfg, run = ws.finished()  # its folder, checkpoint and predictions serve the next cases
    cases.append(
        check(
            ws,
            "run folder: a finished run, no --resume",
            ["train", str(run_cfg), *train],
            1,
            "already holds a run",
            watch=run,
        )
    )
    cases.append(
        check(
            ws,
            "run folder: --overwrite with --resume from it",
            ["train", str(run_cfg), "--overwrite", "--resume", str(run / "checkpoints" / "last"), *train],
            1,
            "give only one of them",
            watch=run,
        )
    )
    cases.append(
        check(
            ws,
            "--resume: not a checkpoint",
            ["train", str(run_cfg), "--resume", str(run), *train],
            1,
            "not a quag checkpoint folder",
            watch=run,
        )
    )
    broken = ws.base / "broken-resume"
    shutil.copytree(run / "checkpoints" / "last", broken)
    (broken / "trainer_state.pt").write_bytes((broken / "trainer_state.pt").read_bytes()[:999])
    cases.append(
        check(
            ws,
            "checkpoint: trainer_state.pt truncated (resume)",
            ["train", str(run_cfg), "--overwrite", "--resume", str(broken), *train],
            1,
            "truncated or damaged",
            watch=run,
        )
    )

    speech, video = ws.speech_checkpoint(), ws.videos() / "clip0.mp4"
    for name, content, expect in (
        ("model.safetensors", None, "cannot be read as safetensors"),
        ("config.yaml", b"model: [", "not a valid quag config"),
        ("meta.json", b'{"step"', "not valid JSON"),
        ("feature_spec.json", b"{", "not valid JSON"),
    ):
        damaged = ws.base / f"ckpt-{name}"
        shutil.copytree(speech, damaged)
        f = damaged / name
        f.write_bytes(content if content is not None else f.read_bytes()[: f.stat().st_size // 2])
        cases.append(
            check(
                ws,
                f"checkpoint: {name} {'truncated' if content is None else 'damaged'} (predict)",
                [
                    "predict",
                    str(video),
                    "-q",
                    "stir",
                    "--checkpoint",
                    str(damaged),
                    "--out",
                    str(ws.base / "p"),
                    "--no-cache",
                ],
                1,
                expect,
            )
        )
    predict = ["--checkpoint", str(speech), "--out", str(ws.base / "p"), "--no-cache"]
    cases.append(check(ws, "predict: empty query", ["predict", str(video), "-q", " ", *predict], 2, "empty query"))
    cases.append(check(ws, "predict: missing video", ["predict", "nope.mp4", "-q", "stir", *predict], 2, "not found"))
    cases.append(
        check(
            ws,
            "predict: speech-only model, video without audio",
            ["predict", str(video), "-q", "stir", *predict],
            1,
            "no speech to read",
        )
    )

    pred = run / "predictions" / "val_moment_retrieval.json"
    gt = ws.root / "splits" / "all_data_val.json"
    ev = ["evaluate", "--task", "moment_retrieval"]
    broken_pred = ws.base / "broken.json"
    broken_pred.write_text('{"q": {"v.mp4": {"bounds": [1, "')
    cases.append(check(ws, "predictions: broken JSON", [*ev, str(broken_pred), str(gt)], 1, "not valid JSON"))
    broken_jsonl = ws.base / "broken.jsonl"
    broken_jsonl.write_text('{"query": "q", "video": "v.mp4", "bounds": [1, 2]}\n{"query": \n')
    cases.append(check(ws, "predictions: broken JSONL line", [*ev, str(broken_jsonl), str(gt)], 1, "line 2"))
    nan_pred = ws.base / "nan.json"
    nan_pred.write_text('{"q": {"v.mp4": {"bounds": [NaN, 2]}}}')
    cases.append(check(ws, "predictions: NaN bounds", [*ev, str(nan_pred), str(gt)], 1, "finite"))
    seg_pred = ws.base / "seg.json"
    seg_pred.write_text('{"v.mp4": {"bounds": [[0, 2], [2, 5]]}}')
    cases.append(
        check(ws, "predictions: another task's format", [*ev, str(seg_pred), str(gt)], 1, "moment_segmentation")
    )
    outside = json.loads(pred.read_text())
    for query in list(outside)[:1]:
        for video_key in outside[query]:
            outside[query][video_key]["bounds"] = [-5, -1]
    outside_file = ws.base / "outside.json"
    outside_file.write_text(json.dumps(outside))
    cases.append(check(ws, "predictions: moments outside the video", [*ev, str(outside_file), str(gt)], 0, "outside"))
    broken_gt = ws.base / "gt.json"
    broken_gt.write_text("[")
    cases.append(check(ws, "ground truth: broken JSON", [*ev, str(pred), str(broken_gt)], 1, "not valid JSON"))
    blocker = ws.base / "a-file"
    blocker.write_text("")
    cases.append(
        check(
            ws,
            "--out: inside a file",
            [*ev, str(pred), str(gt), "--out", str(blocker / "r.json")],
            1,
            "cannot write in",
        )
    )

    bad_videos = ws.base / "bad-videos"
    bad_videos.mkdir()
    (bad_videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(2000))
    (bad_videos / "empty.mp4").write_bytes(b"")
    shutil.copy(ws.videos() / "clip1.mp4", bad_videos / "good.mp4")
    ex = ["extract", str(bad_videos), str(ws.base / "bad-out"), "--no-audio", "empty", "--no-progress"]
    cases.append(check(ws, "extract: 2 of 3 videos corrupt or empty", ex, 1, "--allow-failures"))
    cases.append(check(ws, "extract: the same with --allow-failures", [*ex, "--allow-failures"], 0, ""))

    # two trainings into one folder
    hold_cfg = ws.config("held", "train.epochs=50", "train.save_every=0")
    holder = start("train", str(hold_cfg), *train)
    lock = ws.run_dir("held") / "train.lock"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.1)
    cases.append(
        check(
            ws,
            "run folder: a second training while one runs",
            ["train", str(hold_cfg), *train],
            1,
            f"in use by another training (pid {holder.pid}",
        )
    )
    holder.send_signal(signal.SIGINT)
    try:
        _, err = holder.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        holder.kill()
        _, err = holder.communicate()
    cases.append(
        check(
            ws,
            "Ctrl-C (SIGINT) during training",
            [],
            130,
            "interrupted",
            note="the holder of the case above",
            outcome=Outcome(holder.returncode, "", err, 0.0),
        )
    )
    cases[-1].command = short(f"quag train {hold_cfg} --no-progress --device cpu, then SIGINT", ws)
    return cases


# ---------------------------------------------------------------------------------------------------------
# full disks


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[bool]:
    """Mount a tmpfs of ``size`` at ``path``; yields False (and mounts nothing) where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    try:
        yield mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(path)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill the filesystem of ``folder`` (a tmpfs) to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def simulated_full_disk_run(folder: Path, args: list[str]) -> Outcome:
    """``quag ARGS`` in this process with every write under ``folder`` failing with ENOSPC (``open`` and
    ``safetensors`` patched): the stand-in where no tmpfs can be mounted."""
    import builtins
    import io

    import safetensors.torch

    from quag.cli import main

    real_open, real_save = builtins.open, safetensors.torch.save_model

    class Full(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fake_open(file: Any, mode: str = "r", *a: Any, **k: Any) -> Any:
        if any(c in mode for c in "wax") and str(file).startswith(str(folder)):
            real_open(file, mode, *a, **k).close()
            return Full() if "b" in mode else io.TextIOWrapper(Full(), encoding="utf-8", write_through=True)
        return real_open(file, mode, *a, **k)

    def fake_save(model: Any, filename: str, *a: Any, **k: Any) -> None:
        if str(filename).startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(model, filename, *a, **k)

    out, err = io.StringIO(), io.StringIO()
    builtins.open, safetensors.torch.save_model = fake_open, fake_save  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except BaseException as e:  # what a raw traceback would have been
        code, err = 99, io.StringIO(f"Traceback (most recent call last): {e!r}")
    finally:
        builtins.open, safetensors.torch.save_model = real_open, real_save
    return Outcome(code, out.getvalue(), err.getvalue(), 0.0)


def full_disk_cases(ws: Workspace) -> tuple[list[Case], str]:
    train = ["--no-progress", "--device", "cpu"]
    _, run = ws.finished()
    pred = run / "predictions" / "val_moment_retrieval.json"
    gt = ws.root / "splits" / "all_data_val.json"
    cases: list[Case] = []
    mount = ws.base / "full"
    with tmpfs(mount, "8m") as real:
        if real:
            # checkpoint: the first one fits (about 5 MB: moment retrieval only), a second beside it does not
            cfg = ws.config("full-ckpt", "train.tasks=[moment_retrieval]", "train.max_steps=6", out=mount / "runs")
            result = quag("train", str(cfg), "train.save_every=2", *train)
            cases.append(
                check(
                    ws,
                    "full disk: checkpoint save (tmpfs)",
                    [],
                    1,
                    "no space left",
                    outcome=result,
                    note=f"last stays whole: {not finished_outputs_whole(mount / 'runs' / 'tiny')}",
                )
            )
            cases[-1].command = short(f"quag train {cfg} train.save_every=2 --no-progress --device cpu", ws)
            shutil.rmtree(mount / "runs")
            (mount / "report.json").write_text('{"old": "report"}')
            shutil.copy(pred, mount / "val_moment_retrieval.json")
            fill(mount)
            cases.append(
                check(
                    ws,
                    "full disk: report write (tmpfs)",
                    ["evaluate", "--task", "moment_retrieval", str(pred), str(gt), "--out", str(mount / "report.json")],
                    1,
                    "no space left",
                    watch=mount,
                )
            )
            cases.append(
                check(
                    ws,
                    "full disk: prediction writes (tmpfs)",
                    [
                        "infer",
                        str(run / "checkpoints" / "best"),
                        "--tasks",
                        "moment_retrieval",
                        "--out",
                        str(mount),
                        "--device",
                        "cpu",
                    ],
                    1,
                    "no space left",
                    watch=mount,
                )
            )
            (mount / "filler").unlink()
            videos = ws.videos()
            (mount / "ex").mkdir()
            fill(mount)
            cases.append(
                check(
                    ws,
                    "full disk: extraction (tmpfs)",
                    [
                        "extract",
                        str(videos),
                        str(mount / "ex"),
                        "--eva-clip-checkpoint",
                        str(ws.eva_checkpoint()),
                        "--no-audio",
                        "empty",
                        "--no-progress",
                        "--device",
                        "cpu",
                    ],
                    1,
                    "no space left",
                )
            )
            return cases, "tmpfs"
    # simulated: every write under the folder fails
    folder = ws.base / "sim-full"
    folder.mkdir()
    cfg = ws.config("sim-full", "train.tasks=[moment_retrieval]", "train.max_steps=2", out=folder / "runs")
    cases.append(
        check(
            ws,
            "full disk: checkpoint save (simulated)",
            [],
            1,
            "no space left",
            outcome=simulated_full_disk_run(folder / "runs" / "tiny" / "checkpoints", ["train", str(cfg), *train]),
        )
    )
    (folder / "report.json").write_text('{"old": "report"}')
    args = ["evaluate", "--task", "moment_retrieval", str(pred), str(gt), "--out", str(folder / "report.json")]
    cases.append(
        check(
            ws,
            "full disk: report write (simulated)",
            [],
            1,
            "no space left",
            watch=folder,
            outcome=simulated_full_disk_run(folder, args),
        )
    )
    args = [
        "infer",
        str(run / "checkpoints" / "best"),
        "--tasks",
        "moment_retrieval",
        "--out",
        str(folder),
        "--device",
        "cpu",
    ]
    cases.append(
        check(
            ws,
            "full disk: prediction writes (simulated)",
            [],
            1,
            "no space left",
            watch=folder,
            outcome=simulated_full_disk_run(folder, args),
        )
    )
    return cases, "simulated (mount -t tmpfs not allowed here)"
