"""``quag encode-queries``: the query-embedding file FeatureStore reads, with MiniLM or the EVA-CLIP text tower."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quag.cli import main
from quag.data.features import FeatureSpec, FeatureStore
from quag.pipeline.queries import collect_queries, write_query_file
from tests.pipeline.helpers import TINY_EVA


def entry(duration: float) -> dict[str, object]:
    return {"relevant": True, "clip": True, "v_duration": duration, "bounds": [1, 3], "steps": []}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    splits = tmp_path / "root" / "splits"
    splits.mkdir(parents=True)
    (splits / "all_data_train.json").write_text(
        json.dumps({"Make an Egg and Cheese Sandwich": {"a.mp4": entry(10)}, "How to tie a tie": {"b.mp4": entry(8)}})
    )
    (splits / "all_data_val.json").write_text(
        json.dumps({"How to tie a tie": {"c.mp4": entry(9)}, "Repot a plant": {"d.mp4": entry(7)}})
    )
    (splits / "all_data_test_negative_samples.json").write_text(json.dumps({"negative_video_0": {"e.mp4": {}}}))
    return tmp_path / "root"


def test_collect_queries_dedupes_and_skips_negatives(root: Path) -> None:
    assert collect_queries(root) == ["Make an Egg and Cheese Sandwich", "How to tie a tie", "Repot a plant"]


def test_minilm_queries(root: Path) -> None:
    assert main(["encode-queries", str(root), "--encoder", "minilm"]) == 0
    spec = FeatureSpec.load(root)
    assert (spec.query_encoder, spec.query_dim, spec.query_file) == (
        "all-MiniLM-L6-v2",
        384,
        "query_feats_all-MiniLM-L6-v2.pt",
    )
    store = FeatureStore(root)
    q = store.query_embedding("Repot a plant")
    assert q.shape == (384,) and np.linalg.norm(q) == pytest.approx(1, abs=1e-5)
    assert len(store.queries()) == 3


def test_eva_clip_text_queries(root: Path, tiny_checkpoint: Path) -> None:
    FeatureSpec(visual_encoder="eva-clip-tiny-test", visual_dim=24).save(root)
    assert main(["encode-queries", str(root), "--checkpoint", str(tiny_checkpoint)]) == 0  # auto -> eva-clip-text
    spec = FeatureSpec.load(root)
    assert (spec.query_encoder, spec.query_dim) == (f"{TINY_EVA.name}-text", TINY_EVA.embed_dim)
    assert spec.visual_encoder == "eva-clip-tiny-test"  # the other fields are kept
    table = FeatureStore(root).queries()
    assert set(table) == set(collect_queries(root))
    assert not np.allclose(table["How to tie a tie"], table["Repot a plant"])


def test_eva_clip_text_needs_a_checkpoint(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode-queries", str(root), "--encoder", "eva-clip-text"]) == 1
    assert "eva_clip_psz14.pt" in capsys.readouterr().err


def test_write_query_file_checks_rows(root: Path) -> None:
    with pytest.raises(ValueError, match="2 queries"):
        write_query_file(root, ["a", "b"], np.zeros((3, 4), np.float32), "x")
