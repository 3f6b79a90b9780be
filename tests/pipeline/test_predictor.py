"""``Predictor`` and ``quag predict`` on generated videos with a tiny EVA-CLIP tower and tiny random QUAG checkpoints:
the end-to-end files, encode once / predict many, the feature cache, and the refusals."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from quag.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from quag.cli import main
from quag.config import EvalConfig, ExperimentConfig, ModelConfig
from quag.data.features import FeatureError, FeatureSpec
from quag.data.sim import SIM_SPEC
from quag.models import build_model
from quag.pipeline.asr import WhisperTranscriber
from quag.pipeline.extract import ExtractOptions, FeatureExtractor
from quag.pipeline.predictor import Prediction, Predictor, Step
from quag.pipeline.text import MiniLMEncoder
from tests.pipeline.helpers import TINY_EVA, load_speech, make_video

FAST_WHISPER = ["--whisper-compute-type", "int8"]
MINILM_QUERIES = dict(query_encoder="all-MiniLM-L6-v2", query_dim=384, query_file="query_feats_all-MiniLM-L6-v2.pt")
RECORD_KEYS = {"video", "query", "duration", "moment", "steps"}


def tiny_quag_checkpoint(path: Path, spec: FeatureSpec, seed: int = 0) -> Path:
    """A randomly initialised tiny QUAG whose input widths are those of ``spec`` (the pipeline is under test, not
    the model)."""
    import torch

    model_cfg = ModelConfig(
        hidden_dim=32,
        num_heads=2,
        ffn_dim=64,
        num_encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        visual_dim=spec.visual_dim,
        query_dim=spec.query_dim,
    )
    cfg = ExperimentConfig(
        name="tiny",
        model=model_cfg,
        eval=EvalConfig(batch_size=2, num_beams=1, max_caption_tokens=6, segmentation_min_gap=2),
    )
    torch.manual_seed(seed)
    return save_checkpoint(path, build_model(model_cfg), cfg, spec, CheckpointMeta())


def visual_spec(**query: object) -> FeatureSpec:
    """What ``quag extract`` with the tiny EVA-CLIP tower and Whisper tiny.en writes (+ query fields)."""
    return FeatureSpec(
        visual_encoder=TINY_EVA.name, visual_dim=TINY_EVA.embed_dim, transcript_model="whisper-tiny.en", **query
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def talk_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s at 4 fps with the speech clip twice (seconds 0-3 and 4-7)."""
    speech = load_speech()
    audio = np.concatenate([speech, np.zeros(16000, np.float32), speech])
    return make_video(tmp_path_factory.mktemp("videos") / "talk.mp4", 32, 4, audio=audio)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {
        "minilm": tiny_quag_checkpoint(root / "minilm", visual_spec(**MINILM_QUERIES)),
        "eva_text": tiny_quag_checkpoint(
            root / "eva_text",
            visual_spec(
                query_encoder=f"{TINY_EVA.name}-text",
                query_dim=TINY_EVA.embed_dim,
                query_file=f"query_feats_{TINY_EVA.name}-text.pt",
            ),
        ),
        "g14": tiny_quag_checkpoint(root / "g14", FeatureSpec(transcript_model="whisper-tiny.en", **MINILM_QUERIES)),
        "sim": tiny_quag_checkpoint(root / "sim", SIM_SPEC),
        "speech_eva_text": tiny_quag_checkpoint(
            root / "speech_eva_text",
            FeatureSpec(
                visual_encoder="none",
                visual_dim=0,
                transcript_model="whisper-tiny.en",
                query_encoder=f"{TINY_EVA.name}-text",
                query_dim=TINY_EVA.embed_dim,
            ),
        ),
    }


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


def make_predictor(
    ckpt: Path, eva: Path, transcriber: WhisperTranscriber, minilm: MiniLMEncoder, cache: Path | None = None
) -> Predictor:
    """A predictor built from its parts, sharing the session's Whisper and MiniLM (the constructor path)."""
    model, cfg, spec, _ = load_checkpoint(ckpt)
    options = ExtractOptions(eva_clip_checkpoint=eva, no_audio="empty")
    extractor = FeatureExtractor(options, transcriber=transcriber, embedder=minilm)
    return Predictor(model, cfg, spec, extractor, eva_clip_checkpoint=eva, cache_dir=cache)


def check_record(record: dict[str, object], query: str, duration: float) -> None:
    assert set(record) == RECORD_KEYS and record["video"] == "talk.mp4" and record["query"] == query
    assert record["duration"] == pytest.approx(duration)
    s, e = record["moment"]  # type: ignore[misc]
    assert 0 <= s <= e <= duration
    steps = record["steps"]
    assert steps and steps[-1]["end"] == e  # type: ignore[index]
    for step in steps:  # type: ignore[attr-defined]
        assert set(step) == {"start", "end", "sentence"} and isinstance(step["sentence"], str)
        # the reference's boundary walk may include one frame before the moment start (not clipped)
        assert s - 1 <= step["start"] <= step["end"] <= e
    for a, b in zip(steps[:-1], steps[1:], strict=True):  # type: ignore[index]
        assert a["end"] == b["start"]


def test_quag_predict_writes_json_and_html(
    talk_video: Path, checkpoints: dict[str, Path], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    queries = ["Pour the milk into a bowl", "Stir it"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(
            [
                "predict",
                str(talk_video),
                "--query",
                queries[0],
                "-q",
                queries[1],
                "--checkpoint",
                str(checkpoints["minilm"]),
                "--eva-clip-checkpoint",
                str(tiny_checkpoint),
                "--out",
                str(out),
                "--cache-dir",
                str(tmp_path / "cache"),
                *FAST_WHISPER,
            ]
        )
    assert rc == 0
    records = json.loads((out / "talk.json").read_text())
    assert [r["query"] for r in records] == queries
    for r, q in zip(records, queries, strict=True):
        check_record(r, q, 8.0)
    page = (out / "talk.html").read_text()
    assert page.count("<svg") == 2 and all(q in page for q in queries)
    assert "transcript" in page and "milk" in page.lower()  # the transcript lane holds the cues
    printed = buffer.getvalue()
    assert "frames + speech" in printed and f"query {queries[1]!r}: moment" in printed and "talk.html" in printed
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1


def test_encode_once_predict_many(
    talk_video: Path,
    checkpoints: dict[str, Path],
    tiny_checkpoint: Path,
    transcriber: WhisperTranscriber,
    minilm: MiniLMEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    predictor = make_predictor(checkpoints["eva_text"], tiny_checkpoint, transcriber, minilm)
    calls: list[Path] = []
    real = predictor.extractor.encode_video

    def counting(path: Path, **kw: object) -> object:
        calls.append(Path(path))
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(predictor.extractor, "encode_video", counting)
    video = predictor.encode_video(talk_video)
    assert calls == [talk_video]
    assert (
        video.visual is not None
        and video.visual.shape == (8, TINY_EVA.embed_dim)
        and video.transcript.shape == (8, 384)
    )
    first = predictor.predict("Pour the milk into a bowl", video)
    second = predictor.predict("Stir it")  # the last encoded video by default
    again = predictor.predict("Pour the milk into a bowl", video)
    assert predictor.encode_video(talk_video) is video  # same content: not re-encoded
    assert calls == [talk_video]
    assert predictor.query_encoder.name == f"{TINY_EVA.name}-text"  # queries through the EVA-CLIP text tower
    assert again == first and second.query == "Stir it"
    for p in (first, second):
        check_record(p.to_record(), p.query, 8.0)
        assert Prediction.from_record(p.to_record()) == p
    with pytest.raises(ValueError, match="empty"):
        predictor.predict("  ")


def test_cache_is_shared_across_predictors(
    talk_video: Path,
    checkpoints: dict[str, Path],
    tiny_checkpoint: Path,
    transcriber: WhisperTranscriber,
    minilm: MiniLMEncoder,
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    first = make_predictor(checkpoints["minilm"], tiny_checkpoint, transcriber, minilm, cache)
    encoded = first.encode_video(talk_video)
    (cached,) = cache.glob("*.pt")
    assert cached.name.startswith(encoded.sha256[:32])

    second = make_predictor(checkpoints["minilm"], tiny_checkpoint, transcriber, minilm, cache)

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("features should come from the cache")

    second.extractor.encode_video = refuse  # type: ignore[method-assign]
    copy = shutil.copy(talk_video, tmp_path / "renamed.mp4")  # same content, other name: still a hit
    hit = second.encode_video(copy)
    assert hit.video == "renamed.mp4" and hit.cues == encoded.cues and hit.n_frames == encoded.n_frames
    assert hit.visual is not None and encoded.visual is not None
    np.testing.assert_array_equal(hit.visual, encoded.visual)
    np.testing.assert_allclose(hit.transcript, encoded.transcript)
    assert second.predict("Stir it", hit).to_record() == {
        **first.predict("Stir it").to_record(),
        "video": "renamed.mp4",
    }
    cached.write_bytes(b"damaged")  # an unreadable cache file is recomputed and rewritten, not fatal
    third = make_predictor(checkpoints["minilm"], tiny_checkpoint, transcriber, minilm, cache)
    assert third.encode_video(talk_video).cues == encoded.cues
    assert cached.stat().st_size > len(b"damaged")


def test_visual_checkpoint_without_eva_clip_is_refused(
    checkpoints: dict[str, Path], talk_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FeatureError, match="eva_clip_psz14.pt") as info:
        Predictor.from_checkpoint(checkpoints["minilm"])
    assert "--eva-clip-checkpoint" in str(info.value)
    rc = main(
        [
            "predict",
            str(talk_video),
            "-q",
            "Stir it",
            "--checkpoint",
            str(checkpoints["g14"]),
            "--out",
            str(tmp_path),
            "--no-cache",
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "eva_clip_psz14.pt" in err and "--eva-clip-checkpoint" in err
    assert not list(tmp_path.glob("*.json"))


def test_other_refusals(checkpoints: dict[str, Path], tiny_checkpoint: Path) -> None:
    with pytest.raises(FeatureError, match="simulated features in its visual stream") as info:
        Predictor.from_checkpoint(checkpoints["sim"], eva_clip_checkpoint=tiny_checkpoint)
    message = str(info.value)
    assert "sim-minilm-proj1024" in message and "eva_clip_psz14.pt" in message
    assert "transcript" not in message.split(".")[0]  # only the simulated stream is named
    assert "model.visual_dim=0" in message and "sim_speech_cpu.yaml" in message  # the way to a usable model
    # trained on EVA-CLIP-g/14 frames, given the tiny tower: the visual encoders differ, the other streams agree
    with pytest.raises(FeatureError, match=r"visual stream: the checkpoint \S+ has 'eva-clip-g14'") as info:
        Predictor.from_checkpoint(checkpoints["g14"], eva_clip_checkpoint=tiny_checkpoint)
    assert "transcript stream" not in str(info.value) and "query stream" not in str(info.value)
    # EVA-CLIP text queries need the EVA-CLIP file even when a speech-only model needs no frames
    with pytest.raises(FeatureError, match="EVA-CLIP text tower .*eva_clip_psz14.pt"):
        Predictor.from_checkpoint(checkpoints["speech_eva_text"])
    speech = Predictor.from_checkpoint(checkpoints["speech_eva_text"], eva_clip_checkpoint=tiny_checkpoint)
    assert not speech.extractor.has_visual  # the EVA-CLIP file serves the queries only
    assert speech.encode_query("Stir it").shape == (TINY_EVA.embed_dim,)


def test_prediction_record() -> None:
    p = Prediction("a.mp4", "q", 10.0, (2.0, 8.0), [Step(2.0, 5.0, "mix"), Step(5.0, 8.0, "bake")])
    assert p.to_record() == {
        "video": "a.mp4",
        "query": "q",
        "duration": 10.0,
        "moment": [2.0, 8.0],
        "steps": [{"start": 2.0, "end": 5.0, "sentence": "mix"}, {"start": 5.0, "end": 8.0, "sentence": "bake"}],
    }
    assert Prediction.from_record(p.to_record()) == p
