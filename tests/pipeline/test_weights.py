"""Strict EVA-CLIP checkpoint loading: accepted layouts and the errors for missing, unexpected and mis-shaped keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from quag.pipeline.eva_clip import EVA_CLIP_G14, build_text_tower, build_vision_tower
from quag.pipeline.weights import CheckpointError, check_state_dict, load_tower, read_checkpoint
from tests.pipeline.helpers import TINY_EVA
from tests.pipeline.test_eva_clip import read_manifest


def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    state = {f"visual.{k}": v for k, v in build_vision_tower(TINY_EVA).state_dict().items()}
    state.update({f"text.{k}": v for k, v in build_text_tower(TINY_EVA).state_dict().items()})
    return state


@pytest.mark.parametrize("layout", ["bare", "clip_model", "state_dict", "model", "module", "module_prefix"])
def test_accepted_layouts_load_identical_weights(tmp_path: Path, layout: str) -> None:
    state = tiny_state()
    if layout == "clip_model":
        obj = {f"clip_model.{k}": v for k, v in state.items()}
    elif layout == "module_prefix":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif layout == "bare":
        obj = state
    else:
        obj = {layout: state, "epoch": 3}
    torch.save(obj, tmp_path / "ckpt.pt")
    visual, config = load_tower(tmp_path / "ckpt.pt", "visual", config=TINY_EVA)
    text, _ = load_tower(tmp_path / "ckpt.pt", "text", config=TINY_EVA)
    assert config == TINY_EVA and not any(p.requires_grad for p in visual.parameters())
    for k, v in visual.state_dict().items():
        torch.testing.assert_close(v, state[f"visual.{k}"])
    for k, v in text.state_dict().items():
        torch.testing.assert_close(v, state[f"text.{k}"])


def test_embedded_config_is_used(tiny_checkpoint: Path) -> None:
    _, embedded = read_checkpoint(tiny_checkpoint)
    assert embedded == TINY_EVA
    model, config = load_tower(tiny_checkpoint, "visual")
    assert config == TINY_EVA and model(torch.zeros(1, 3, 28, 28)).shape == (1, 24)


def test_fp16_checkpoint_is_cast_to_fp32(tmp_path: Path) -> None:
    torch.save({k: v.half() for k, v in tiny_state().items()}, tmp_path / "half.pt")
    model, _ = load_tower(tmp_path / "half.pt", "text", config=TINY_EVA)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def expect_error(tmp_path: Path, state: dict[str, torch.Tensor], *needles: str) -> str:
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as info:
        load_tower(tmp_path / "bad.pt", "visual", config=TINY_EVA)
    message = str(info.value)
    for needle in needles:
        assert needle in message
    return message


def test_missing_key_is_named(tmp_path: Path) -> None:
    state = tiny_state()
    del state["visual.blocks.1.attn.q_bias"]
    expect_error(tmp_path, state, "1 missing key", "visual.blocks.1.attn.q_bias", "eva_clip_psz14.pt")


def test_unexpected_key_is_named(tmp_path: Path) -> None:
    state = tiny_state()
    state["visual.blocks.0.gamma_1"] = torch.ones(32)  # a layer-scale model is a different architecture
    state["logit_bias"] = torch.zeros(())
    expect_error(tmp_path, state, "2 unexpected key", "visual.blocks.0.gamma_1", "logit_bias")


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    state = tiny_state()
    state["visual.head.weight"] = torch.zeros(10, 32)
    expect_error(tmp_path, state, "wrong shape", "visual.head.weight: checkpoint [10, 32] vs model [24, 32]")


def test_wrong_configuration_lists_many_keys(tmp_path: Path) -> None:
    torch.save(tiny_state(), tmp_path / "tiny_no_config.pt")  # no embedded config -> g/14 is assumed
    with pytest.raises(CheckpointError, match=r"wrong shape key\(s\)[\s\S]*and \d+ more"):
        load_tower(tmp_path / "tiny_no_config.pt", "visual")


def test_not_a_state_dict(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_tower(tmp_path / "junk.pt", "visual")
    with pytest.raises(FileNotFoundError, match="BAAI/EVA"):
        load_tower(tmp_path / "absent.pt", "visual")


def test_full_size_manifest_passes_the_strict_check_and_perturbations_fail() -> None:
    """Key/shape check at full size without weights: the official manifest is exactly what the towers need."""
    manifest = dict(read_manifest())
    for tower, build in (("visual", build_vision_tower), ("text", build_text_tower)):
        with torch.device("meta"):
            model = build(EVA_CLIP_G14)
        expected = {f"{tower}.{k}": v.shape for k, v in model.state_dict().items()}
        other = tuple(f"{t}." for t in ("visual", "text") if t != tower)
        check_state_dict(expected, manifest, "manifest", ignore_prefixes=other)
    with torch.device("meta"):
        expected = {f"visual.{k}": v.shape for k, v in build_vision_tower(EVA_CLIP_G14).state_dict().items()}
    broken = dict(manifest)
    broken.pop("visual.blocks.39.mlp.fc2.bias")
    broken["visual.pos_embed"] = [1, 197, 1408]
    with pytest.raises(
        CheckpointError,
        match=r"visual.blocks.39.mlp.fc2.bias[\s\S]*visual.pos_embed: checkpoint "
        r"\[1, 197, 1408\] vs model \[1, 257, 1408\]",
    ):
        check_state_dict(expected, broken, "manifest", ignore_prefixes=("text.",))
