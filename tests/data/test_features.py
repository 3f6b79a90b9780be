import json
from pathlib import Path

import numpy as np
import pytest
import torch

from quag.data.features import FeatureError, FeatureSpec, FeatureStore


def make_root(
    tmp_path: Path, rows: int = 10, visual: object = None, srt: str | None = None, transcript: object = None
) -> Path:
    """A one-video root in the official layout (official spec, no feature_spec.json)."""
    root = tmp_path / "root"
    (root / "eva_clip_features").mkdir(parents=True)
    (root / "ASR").mkdir()
    (root / "ASR_feats_all-MiniLM-L6-v2").mkdir()
    if visual is None:
        visual = torch.nn.functional.normalize(torch.randn(rows, 1024), dim=1)
    torch.save(visual, root / "eva_clip_features" / "vid.mp4.pt")
    (root / "ASR" / "vid.srt").write_text(srt if srt is not None else "1\n00:00:01,000 --> 00:00:03,000\nhello\n")
    torch.save(
        transcript if transcript is not None else torch.ones(1, 384), root / "ASR_feats_all-MiniLM-L6-v2" / "vid.pt"
    )
    torch.save(
        {"queries": ["make tea"], "embeddings": torch.ones(1, 1024), "encoder": "x"},
        root / "query_feats_eva-clip-g14-text.pt",
    )
    return root


def test_official_layout_reads(tmp_path: Path) -> None:
    store = FeatureStore(make_root(tmp_path))
    assert store.visual("vid.mp4", 10).shape == (10, 1024)
    a = store.transcript("vid.mp4", 10)
    assert a.shape == (10, 384) and a[1:3].sum() == 2 * 384 and a[0].sum() == 0 and a[3:].sum() == 0
    assert store.query_embedding("make tea").shape == (1024,)
    assert store.visual_path("vid.mp4").name == "vid.mp4.pt" and store.srt_path("vid").name == "vid.srt"


def test_length_policy_counts_fixes(tmp_path: Path) -> None:
    store = FeatureStore(make_root(tmp_path, rows=12), length_tolerance=3)
    v = store.visual("vid.mp4", 10)
    assert v.shape == (10, 1024) and store.report.truncated == {"vid.mp4": (12, 10)}
    padded = store.visual("vid.mp4", 14)
    assert padded.shape == (14, 1024) and np.array_equal(padded[-1], padded[11])
    assert store.report.padded == {"vid.mp4": (12, 14)}
    assert "1 cut" in store.report.summary() and "1 padded" in store.report.summary()
    with pytest.raises(FeatureError, match="12 rows but the video lasts 20 s.*length_tolerance=3"):
        store.visual("vid.mp4", 20)


def test_missing_files_name_the_file_and_the_fix(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    store = FeatureStore(root)
    with pytest.raises(FeatureError, match="other.mp4.pt not found: download the official HiREST features"):
        store.visual("other.mp4", 10)
    with pytest.raises(FeatureError, match=r"3 feature file\(s\) missing"):
        store.check_files(["vid.mp4", "other.mp4"])
    (root / "query_feats_eva-clip-g14-text.pt").unlink()
    with pytest.raises(FeatureError, match="quag encode-queries"):
        FeatureStore(root).query_embedding("make tea")
    with pytest.raises(FeatureError, match="does not exist"):
        FeatureStore(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"visual": torch.full((10, 1024), float("nan"))}, "NaN/Inf"),
        ({"visual": torch.zeros(10, 512)}, "512 values, the feature spec says 1024"),
        ({"visual": ["a.mp4.pt", "b.mp4.pt"]}, "expected a tensor, found list"),
        ({"visual": torch.zeros(2, 5, 1024)}, "must be a 2-D"),
        ({"transcript": torch.ones(2, 384)}, "2 embedding rows but .* has 1 cues"),
        ({"srt": "1\nbroken\n"}, "lacks '-->'"),
    ],
)
def test_bad_feature_files(tmp_path: Path, kwargs: dict, message: str) -> None:
    store = FeatureStore(make_root(tmp_path, **kwargs))
    with pytest.raises(ValueError, match=message):
        store.visual("vid.mp4", 10)
        store.transcript("vid.mp4", 10)


def test_corrupt_file_and_silent_video(tmp_path: Path) -> None:
    root = make_root(tmp_path, srt="", transcript=torch.zeros(0))
    assert FeatureStore(root).transcript("vid.mp4", 10).sum() == 0  # no speech: zeros, not a crash
    (root / "eva_clip_features" / "vid.mp4.pt").write_bytes(b"not a tensor")
    with pytest.raises(FeatureError, match="cannot be read as a visual feature file"):
        FeatureStore(root).visual("vid.mp4", 10)


def test_feature_spec_round_trip_and_compatibility(tmp_path: Path) -> None:
    spec = FeatureSpec(query_dim=384, query_encoder="all-MiniLM-L6-v2")
    spec.save(tmp_path)
    assert FeatureSpec.load(tmp_path) == spec
    with pytest.raises(FeatureError, match=r"query stream: the checkpoint has 'eva-clip-g14-text' \(1024-d\)"):
        FeatureSpec().check_compatible(spec)
    (tmp_path / "feature_spec.json").write_text(json.dumps({"visual_dims": 3}))
    with pytest.raises(FeatureError, match="unknown field"):
        FeatureSpec.load(tmp_path)
