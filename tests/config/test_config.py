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
