"""TVSum loading: the folder resolution, the official split, shapes, truncation and batching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from quag.tvsum.config import TVSUM_CATEGORIES
from quag.tvsum.data import (
    TVSUM_DIR_ENV,
    TVSUM_SPLITS,
    collate_videos,
    load_tvsum,
    repository_root,
    resolve_tvsum_dir,
)


def test_resolve_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(TVSUM_DIR_ENV, raising=False)
    assert resolve_tvsum_dir() == (repository_root() / ".." / "shared" / "data" / "tvsum").resolve()
    monkeypatch.setenv(TVSUM_DIR_ENV, str(tmp_path / "env"))
    assert resolve_tvsum_dir() == tmp_path / "env"
    assert resolve_tvsum_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_missing_folder_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="QUAG_TVSUM_DIR"):
        load_tvsum(tmp_path / "nowhere")


def test_split_is_four_plus_one_per_category() -> None:
    assert sorted(TVSUM_SPLITS) == sorted(TVSUM_CATEGORIES)
    ids = [v for s in TVSUM_SPLITS.values() for part in ("train", "test") for v in s[part]]
    assert len(ids) == len(set(ids)) == 50
    assert all(len(s["train"]) == 4 and len(s["test"]) == 1 for s in TVSUM_SPLITS.values())


def test_synthetic_truncation_and_collate(synthetic_tvsum: Path) -> None:
    videos = load_tvsum(synthetic_tvsum, ("VU",), normalize=True)
    first = videos[TVSUM_SPLITS["VU"]["train"][0]]  # written with one extra audio row
    assert first.stream_lengths["audio"] == first.stream_lengths["labels"] + 1
    assert first.visual.shape[0] == first.audio.shape[0] == first.annotations.shape[0] == first.num_clips
    np.testing.assert_allclose(np.linalg.norm(first.visual, axis=1), 1.0, rtol=1e-5)
    batch = collate_videos([videos[v] for v in TVSUM_SPLITS["VU"]["train"]])
    lengths = [videos[v].num_clips for v in TVSUM_SPLITS["VU"]["train"]]
    assert batch.visual.shape == (4, max(lengths), 8) and batch.query_embedding.shape == (4, 4)
    assert batch.video_mask.sum(1).tolist() == lengths
    assert torch.all(batch.visual[~batch.video_mask] == 0) and torch.all(batch.saliency[~batch.video_mask] == 0)
    assert float(batch.saliency.max()) <= 1.0 and float(batch.saliency.min()) >= 0.0


def test_wrong_category_in_annotations_raises(synthetic_tvsum: Path) -> None:
    path = synthetic_tvsum / "tvsum_anno.json"
    anno = json.loads(path.read_text())
    anno[TVSUM_SPLITS["VU"]["test"][0]]["domain"] = "BK"
    path.write_text(json.dumps(anno))
    with pytest.raises(ValueError, match="annotated as BK"):
        load_tvsum(synthetic_tvsum, ("VU",))


# ---------------------------------------------------------------------------------------------- real data


def test_real_shapes_and_extra_audio_row(tvsum_dir: Path) -> None:
    videos = load_tvsum(tvsum_dir, ("DS", "VT"))
    assert len(videos) == 10
    for v in videos.values():
        t = v.num_clips
        assert v.visual.shape == (t, 2048) and v.visual.dtype == np.float32
        assert v.audio.shape == (t, 2048) and v.query_embedding.shape == (512,) and v.annotations.shape == (t, 20)
        assert v.annotations.min() >= 1 and v.annotations.max() <= 5
    odd = videos["kLxoNp-UchI"]
    assert odd.stream_lengths == {"rgb": 64, "opt": 64, "audio": 65, "labels": 64}
    assert odd.num_clips == 64
    raw_audio = np.load(tvsum_dir / "audio_features" / "kLxoNp-UchI.npy")
    unnormalized = load_tvsum(tvsum_dir, ("DS",), normalize=False)["kLxoNp-UchI"]
    np.testing.assert_array_equal(unnormalized.audio, raw_audio[:64])


def test_real_split_matches_qd_detr_jsonl(tvsum_dir: Path) -> None:
    for part, name in (("train", "tvsum_train.jsonl"), ("test", "tvsum_val.jsonl")):
        rows = [json.loads(x) for x in (tvsum_dir / "qd_detr_jsonl" / name).read_text().splitlines() if x.strip()]
        by_cat: dict[str, set[str]] = {}
        for r in rows:
            by_cat.setdefault(r["domain"], set()).add(r["vid"])
        assert by_cat == {c: set(s[part]) for c, s in TVSUM_SPLITS.items()}
