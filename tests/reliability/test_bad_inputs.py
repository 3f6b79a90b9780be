"""Damaged and unexpected inputs of every kind the project reads: a clear message naming the file, exit status 1 (2 for
a bad argument), no traceback, nothing written.

Items of the reliability issue: 5 (a truncated ``model.safetensors`` given to ``quag predict``), 6 (a video without
speech for a speech-only model), 7 (random bytes in a feature file), 8 (moments outside the video), 9 (``quag
extract`` with failed videos), 10 (an empty query checked before any work).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from quag.checkpoint import CheckpointMeta, save_checkpoint
from quag.config import ExperimentConfig, ModelConfig
from quag.data import annotations as A
from quag.data.features import FeatureError, FeatureSpec, FeatureStore
from quag.evaluation.evaluate import evaluate_files
from quag.models import build_model
from tests.reliability.helpers import FAST, no_traceback, run_cli, write_config

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def speech_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained speech-only checkpoint with MiniLM queries (what the predictor can run on any video)."""
    model_cfg = ModelConfig(
        hidden_dim=32, num_heads=2, ffn_dim=64, num_encoder_layers=1, decoder_layers=1, visual_dim=0, query_dim=384
    )
    spec = FeatureSpec(
        visual_encoder="none",
        visual_dim=0,
        transcript_model="whisper-tiny.en",
        query_encoder="all-MiniLM-L6-v2",
        query_dim=384,
        query_file="query_feats_all-MiniLM-L6-v2.pt",
    )
    path = tmp_path_factory.mktemp("speech") / "checkpoints" / "best"
    return save_checkpoint(path, build_model(model_cfg), ExperimentConfig(model=model_cfg), spec, CheckpointMeta())


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.pipeline.helpers import make_video

    return make_video(tmp_path_factory.mktemp("video") / "silent.mp4", 30, 10)  # 3 s, no audio track


def damaged_copy(checkpoint: Path, tmp_path: Path, name: str, content: bytes | None) -> Path:
    """A copy of ``checkpoint`` with file ``name`` replaced by ``content`` (None: cut to its first half)."""
    copy = tmp_path / "damaged"
    shutil.copytree(checkpoint, copy)
    target = copy / name
    target.write_bytes(content if content is not None else target.read_bytes()[: target.stat().st_size // 2])
    return copy


def predict(video: Path, checkpoint: Path, out: Path, *query: str) -> tuple[int, str, str]:
    queries = [a for q in (query or ("Pour the milk",)) for a in ("-q", q)]
    return run_cli("predict", str(video), *queries, "--checkpoint", str(checkpoint), "--out", str(out), "--no-cache")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("model.safetensors", None, "model.safetensors: cannot be read as safetensors"),
        ("config.yaml", b"model: [unclosed", "config.yaml: not a valid quag config"),
        ("meta.json", b'{"step": 3', "meta.json: not valid JSON"),
        ("feature_spec.json", b"{", "feature_spec.json: not valid JSON"),
    ],
)
def test_damaged_checkpoint_files_given_to_predict(
    speech_checkpoint: Path, silent_video: Path, tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    """Item 5: a truncated ``model.safetensors`` (and the checkpoint's other files) named in one line."""
    damaged = damaged_copy(speech_checkpoint, tmp_path, name, content)
    code, _, err = predict(silent_video, damaged, tmp_path / "out")
    assert code == 1 and no_traceback(err) and len(err.strip().splitlines()) == 1, err
    assert str(damaged / name.split(".")[0]) in err and expected in err
    assert not list((tmp_path / "out").glob("*.json"))


def test_speech_only_model_refuses_a_video_without_speech(
    speech_checkpoint: Path, silent_video: Path, tmp_path: Path
) -> None:
    """Item 6: before, exit 0 with "0 transcript cues" and a moment [0, 0]."""
    code, _, err = predict(silent_video, speech_checkpoint, tmp_path / "out")
    assert code == 1 and no_traceback(err)
    assert "silent.mp4: no speech to read" in err and "speech-only" in err
    assert not (tmp_path / "out" / "silent.json").exists()


def test_arguments_are_checked_before_any_work(
    speech_checkpoint: Path, silent_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 10: an empty query is a usage error (2) before the checkpoint is loaded or the video encoded."""

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr("quag.pipeline.predictor.Predictor.from_checkpoint", no_work)
    code, _, err = predict(silent_video, speech_checkpoint, tmp_path / "out", "crack the eggs", "  ")
    assert code == 2 and "argument --query/-q: empty query" in err
    code, _, err = predict(tmp_path / "missing.mp4", speech_checkpoint, tmp_path / "out")
    assert code == 2 and "missing.mp4 not found" in err
    code, _, err = predict(silent_video, tmp_path, tmp_path / "out")
    assert code == 2 and "holds no model.safetensors" in err


def test_random_bytes_in_a_feature_file(sim_root: Path, tmp_path: Path) -> None:
    """Item 7: our own message, naming the file; none of PyTorch's advice for its own bugs."""
    root = tmp_path / "root"
    shutil.copytree(sim_root, root)
    video = A.load_split(root, "val")[0]
    path = root / "eva_clip_features" / f"{video.video_id}.mp4.pt"
    path.write_bytes(bytes((i * 37 + 11) % 256 for i in range(4096)))
    with pytest.raises(FeatureError) as info:
        FeatureStore(root).visual(video.video, video.num_frames)
    text = str(info.value)
    assert text.startswith(f"{path}: cannot be read as a visual feature file") and "quag extract" in text
    for advice in ("weights_only", "file an issue", "Traceback", "UnpicklingError"):
        assert advice not in text


def test_moments_outside_the_video_are_counted(sim_root: Path, tmp_path: Path) -> None:
    """Item 8: ``[-5, -1]`` and ``[1e9, 2e9]`` are scored as given (IoU 0) and counted, with a warning."""
    videos = [v for v in A.load_split(sim_root, "val") if v.clip]
    preds: dict[str, dict[str, dict[str, list[float]]]] = {}
    for i, v in enumerate(videos):
        bounds = [[-5.0, -1.0], [1e9, 2e9]][i] if i < 2 else list(v.bounds)
        preds.setdefault(v.query, {})[v.video] = {"bounds": bounds}
    pred_file = tmp_path / "pred.json"
    pred_file.write_text(json.dumps(preds))
    gt = sim_root / "splits" / "all_data_val.json"
    report = evaluate_files(pred_file, gt, "moment_retrieval")
    assert report["counts"]["out_of_range"] == 2
    assert report["metrics"]["all"]["R@0.5"] == pytest.approx(100 * (len(videos) - 2) / len(videos))
    assert [item[2] for item in report["out_of_range_items"]] == [[-5.0, -1.0], [1e9, 2e9]]
    code, out, err = run_cli("evaluate", "--task", "moment_retrieval", str(pred_file), str(gt))
    assert code == 0 and "out_of_range 2" in out
    assert "warning: 2 predicted moment(s) lie outside their video" in err


def test_extract_fails_when_a_video_failed(tmp_path: Path) -> None:
    """Item 9: before, exit 0 when 4 of 5 videos failed."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        (videos / f"{name}.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4)
    args = ["extract", str(videos), str(tmp_path / "out"), "--no-progress", "--no-audio", "empty"]
    code, out, err = run_cli(*args)
    assert code == 1 and no_traceback(err) and "2 with failures" in out
    assert "2 of 2 video(s) failed" in err and "--allow-failures" in err and "extraction_failures.json" in err
    assert run_cli(*args, "--allow-failures")[0] == 0


@pytest.mark.parametrize(
    ("kind", "damage", "expected"),
    [
        ("split file", lambda r: (r / "splits" / "all_data_val.json").write_text('{"q": {'), "not valid JSON"),
        ("transcript", lambda r: next((r / "ASR").iterdir()).write_text("1\nnot a time\nhello\n"), "lacks '-->'"),
        ("query file", lambda r: next(r.glob("query_feats_*.pt")).write_bytes(b""), "the file is empty (0 bytes)"),
        ("feature spec", lambda r: (r / "feature_spec.json").write_text("[1, 2]"), "expected a JSON object"),
    ],
)
def test_damaged_dataset_files_stop_training_before_it_writes(
    sim_root: Path, tmp_path: Path, kind: str, damage: object, expected: str
) -> None:
    root = tmp_path / "root"
    shutil.copytree(sim_root, root)
    damage(root)  # type: ignore[operator]
    config = write_config(tmp_path / "tiny.yaml", root, tmp_path / "runs", *FAST)
    code, _, err = run_cli("train", str(config), "--no-progress", "--device", "cpu")
    assert code == 1 and no_traceback(err) and expected in err, (kind, err)
    assert str(root) in err
    assert not (tmp_path / "runs").exists()


def test_damaged_trainer_state_on_resume(sim_root: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", sim_root, tmp_path / "runs", *FAST, "train.max_steps=1")
    assert run_cli("train", str(config), "--no-progress", "--device", "cpu")[0] == 0
    last = tmp_path / "runs" / "tiny" / "checkpoints" / "last"
    state = last / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    config_before = (tmp_path / "runs" / "tiny" / "config.yaml").read_bytes()
    code, _, err = run_cli("train", str(config), "train.max_steps=2", "--resume", str(last), "--device", "cpu")
    assert code == 1 and no_traceback(err)
    assert f"{state}: cannot be read (truncated or damaged)" in err
    assert (tmp_path / "runs" / "tiny" / "config.yaml").read_bytes() == config_before
