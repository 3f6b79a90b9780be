import json
from pathlib import Path

import pytest
import torch

from quag.checkpoint import load_checkpoint
from quag.cli import main
from quag.data.collate import collate
from quag.evaluation.predictions import load_predictions
from quag.evaluation.selection import selection_score
from quag.models import build_model
from quag.models.losses import total_loss
from quag.tasks import TASKS
from quag.training.recipe import TrainRecipe, train
from tests.training.helpers import tiny_experiment, tiny_overrides


def test_two_step_run_through_the_cli(sim_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--no-progress", "--device", "cpu", "-", *tiny_overrides(sim_root, tmp_path, "train.max_steps=2")]
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("name: tiny\n")
    args[4] = str(cfg_file)
    assert main(args) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    run = tmp_path / "tiny"
    for f in (
        "config.yaml",
        "train.log",
        "metrics.jsonl",
        "checkpoints/last/model.safetensors",
        "checkpoints/last/trainer_state.pt",
        "checkpoints/best/feature_spec.json",
    ):
        assert (run / f).is_file(), f
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "lr" in r] == [1, 2]
    assert any("val/mean_score" in r for r in records)
    # the prediction files validate against the official formats
    for task in TASKS:
        load_predictions(run / "predictions" / f"val_{task}.json", task)
    lines = (run / "predictions" / "val_predictions.jsonl").read_text().splitlines()
    assert lines and all("video" in json.loads(x) for x in lines)
    model, cfg, spec, meta = load_checkpoint(run / "checkpoints" / "best")
    assert meta.step == 2 and spec.simulated and cfg.model.hidden_dim == 32


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_overfitting_one_batch_drives_the_loss_down(sim_root: Path, tmp_path: Path, task: str) -> None:
    cfg = tiny_experiment(sim_root, tmp_path, "model.dropout=0.0")
    recipe = TrainRecipe(cfg, device="cpu", progress=False)
    recipe.setup()
    ds = recipe.train_sets[task]
    batch = collate([ds[i] for i in range(min(4, len(ds)))])
    torch.manual_seed(0)
    model = build_model(cfg.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = total_loss(task, model(batch), batch, cfg.train.msp_loss_weight)["task_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    recipe.cleanup()
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_resume_reproduces_the_uninterrupted_run(
    sim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = ("train.max_steps=6", "train.save_every=3", "train.eval_every_epochs=99")
    full = train(tiny_experiment(sim_root, tmp_path / "a", *extra), device="cpu", progress=False)
    save = TrainRecipe._save

    def crash_after_step_3(self: TrainRecipe, name: str, metrics: dict | None = None) -> None:
        save(self, name, metrics)
        if self.step == 3:
            raise KeyboardInterrupt  # the process dies right after its step-3 checkpoint

    monkeypatch.setattr(TrainRecipe, "_save", crash_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_experiment(sim_root, tmp_path / "b", *extra), device="cpu", progress=False)
    monkeypatch.undo()
    resumed = train(
        tiny_experiment(sim_root, tmp_path / "b", *extra),
        resume=tmp_path / "b" / "tiny" / "checkpoints" / "last",
        device="cpu",
        progress=False,
    )
    assert len(full.losses) == 6
    assert resumed.losses == full.losses[3:]  # the next step's loss (and every later one) is identical


def test_resume_refuses_another_model(sim_root: Path, tmp_path: Path) -> None:
    train(
        tiny_experiment(sim_root, tmp_path, "train.max_steps=1", "train.eval_every_epochs=99"),
        device="cpu",
        progress=False,
    )
    with pytest.raises(ValueError, match="model config differs"):
        train(
            tiny_experiment(sim_root, tmp_path, "model.hidden_dim=64"),
            resume=tmp_path / "tiny" / "checkpoints" / "last",
            device="cpu",
            progress=False,
        )


def test_feature_width_mismatch_is_explained(sim_root: Path, tmp_path: Path) -> None:
    cfg = tiny_experiment(sim_root, tmp_path, "model.query_dim=1024")
    with pytest.raises(ValueError, match="model.query_dim=1024 but the features have 384"):
        TrainRecipe(cfg, device="cpu", progress=False).setup()


def test_selection_score() -> None:
    m = {
        "moment_retrieval/R@0.5": 60.0,
        "moment_retrieval/R@0.7": 40.0,
        "moment_segmentation/recall@0.5": 30.0,
        "moment_segmentation/precision@0.5": 10.0,
        "step_captioning/CIDEr": 5.0,
    }
    assert selection_score(m) == pytest.approx((50 + 20 + 5) / 3)
