import json
from pathlib import Path

import numpy as np
import pytest

from quag.config import DataConfig
from quag.data import annotations as A
from quag.data.collate import collate
from quag.data.datasets import build_datasets
from quag.data.features import FeatureSpec, FeatureStore
from quag.data.narration import narrate, phrase
from quag.data.sim import SimConfig, build_sim, check_sim_root
from quag.data.srt import read_srt
from tests.helpers import HIREST, hash_encode


def test_sim_is_in_the_official_layout_and_loads(sim_root: Path) -> None:
    spec = FeatureSpec.load(sim_root)
    assert spec.simulated == ("visual",) and spec.query_dim == 384 and spec.visual_dim == 1024
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
    srt = f"ASR/{v.video_id}.srt"
    assert (out / srt).read_bytes() == (sim_root / srt).read_bytes()
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


def test_narration_reads_like_how_to_speech(sim_root: Path) -> None:
    """Steps are announced near their start in the first person or the imperative; the talk outside the moment
    is off-topic; fillers and pauses occur; cues are sentences."""
    announced = total = 0
    text = []
    for v in A.moment_videos(A.load_split(sim_root, "train")):
        cues = read_srt(sim_root / "ASR" / f"{v.video_id}.srt")
        assert cues and all(c.text[:1].isupper() and c.text[-1] in ".?!" for c in cues)
        assert all(a.end <= b.start for a, b in zip(cues, cues[1:], strict=False))  # in order, never overlapping
        text += [c.text for c in cues]
        start, end = v.bounds
        outside = " ".join(c.text.lower() for c in cues if c.end <= start or c.start >= end)
        assert not any(phrase(s.caption) in outside for s in v.steps)  # no step of this video outside its moment
        for s in v.steps:
            total += 1
            near = [c for c in cues if c.end >= s.start - 1.5 and c.start <= s.end]
            announced += any(phrase(s.caption) in c.text.lower() for c in near)
    assert total > 0 and announced / total >= 0.7
    joined = " ".join(text)
    assert "I'm going to" in joined or "I'm gonna" in joined  # first person
    assert any(x in joined for x in ("Go ahead and", "Make sure you", "Next, you want to", "Now "))  # imperative
    assert any(x in joined for x in ("Um, ", "Uh, ", "So, ", "Okay, "))  # fillers


def test_narration_is_deterministic_and_pauses() -> None:
    import numpy as np

    v = next(v for v in A.moment_videos(A.load_split(HIREST, "train")) if len(v.steps) >= 4)
    first = narrate(v, np.random.default_rng(5), 0.25, ["cut the paper"])
    assert first == narrate(v, np.random.default_rng(5), 0.25, ["cut the paper"])
    assert first != narrate(v, np.random.default_rng(6), 0.25, ["cut the paper"])
    gaps = [b.start - a.end for a, b in zip(first, first[1:], strict=False)]
    assert max(gaps) >= 1.0  # the host works in silence at times
    quiet = narrate(v, np.random.default_rng(5), 0.0, [])
    assert len(quiet) > len(first)
    assert phrase("Make a Plaster Mask") == "make a plaster mask"
    assert phrase("extract one TBSP of papaya juice.") == "extract one TBSP of papaya juice"


def test_a_build_of_an_older_generator_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "sim_config.json").write_text(json.dumps({"seed": 0, "train_videos": 6, "val_videos": 3}))
    with pytest.raises(FileExistsError, match="older quag.*make clean-sim"):
        check_sim_root(out)
    with pytest.raises(FileExistsError, match="older quag"):
        build_sim(HIREST, out, SimConfig(seed=0, train_videos=6, val_videos=3), encode=hash_encode, progress=False)
    check_sim_root(tmp_path / "missing")  # nothing built yet: nothing to refuse
