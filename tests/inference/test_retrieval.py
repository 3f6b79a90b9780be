"""Zero-shot video retrieval: which stream is pooled, the ranking against brute force, `quag infer` -> `evaluate`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from quag.cli import main
from quag.data import annotations as A
from quag.data.features import FeatureError, FeatureSpec, FeatureStore
from quag.data.sim import SIM_SPEC
from quag.inference.retrieval import rank_split_videos, retrieval_stream


def test_the_stream_follows_the_query_encoder() -> None:
    assert retrieval_stream(FeatureSpec()) == "visual"  # official: EVA-CLIP frames, EVA-CLIP text queries
    assert retrieval_stream(SIM_SPEC) == "transcript"  # HiREST-sim: MiniLM queries and transcript
    with pytest.raises(FeatureError, match="frame encoder's text tower"):
        retrieval_stream(SIM_SPEC, "visual")
    other = replace(SIM_SPEC, query_encoder="some-text-model")
    with pytest.raises(FeatureError, match="queries 'some-text-model'"):
        retrieval_stream(other)


def test_official_spec_cannot_rank_by_transcript() -> None:
    with pytest.raises(FeatureError, match="space of the frames or of the transcript"):
        retrieval_stream(FeatureSpec(), "transcript")  # EVA-CLIP text queries vs MiniLM transcript


def test_ranking_is_cosine_of_pooled_speech_rows(sim_root: Path) -> None:
    store = FeatureStore(sim_root)
    videos = A.load_split(sim_root, "val")
    preds = rank_split_videos(store, videos)
    candidates = list(dict.fromkeys(v.video for v in videos))
    assert set(preds) == {v.query for v in videos}
    for query, entry in preds.items():
        assert sorted(entry["videos"]) == sorted(candidates)
        assert entry["scores"] == sorted(entry["scores"], reverse=True)
        q = store.query_embedding(query)
        for video, score in zip(entry["videos"], entry["scores"], strict=True):
            n = next(v.num_frames for v in videos if v.video == video)
            rows = store.transcript(video, n)
            rows = rows[np.linalg.norm(rows, axis=1) > 0]
            pooled = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).mean(0)
            expected = float(q @ pooled / np.linalg.norm(q) / np.linalg.norm(pooled))
            assert score == pytest.approx(expected, abs=1e-5)
    top = rank_split_videos(store, videos, top_k=2)
    assert all(len(e["videos"]) == 2 for e in top.values())


def test_infer_writes_the_official_file_that_evaluate_scores(sim_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    args = ["infer", "--task", "video_retrieval", "--data", str(sim_root), "--split", "val", "--out", str(out)]
    assert main([*args, "--evaluate"]) == 0
    pred = out / "val_video_retrieval.json"
    assert set(json.loads(pred.read_text())) == {v.query for v in A.load_split(sim_root, "val")}
    report = tmp_path / "vr.json"
    assert main(["evaluate", "--task", "video_retrieval", str(pred), str(sim_root / "splits" / "all_data_val.json"),
                 "--out", str(report)]) == 0  # fmt: skip
    text = report.read_text()
    assert "R@1" in text and "R@50" in text
    # without a checkpoint, only video retrieval can run
    assert main(["infer", "--tasks", "moment_retrieval", "--data", str(sim_root), "--out", str(out)]) == 1
