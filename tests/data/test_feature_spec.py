"""FeatureSpec streams: per-stream simulated flags (old single-bool files still read), per-stream compatibility,
and speech-only reading of a root with frame files."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from quag.data import annotations as A
from quag.data.features import FeatureError, FeatureSpec, FeatureStore
from quag.data.sim import SIM_SPEC


def test_simulated_is_per_stream_and_old_bool_files_still_read(tmp_path: Path) -> None:
    assert SIM_SPEC.simulated == ("visual",) and SIM_SPEC.streams == ("visual", "transcript", "query")
    old = SIM_SPEC.to_dict() | {"simulated": True}
    (tmp_path / "feature_spec.json").write_text(json.dumps(old))
    assert FeatureSpec.load(tmp_path).simulated == ("visual",)  # a quag 0.x HiREST-sim spec
    assert FeatureSpec.from_dict(old | {"simulated": False}).simulated == ()
    # today's files hold a list, and round-trip
    SIM_SPEC.save(tmp_path)
    assert json.loads((tmp_path / "feature_spec.json").read_text())["simulated"] == ["visual"]
    assert FeatureSpec.load(tmp_path) == SIM_SPEC
    # canonical order; a speech-only spec has no visual stream to be simulated
    assert FeatureSpec(simulated=("query", "visual")).simulated == ("visual", "query")
    assert FeatureSpec(visual_dim=0, simulated=("visual",)).simulated == ()
    with pytest.raises(FeatureError, match=r"unknown stream\(s\) \['audio'\]"):
        FeatureSpec(simulated=("audio",))


def test_without_visual_drops_the_stream_and_its_flag() -> None:
    speech = SIM_SPEC.without_visual()
    assert speech.speech_only and speech.visual_encoder == "none" and speech.simulated == ()
    assert speech.streams == ("transcript", "query")
    assert (speech.transcript_encoder, speech.query_encoder) == (SIM_SPEC.transcript_encoder, SIM_SPEC.query_encoder)
    assert SIM_SPEC.describe("visual") == "'sim-minilm-proj1024' (1024-d, 1.0 fps, SIMULATED)"
    assert speech.describe("visual") == "none (speech-only)"


def test_compatibility_is_checked_per_stream() -> None:
    real_speech = replace(SIM_SPEC.without_visual(), transcript_model="whisper-tiny.en")
    # a speech-only model trained on HiREST-sim reads features of real videos, with or without frames
    SIM_SPEC.without_visual().check_compatible(real_speech)
    SIM_SPEC.without_visual().check_compatible(replace(real_speech, visual_encoder="eva-clip-g14", visual_dim=1024))
    # a model with the simulated visual stream does not, and the message names the stream
    eva = replace(real_speech, visual_encoder="eva-clip-g14", visual_dim=1024)
    with pytest.raises(FeatureError) as info:
        SIM_SPEC.check_compatible(eva)
    message = str(info.value)
    assert (
        "visual stream: the checkpoint has 'sim-minilm-proj1024' (1024-d, 1.0 fps, SIMULATED), the features have "
        "'eva-clip-g14' (1024-d, 1.0 fps)"
    ) in message
    assert "transcript stream" not in message and "query stream" not in message
    # same encoder names, but one side simulated: still a difference
    with pytest.raises(FeatureError, match="visual stream"):
        SIM_SPEC.check_compatible(replace(SIM_SPEC, simulated=()))
    # every differing stream is named
    with pytest.raises(FeatureError) as info:
        FeatureSpec().check_compatible(replace(FeatureSpec(), transcript_encoder="other", query_encoder="minilm"))
    assert "transcript stream" in str(info.value) and "query stream" in str(info.value)
    assert "visual stream" not in str(info.value)


def test_drop_visual_reads_no_frame_file(sim_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "no-frames"
    shutil.copytree(sim_root, root)
    shutil.rmtree(root / "eva_clip_features")
    videos = [v.video for v in A.moment_videos(A.load_split(root, "train"))]
    store = FeatureStore(root)
    with pytest.raises(FeatureError, match="eva_clip_features"):
        store.check_files(videos)
    store.drop_visual()
    store.check_files(videos)
    assert store.spec.speech_only and store.spec.simulated == ()
    assert store.visual(videos[0], 7).shape == (7, 0)
    assert store.transcript(videos[0], 7).shape == (7, 384)
