"""Decoding batches grouped by length gives the predictions of batches in dataset order (padding is masked)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from quag.checkpoint import load_checkpoint
from quag.data import annotations as A
from quag.data.datasets import build_datasets, make_store
from quag.inference import runner
from tests.helpers import tiny_speech_checkpoint


@pytest.mark.slow
def test_length_grouped_batches_change_no_prediction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, cfg, _, _ = load_checkpoint(tiny_speech_checkpoint(tmp_path, steps=4), torch.device("cpu"))
    store = make_store(cfg.data)
    store.drop_visual()
    videos = A.load_split(cfg.data.root, "train")
    tasks = ["moment_retrieval", "moment_segmentation", "step_captioning"]
    datasets = build_datasets(cfg.data, "train", tasks, training=False, store=store, videos=videos)  # type: ignore[arg-type]
    lengths = datasets["moment_retrieval"].lengths()
    assert len(set(lengths)) > 1, "the test needs videos of different lengths"
    ecfg = dataclasses.replace(cfg.eval, batch_size=3, precision="fp32", max_caption_tokens=8)

    def decode() -> dict:
        return {t: runner.predict_task(model, ds, ecfg, torch.device("cpu")).official for t, ds in datasets.items()}

    grouped = decode()
    loader = runner._loader
    monkeypatch.setattr(
        runner, "_loader", lambda ds, bs, idx, workers=0, by_length=True: loader(ds, bs, idx, by_length=False)
    )
    assert decode() == grouped
