"""Reference checkpoints: strict loading from state dicts generated from the manifests, CLIP4Caption init,
and the parameter counts against the reference's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from quag.config import ModelConfig
from quag.models import build_model, count_parameters
from quag.models.reference_compat import (
    REFERENCE_TRAINABLE,
    REFERENCE_UNBUILT,
    SKIPPED_PREFIXES,
    TIED_ALIASES,
    init_from_clip4caption,
    load_reference_state_dict,
    random_reference_state_dict,
    read_manifest,
    reference_key_map,
)
from tests.models.helpers import MANIFESTS, make_batch, tiny_config

MANIFEST = {"quag": MANIFESTS / "quag_state_dict.txt", "joint": MANIFESTS / "joint_state_dict.txt"}


@pytest.fixture(scope="module", params=["quag", "joint"])
def paper(request: pytest.FixtureRequest) -> Iterator[tuple[str, torch.nn.Module, dict[str, torch.Tensor]]]:
    """A paper-size model and a random reference state dict of the same arch (built once per arch)."""
    arch = request.param
    with torch.device("meta"):  # no initialisation: every test here fills the weights from a state dict
        model = build_model(ModelConfig(arch=arch))
    yield arch, model.to_empty(device="cpu"), random_reference_state_dict(MANIFEST[arch])


def test_reference_state_dict_loads_strictly(paper: tuple[str, torch.nn.Module, dict[str, torch.Tensor]]) -> None:
    arch, model, sd = paper
    skipped = load_reference_state_dict(model, sd, arch)
    assert skipped == [k for k in sd if k.startswith(SKIPPED_PREFIXES[arch])] and skipped
    ours = model.state_dict()
    for ref_key, target in reference_key_map(arch).items():
        expected = torch.cat([ours[t] for t in target]) if isinstance(target, tuple) else ours[target]
        assert torch.equal(sd[ref_key], expected), ref_key
    for alias in TIED_ALIASES:
        assert torch.equal(sd[alias], ours["heads.step_captioning.word_embeddings.weight"])


def test_loaded_model_runs(paper: tuple[str, torch.nn.Module, dict[str, torch.Tensor]]) -> None:
    arch, model, sd = paper
    load_reference_state_dict(model, sd, arch)
    batch = make_batch("moment_retrieval", [3, 4], model.config)
    with torch.no_grad():
        assert torch.isfinite(model.eval()(batch).start_logits).all()


def test_errors_list_missing_unexpected_and_misshaped_keys(
    paper: tuple[str, torch.nn.Module, dict[str, torch.Tensor]],
) -> None:
    arch, model, sd = paper
    broken = dict(sd)
    del broken["mask_embed.weight"]
    broken["not_a_reference_key"] = torch.zeros(1)
    broken["start_predictor.0.weight"] = torch.zeros(1, 7)
    with pytest.raises(ValueError) as err:
        load_reference_state_dict(model, broken, arch)
    message = str(err.value)
    assert "missing" in message and "mask_embed.weight" in message
    assert "unexpected" in message and "not_a_reference_key" in message
    assert "mis-shaped" in message and "start_predictor.0.weight: checkpoint (1, 7), model (1, 768)" in message
    untied = dict(sd)
    untied[next(iter(TIED_ALIASES))] = torch.zeros_like(untied[next(iter(TIED_ALIASES))])
    with pytest.raises(ValueError, match="tied weights that differ"):
        load_reference_state_dict(model, untied, arch)
    other = "joint" if arch == "quag" else "quag"
    with pytest.raises(ValueError, match="cannot load into a model built with"):
        load_reference_state_dict(model, sd, other)


def test_ablated_model_cannot_load_a_reference_checkpoint() -> None:
    sd = {k: torch.zeros(1) for k in reference_key_map("quag", 2, 2)}
    with pytest.raises(ValueError, match="does not build"):
        load_reference_state_dict(build_model(tiny_config("quag", use_msp=False)), sd, "quag")


@pytest.mark.parametrize("arch", ["quag", "joint"])
def test_parameter_counts_explain_the_reference_totals(arch: str) -> None:
    entries = read_manifest(MANIFEST[arch])
    numel = {name: int(torch.Size(dims).numel()) for name, dims, _ in entries}
    assert sum(n for k, n in numel.items() if k not in TIED_ALIASES) == REFERENCE_TRAINABLE[arch]
    unbuilt = sum(n for k, n in numel.items() if k.startswith(SKIPPED_PREFIXES[arch]))
    assert unbuilt == sum(REFERENCE_UNBUILT[arch].values())
    with torch.device("meta"):
        model = build_model(ModelConfig(arch=arch))
    assert count_parameters(model)["total"] + unbuilt == REFERENCE_TRAINABLE[arch]


def test_init_from_clip4caption(paper: tuple[str, torch.nn.Module, dict[str, torch.Tensor]]) -> None:
    arch, model, _ = paper
    c4c = random_reference_state_dict(MANIFESTS / "clip4caption_init_keys.txt", seed=1)
    report = init_from_clip4caption(model, c4c)
    ours = model.state_dict()
    words = c4c["decoder.embeddings.word_embeddings.weight"]
    assert torch.equal(ours["heads.step_captioning.word_embeddings.weight"], words)
    q = c4c["decoder.decoder.layer.1.enc_attn.att.query.weight"]
    assert torch.equal(ours["heads.step_captioning.layers.1.cross_attn.q_proj.weight"], q)
    assert report.missing == [] and report.unexpected == []
    if arch == "joint":
        assert report.mis_shaped == []
        positions = c4c["visual.embeddings.position_embeddings.weight"]
        assert torch.equal(ours["visual_encoder.position_embeddings.weight"], positions)
        skipped = sorted(k for k in c4c if k.startswith("visual.pooler.") or "decoder.weight" in k)
        assert sorted(report.skipped) == skipped
        init_from_clip4caption(model, c4c, strict=True)
    else:
        # QUAG builds normalize_video at 768 (not loadable from a 512-d CLIP4Caption) and no visual encoder.
        assert [m.split(":")[0] for m in report.mis_shaped] == [
            "normalize_video.visual_norm2d.weight",
            "normalize_video.visual_norm2d.bias",
        ]
        assert all(k.startswith("visual.") or "decoder.weight" in k for k in report.skipped)
        with pytest.raises(ValueError, match="mis-shaped"):
            init_from_clip4caption(model, c4c, strict=True)


def test_init_from_clip4caption_accepts_legacy_names_and_reports_a_short_position_table() -> None:
    model = build_model(tiny_config("joint"))
    legacy = {
        "clip4cap_model.decoder.embeddings.LayerNorm.gamma": torch.full((32,), 2.0),
        "decoder.embeddings.LayerNorm.beta": torch.full((32,), 3.0),
        "visual.embeddings.position_embeddings.weight": torch.zeros(8, 32),  # the model has 32 rows
        "cls.predictions.bias": torch.zeros(120),
    }
    report = init_from_clip4caption(model, legacy)
    assert torch.equal(model.decoder.embed_norm.weight, torch.full((32,), 2.0))
    assert torch.equal(model.decoder.embed_norm.bias, torch.full((32,), 3.0))
    assert report.mis_shaped == ["visual.embeddings.position_embeddings.weight: checkpoint (8, 32), model (32, 32)"]
    assert report.unexpected == ["cls.predictions.bias"]
