import json
from pathlib import Path

import numpy as np
import pytest

from quag.config import DataConfig
from quag.data import annotations as A
from quag.data.collate import collate
from quag.data.datasets import build_datasets
from quag.data.features import FeatureSpec, FeatureStore
from quag.data.sim import SimConfig, build_sim
from quag.data.srt import read_srt
from tests.helpers import HIREST, hash_encode


def test_sim_is_in_the_official_layout_and_loads(sim_root: Path) -> None:
    spec = FeatureSpec.load(sim_root)
    assert spec.simulated and spec.query_dim == 384 and spec.visual_dim == 1024
    assert "SIMULATED" in (sim_root / "README.md").read_text()
    train = A.load_split(sim_root, "train")
    assert len(A.moment_videos(train)) == 6
    store = FeatureStore(sim_root)
    for v in train:
        vis = store.visual(v.video, v.num_frames)
        assert vis.shape == (v.num_frames, 1024)
        assert np.allclose(np.linalg.norm(vis, axis=1), 1, atol=1e-5)  # rows L2-normalised like EVA-CLIP
        assert store.transcript(v.video, v.num_frames).shape == (v.num_frames, 384)
        assert len(read_srt(store.srt_path(v.video))) > 0
    gt = json.loads((sim_root / A.EVAL_GT_FILES["val"]).read_text())
    assert set(gt) <= {v.video for v in A.load_split(sim_root, "val")}


def test_sim_loads_through_the_datasets(sim_root: Path) -> None:
    cfg = DataConfig(root=str(sim_root))
    ds = build_datasets(cfg, "train", ["moment_retrieval", "moment_segmentation", "step_captioning"], training=True)
    mr = collate([ds["moment_retrieval"][i] for i in range(2)])
    assert mr.video.shape[2] == 1024 and mr.query_embedding.shape == (2, 384)
    sc = collate([ds["step_captioning"][0]])
    assert sc.video.shape[1] == 20 and sc.caption_ids[0, 0] == 101
    ms = ds["moment_segmentation"][0]
    assert ms.boundary_mask.sum() >= 1 and ms.moment_mask[ms.segment_target]


def test_visual_features_follow_the_script(sim_root: Path) -> None:
    """Inside a step, consecutive seconds resemble each other more than they resemble the outside."""
    store = FeatureStore(sim_root)
    v = next(v for v in A.load_split(sim_root, "train") if v.steps and v.bounds[0] > 10)
    x = store.visual(v.video, v.num_frames)
    s = v.steps[0]
    a, b = int(s.start) + 1, int(s.start) + 2
    inside = float(x[a] @ x[b])
    outside = float(x[a] @ x[max(0, int(v.bounds[0]) - 5)])
    assert inside > outside


def test_deterministic_subset_and_resume(tmp_path: Path, sim_root: Path) -> None:
    cfg = SimConfig(seed=0, train_videos=6, val_videos=3)
    out = tmp_path / "again"
    build_sim(HIREST, out, cfg, encode=hash_encode, progress=False)
    v = A.load_split(out, "train")[0]
    f = f"eva_clip_features/{v.video_id}.mp4.pt"
    assert (out / f).read_bytes() == (sim_root / f).read_bytes()
    # resume: delete one video's file, rebuild, get it back identical
    before = (out / f).read_bytes()
    (out / f).unlink()
    build_sim(HIREST, out, cfg, encode=hash_encode, progress=False)
    assert (out / f).read_bytes() == before
    with pytest.raises(FileExistsError, match="another config"):
        build_sim(HIREST, out, SimConfig(seed=1, train_videos=6, val_videos=3), encode=hash_encode, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a HiREST-sim build"):
        build_sim(HIREST, tmp_path / "other", cfg, encode=hash_encode, progress=False)


@pytest.mark.slow
def test_sim_with_the_real_minilm(tmp_path: Path) -> None:
    from quag.pipeline.text import MiniLMEncoder

    build_sim(HIREST, tmp_path / "s", SimConfig(train_videos=1, val_videos=1), encode=MiniLMEncoder(), progress=False)
    emb = FeatureStore(tmp_path / "s").queries()
    vec = next(iter(emb.values()))
    assert vec.shape == (384,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-4
