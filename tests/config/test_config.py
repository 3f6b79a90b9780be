from pathlib import Path

import pytest
import yaml

from quag.config import ExperimentConfig, apply_overrides, dump_config, load_config, save_config


def test_defaults_are_the_paper_setting() -> None:
    c = ExperimentConfig()
    assert c.model.hidden_dim == 768 and c.model.num_heads == 12 and c.model.num_encoder_layers == 2
    assert c.train.lr == 1e-5 and c.train.batch_size == 5 and c.train.epochs == 50
    assert c.train.msp_loss_weight == 0.0003 and c.train.weight_decay == 0.01 and c.train.grad_clip == 5.0
    assert c.eval.num_beams == 3 and c.eval.segmentation_rounds == 20 and c.data.caption_frames == 20


def test_yaml_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain:\n  lr: 2.0e-5\nmodel:\n  use_qc2: false\n")
    c = load_config(p, ["train.lr=1e-4", "train.tasks=[moment_retrieval]", "data.root=/d", "model.qc2_gates=channel"])
    assert c.name == "x" and c.train.lr == 1e-4 and c.model.use_qc2 is False
    assert c.train.tasks == ["moment_retrieval"] and c.data.root == "/d" and c.model.qc2_gates == "channel"
    assert c.train.epochs == 50  # untouched defaults stay


def test_unknown_keys_and_bad_values_are_rejected(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  learning_rate: 1\n")
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) train.learning_rate"):
        load_config(p)
    with pytest.raises(ValueError, match="Unknown config key"):
        load_config(None, ["modle.hidden_dim=8"])
    with pytest.raises(ValueError, match="train.epochs: expected an integer"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(ValueError, match="model.arch: 'vit' is not one of"):
        load_config(None, ["model.arch=vit"])
    with pytest.raises(ValueError, match="train.tasks: unknown task"):
        load_config(None, ["train.tasks=[captioning]"])
    with pytest.raises(ValueError, match="divisible"):
        load_config(None, ["model.hidden_dim=100"])
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(FileNotFoundError, match="configs/"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    c = load_config(None, ["train.lr=3e-5", "name=r"])
    path = save_config(c, tmp_path / "run" / "config.yaml")
    assert load_config(path) == c
    assert yaml.safe_load(dump_config(c))["train"]["lr"] == 3e-5


def test_shipped_configs_load() -> None:
    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    hirest = [p for p in configs if not p.name.startswith("tvsum")]  # TVSum configs: tests/tvsum/test_tvsum_train.py
    assert len(hirest) >= 3
    for p in hirest:
        cfg = load_config(p)
        from quag.models import build_model

        if cfg.model.hidden_dim <= 256:  # paper-size models are built in tests/models
            build_model(cfg.model)


def _reference_switches() -> list[tuple[str, str]]:
    """(section, key) of every field whose choices include the authors' behaviour, spelled ``reference``."""
    import dataclasses
    import typing

    from quag.config import DataConfig, EvalConfig, ModelConfig, TrainConfig

    out = []
    for section, cls in (("model", ModelConfig), ("data", DataConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if typing.get_origin(hints[f.name]) is typing.Literal and "reference" in typing.get_args(hints[f.name]):
                out.append((section, f.name))
    return out


@pytest.mark.parametrize("name", ["reference_quag.yaml", "reference_joint.yaml"])
def test_reference_presets_turn_on_every_reference_switch(name: str) -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / name)
    switches = _reference_switches()
    assert (
        len(switches) >= 8
    )  # padding, caption_window, transcript_alignment, caption_loss_padding, moment_decoding, ...
    off = [f"{s}.{k}" for s, k in switches if getattr(getattr(cfg, s), k) != "reference"]
    assert not off, f"{name} leaves these switches at our behaviour: {off}"
    assert cfg.model.attention_dropout is None and cfg.train.moment_loss == "bce"
    assert cfg.eval.segmentation_rounds == 20 and cfg.eval.segmentation_min_gap == 5 and cfg.eval.length_penalty == 0


@pytest.mark.parametrize(
    ("old", "new_key", "new_value"),
    [
        ("model.mask_padding=false", "model.padding", "reference"),
        ("model.mask_padding=true", "model.padding", "masked"),
        ("train.caption_loss_ignore_pad=false", "train.caption_loss_padding", "reference"),
        ("eval.segmentation_emit_last=false", "eval.segmentation_last", "reference"),
        ("eval.moment_decoding=independent", "eval.moment_decoding", "reference"),
        ("data.asr_alignment=official", "data.transcript_alignment", "reference"),
        ("data.asr_alignment=overlap", "data.transcript_alignment", "overlap"),
        ("model.asr_dim=256", "model.transcript_dim", 256),
    ],
)
def test_old_spellings_still_work_with_a_deprecation_message(old: str, new_key: str, new_value: object) -> None:
    from quag.config import ConfigDeprecationWarning

    with pytest.warns(ConfigDeprecationWarning, match=new_key.replace(".", r"\.")):
        cfg = load_config(None, [old])
    section, key = new_key.split(".")
    assert getattr(getattr(cfg, section), key) == new_value


def test_old_and_new_key_together_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"model\.mask_padding and model\.padding are both set"):
        load_config(None, ["model.mask_padding=false", "model.padding=masked"])
