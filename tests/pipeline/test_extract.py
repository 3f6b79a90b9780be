"""``quag extract``: official layout, failures report, resume after an interruption, shards, speech-only mode,
and the in-memory ``encode_video`` that shares the same code."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from quag.cli import main
from quag.data.features import FeatureError, FeatureSpec, FeatureStore
from quag.data.srt import read_srt
from quag.data.timestamps import num_frames
from quag.pipeline.asr import WhisperTranscriber
from quag.pipeline.eva_clip import build_text_tower, build_vision_tower
from quag.pipeline.extract import ExtractOptions, FeatureExtractor, require_visual
from quag.pipeline.weights import save_checkpoint
from tests.pipeline.helpers import TINY_EVA, break_codec, load_speech, make_video, truncate

FAST_WHISPER = ["--whisper-compute-type", "int8", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """talk (3.5 s, speech), silent (2.3 s, no audio track), a corrupt file, an empty file, an unreadable codec,
    a truncated download (10 s declared, about 5 s of frames)."""
    videos = tmp_path_factory.mktemp("corpus") / "videos"
    videos.mkdir()
    make_video(videos / "talk.mp4", 35, 10, size=(96, 64), audio=load_speech())
    make_video(videos / "silent.mp4", 23, 10)
    (videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x13\x37" * 300)
    (videos / "empty.mp4").write_bytes(b"")
    break_codec(make_video(videos.parent / "h264.mp4", 20, 10), videos / "badcodec.mp4")
    long = make_video(videos.parent / "long.mp4", 100, 10, options={"movflags": "faststart"})
    truncate(long, videos / "truncated.mp4", keep=0.75)
    (videos / "notes.txt").write_text("not a video")
    return videos


@pytest.fixture(scope="module")
def extracted(corpus: Path, tiny_checkpoint: Path) -> tuple[Path, str]:
    """One full extraction of the corpus (tiny EVA-CLIP, Whisper tiny.en int8, MiniLM) and what it printed."""
    out = corpus.parent / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(["extract", str(corpus), str(out), "--eva-clip-checkpoint", str(tiny_checkpoint), *FAST_WHISPER])
    assert rc == 1  # 5 of 6 videos fail: the exit status says so (--allow-failures would give 0)
    return out, buffer.getvalue()


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_official_layout_read_by_feature_store(extracted: tuple[Path, str]) -> None:
    out, _ = extracted
    assert (out / "eva_clip_features" / "talk.mp4.pt").is_file()
    assert (out / "ASR" / "talk.srt").is_file() and (out / "ASR_feats_all-MiniLM-L6-v2" / "talk.pt").is_file()
    spec = FeatureSpec.load(out)
    assert (spec.visual_encoder, spec.visual_dim, spec.fps) == ("eva-clip-tiny-test", 24, 1.0)
    assert (spec.transcript_model, spec.transcript_encoder, spec.transcript_dim) == (
        "whisper-tiny.en",
        "all-MiniLM-L6-v2",
        384,
    )
    store = FeatureStore(out)
    # talk: 35 frames at 10 fps = 3.5 s -> ceil(3.5 - 0.05) = 4 rows = round(3.5)
    visual = store.visual("talk.mp4", num_frames(3.5))
    assert visual.shape == (4, 24)
    np.testing.assert_allclose(np.linalg.norm(visual, axis=1), 1, rtol=1e-5)
    # silent: 2.3 s -> 3 rows by the official rule, one more than round(2.3) = 2; FeatureStore drops it
    raw = torch.load(out / "eva_clip_features" / "silent.mp4.pt", weights_only=True)
    assert raw.shape == (3, 24)
    assert store.visual("silent.mp4", num_frames(2.3)).shape == (2, 24) and "silent.mp4" in store.report.truncated
    cues = read_srt(out / "ASR" / "talk.srt")
    assert "milk" in " ".join(c.text for c in cues).lower()
    transcript = store.transcript("talk.mp4", 4)
    assert transcript.shape == (4, 384) and np.abs(transcript[0]).sum() > 0


def test_failures_report_names_each_problem(extracted: tuple[Path, str]) -> None:
    out, printed = extracted
    report = json.loads((out / "extraction_failures.json").read_text())
    by_video = {}
    for r in report["failures"]:
        by_video.setdefault(r["video"], set()).add((r["stage"], r["reason"]))
    assert by_video == {
        "corrupt.mp4": {("visual+asr+embed", "corrupt")},
        "empty.mp4": {("visual+asr+embed", "zero_length")},
        "badcodec.mp4": {("visual+asr+embed", "unreadable_codec")},
        "silent.mp4": {("asr", "no_audio_track")},
        "truncated.mp4": {("visual", "truncated"), ("asr", "no_audio_track")},
    }
    assert report["n_failed_videos"] == 5
    assert "6 video(s)" in printed and "1 extracted" in printed and "5 with failures" in printed
    assert "extraction_failures.json" in printed and "s of video per second" in printed
    assert (out / "eva_clip_features" / "silent.mp4.pt").is_file()  # the visual stage of silent.mp4 succeeded


def test_resume_skips_complete_videos_without_loading_models(
    extracted: tuple[Path, str],
    corpus: Path,
    tiny_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _ = extracted
    before = files_under(out / "eva_clip_features") | files_under(out / "ASR")

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a resumed run with nothing new to do must not load a model")

    monkeypatch.setattr("quag.pipeline.extract.WhisperTranscriber", no_model)
    monkeypatch.setattr("quag.pipeline.extract.MiniLMEncoder", no_model)
    monkeypatch.setattr("quag.pipeline.visual.VisualEncoder.from_checkpoint", no_model)
    args = ["extract", str(corpus), str(out), "--eva-clip-checkpoint", str(tiny_checkpoint), *FAST_WHISPER]
    assert main([*args, "--allow-failures"]) == 0
    printed = capsys.readouterr().out
    assert "0 extracted, 1 already complete, 5 with failures" in printed
    assert files_under(out / "eva_clip_features") | files_under(out / "ASR") == before


@pytest.fixture
def silent_corpus(tmp_path: Path) -> Path:
    videos = tmp_path / "videos"
    videos.mkdir()
    for i, n in enumerate((21, 17, 26)):
        make_video(videos / f"clip{i}.mp4", n, 10)
    return videos


def test_interrupted_run_leaves_no_partial_file_and_resumes(
    silent_corpus: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = silent_corpus.parent / "out"
    args = [
        "extract",
        str(silent_corpus),
        str(out),
        "--eva-clip-checkpoint",
        str(tiny_checkpoint),
        "--no-audio",
        "empty",
        "--no-progress",
    ]
    real_save = torch.save
    calls = {"n": 0}

    def killed_while_writing(obj: object, f: object, *a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # clip0 saved 2 tensors (and an SRT); die half-way through clip1's visual features
            if hasattr(f, "write"):  # serialised in memory first, then written atomically
                f.write(b"partial")  # type: ignore[union-attr]
            else:
                Path(str(f)).write_bytes(b"partial")
            raise KeyboardInterrupt
        real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", killed_while_writing)
    assert main(args) == 130  # Ctrl-C: one line, exit status 130
    monkeypatch.setattr(torch, "save", real_save)
    written = files_under(out)
    assert not [p for p in written if p.endswith(".tmp")]  # no temporary file left behind
    assert "eva_clip_features/clip0.mp4.pt" in written and "ASR_feats_all-MiniLM-L6-v2/clip0.pt" in written
    assert not [p for p in written if "clip1" in p or "clip2" in p]  # the interrupted file never appeared
    capsys.readouterr()
    assert main(args) == 0
    assert "2 extracted, 1 already complete, 0 with failures" in capsys.readouterr().out
    after = files_under(out)
    for key in ("eva_clip_features/clip0.mp4.pt", "ASR/clip0.srt", "ASR_feats_all-MiniLM-L6-v2/clip0.pt"):
        assert after[key] == written[key]  # completed outputs were not redone
    store = FeatureStore(out)
    for i, duration in enumerate((2.1, 1.7, 2.6)):
        assert store.visual(f"clip{i}.mp4", num_frames(duration)).shape[1] == 24
        assert store.transcript(f"clip{i}.mp4", num_frames(duration)).sum() == 0  # no audio -> empty transcript


def test_shards_split_the_corpus(silent_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = silent_corpus.parent / "out"
    common = ["extract", str(silent_corpus), str(out), "--stages", "asr,embed", "--no-audio", "empty", "--no-progress"]
    assert main([*common, "--shard", "1/2"]) == 0
    assert sorted(p.name for p in (out / "ASR").iterdir()) == ["clip1.srt"]
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun: the shard comes from the environment
    assert main(common) == 0
    assert sorted(p.name for p in (out / "ASR").iterdir()) == ["clip0.srt", "clip1.srt", "clip2.srt"]
    assert main([*common, "--shard", "2/2"]) == 1  # invalid shard -> error exit


def test_speech_only_without_checkpoint(silent_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = silent_corpus.parent / "speech-only"
    assert main(["extract", str(silent_corpus), str(out), "--no-audio", "empty", "--no-progress"]) == 0
    assert "speech-only" in capsys.readouterr().out
    spec = FeatureSpec.load(out)
    assert (spec.visual_encoder, spec.visual_dim) == ("none", 0)
    assert not (out / "eva_clip_features").exists() and len(list((out / "ASR").iterdir())) == 3
    with pytest.raises(FeatureError, match="eva_clip_psz14.pt"):
        require_visual(spec)
    require_visual(FeatureSpec())  # the official spec has visual features
    with pytest.raises(FeatureError, match=r"visual stream: .* the features have none \(speech-only\)"):
        FeatureSpec().check_compatible(spec)


def test_mixing_encoders_in_one_root_is_refused(
    silent_corpus: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = silent_corpus.parent / "mixed"
    common = ["extract", str(silent_corpus), str(out), "--stages", "visual", "--no-progress"]
    assert main([*common, "--eva-clip-checkpoint", str(tiny_checkpoint)]) == 0
    other = TINY_EVA.__class__.from_dict({**TINY_EVA.to_dict(), "name": "eva-clip-other"})
    ckpt = save_checkpoint(tmp_path / "other.pt", build_vision_tower(other), build_text_tower(other), other)
    assert main([*common, "--eva-clip-checkpoint", str(ckpt)]) == 1
    assert "already holds visual features" in capsys.readouterr().err


def test_encode_video_in_memory_matches_the_files(
    extracted: tuple[Path, str], corpus: Path, tiny_checkpoint: Path, transcriber: WhisperTranscriber
) -> None:
    out, _ = extracted
    extractor = FeatureExtractor(ExtractOptions(eva_clip_checkpoint=tiny_checkpoint), transcriber=transcriber)
    feats = extractor.encode_video(corpus / "talk.mp4")
    assert (feats.n_frames, feats.visual_rows, feats.duration) == (4, 4, pytest.approx(3.5))
    assert feats.visual is not None and feats.visual.shape == (4, 24) and feats.transcript.shape == (4, 384)
    store = FeatureStore(out)
    np.testing.assert_allclose(feats.visual, store.visual("talk.mp4", 4), atol=1e-6)
    np.testing.assert_allclose(feats.transcript, store.transcript("talk.mp4", 4), atol=1e-5)
    assert feats.cue_embeddings.shape == (len(feats.cues), 384)
    assert extractor.spec().visual_encoder == "eva-clip-tiny-test"
    short = extractor.encode_video(corpus / "talk.mp4", n_frames=3)  # aligned to a caller-given length
    assert short.visual is not None and short.visual.shape == (3, 24) and short.transcript.shape == (3, 384)


def test_video_list_file(tmp_path: Path, corpus: Path) -> None:
    from quag.pipeline.corpus import list_videos

    listing = tmp_path / "list.txt"
    listing.write_text(f"# two videos\n{corpus / 'talk.mp4'}\n\n{corpus / 'silent.mp4'}\n")
    assert [p.name for p in list_videos(listing)] == ["talk.mp4", "silent.mp4"]
    assert [p.name for p in list_videos(corpus)] == [
        "badcodec.mp4",
        "corrupt.mp4",
        "empty.mp4",
        "silent.mp4",
        "talk.mp4",
        "truncated.mp4",
    ]
    # One video file is a corpus of one (it was read as a list file of paths, and an empty one gave no video).
    assert list_videos(corpus / "empty.mp4") == [corpus / "empty.mp4"]
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.mkv").write_bytes(b"")
    with pytest.raises(ValueError, match="share the id"):
        list_videos(tmp_path)
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="no videos to extract"):
        list_videos(tmp_path / "none")
    (tmp_path / "empty_list.txt").write_text("# nothing yet\n")
    with pytest.raises(ValueError, match="no videos to extract"):
        list_videos(tmp_path / "empty_list.txt")


def test_fit_rows() -> None:
    from quag.pipeline.extract import fit_rows

    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(fit_rows(feats, 2), feats[:2])
    np.testing.assert_array_equal(fit_rows(feats, 4), np.concatenate([feats, feats[-1:]]))
    with pytest.raises(ValueError, match="empty"):
        fit_rows(feats[:0], 3)
