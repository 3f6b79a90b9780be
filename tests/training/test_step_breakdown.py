"""bench_step_breakdown: operators sorted into kinds of work, and the tables it prints."""

from __future__ import annotations

import torch

from tests.helpers import benchmark


def test_operators_are_sorted_into_their_kinds() -> None:
    bd = benchmark("bench_step_breakdown")
    assert bd.kind_of("aten::mm") == "matrix products"
    assert bd.kind_of("aten::_scaled_dot_product_flash_attention_for_cpu_backward") == "matrix products"
    assert bd.kind_of("aten::copy_") == "copies and casts"
    assert bd.kind_of("aten::random_") == "dropout masks (random draws, comparisons)"
    assert bd.kind_of("aten::_foreach_norm") == "optimizer and gradient clipping"
    assert bd.kind_of(bd.TRIM_LABEL) == "heap trimming (train.release_memory)"
    assert bd.kind_of("aten::mul") == bd.ELEMENTWISE
    assert bd.kind_of("_LinearBackward") == bd.FRAMEWORK
    assert bd.kind_of("aten::mmx") == bd.ELEMENTWISE  # exact names, not prefixes


def test_breakdown_counts_each_kind_once_per_step() -> None:
    bd = benchmark("bench_step_breakdown")
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    trim = bd.timed_trim(lambda: sum(range(20_000)))

    def step() -> None:
        (a @ b).softmax(-1)
        trim()

    out = bd.breakdown(step, 2)
    assert set(out) == {kind for kind, _ in bd.KINDS} | {bd.ELEMENTWISE, bd.FRAMEWORK}
    assert out["matrix products"] > 0
    assert out["softmax and its backward"] > 0
    assert out["heap trimming (train.release_memory)"] > 0
    assert out["dropout masks (random draws, comparisons)"] == 0


def test_bf16_batch_copy_leaves_the_original_alone() -> None:
    bd = benchmark("bench_step_breakdown")
    batch = bd.make_batch("moment_retrieval")
    cast = bd.to_bf16(batch)
    assert cast.video.dtype == torch.bfloat16 and cast.query_embedding.dtype == torch.bfloat16
    assert batch.video.dtype == torch.float32
    assert cast.video_mask.dtype == torch.bool and cast.start_target is batch.start_target


def test_render_prints_every_path_and_kind() -> None:
    bd = benchmark("bench_step_breakdown")
    kinds = {kind: 1.0 for kind, _ in bd.KINDS} | {bd.ELEMENTWISE: 2.0, bd.FRAMEWORK: 3.0}
    row = {
        "task": "moment_retrieval",
        "default_ms": 900.0,
        "no_release_ms": 850.0,
        "all_bf16_ms": 800.0,
        "share_of_bf16_gemm": {"default": 0.6, "no_release": 0.63, "all_bf16": 0.66},
        "faults_per_step": {"default": 40000.0, "no_release": 100.0, "all_bf16": 50.0},
        "breakdown_ms": kinds,
    }
    payload = {
        "torch": "x",
        "gemm_probe": {"line": "GEMM probe"},
        "rounds": 7,
        "profiled_steps": 3,
        "rows": [row],
        "inference": {
            "gflop": 90.0,
            "rounds": 14,
            "fp32_ms": 480.0,
            "bf16_ms": 270.0,
            "all_bf16_ms": 265.0,
            "share_of_bf16_gemm": {"fp32": 0.48, "bf16": 0.85, "all_bf16": 0.87},
            "same_spans_as_bf16": {"fp32": 4, "bf16": 5, "all_bf16": 3},
            "videos": 5,
            "breakdown_ms": kinds,
        },
    }
    text = bd.render(payload)
    for label in [*bd.PATH_LABELS.values(), *bd.INFER_LABELS.values()]:
        assert label in text
    for kind in kinds:
        assert kind in text
    assert "900  60%    40000f" in text
    assert "profiled total" in text and "12 (100.0%)" in text
    assert "retrieval inference, ms (batch 5, 90 GFLOP; median of 14" in text
    bf16_line = next(line for line in text.splitlines() if line.startswith(bd.INFER_LABELS["bf16"]))
    assert bf16_line.endswith("270     85%            5/5")
    assert "265     87%            3/5" in text
