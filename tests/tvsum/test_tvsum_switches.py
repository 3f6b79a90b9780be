"""The QD-DETR switches of the TVSum model: shapes, masks, gradients, audio never read, determinism, defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from quag.tvsum.config import TVSumConfig, TVSumModelConfig, load_tvsum_config
from quag.tvsum.data import TVSUM_SPLITS, collate_videos, load_tvsum
from quag.tvsum.layers import sine_position_encoding, time_edge_features
from quag.tvsum.losses import SaliencyLossWeights, saliency_loss
from quag.tvsum.model import TVSumQuag
from quag.tvsum.train import forward_batch, train_category
from tests.tvsum.helpers import tiny_tvsum_overrides

REPO = Path(__file__).resolve().parents[2]
PYTORCH_INIT_FINGERPRINT = "d4595e6301a8afc9"
"""The runs with ``init=pytorch``, the setting before the switches existed (docs/tvsum.md)."""
DEFAULT_FINGERPRINT = "b4217cbde2f3463a"
"""The default setting's runs (``init=xavier``)."""

SWITCHES: dict[str, dict[str, object]] = {
    "default": {},
    "tokens": {"query_input": "tokens"},
    "position": {"position": "qd_detr"},
    "no_audio": {"use_audio": False, "use_msp": False},
    "dropout": {"dropout_scheme": "qd_detr"},
    "global_token": {"saliency_head": "global_token"},
    "pytorch_init": {"init": "pytorch"},
    "all": {
        "query_input": "tokens",
        "position": "qd_detr",
        "use_audio": False,
        "use_msp": False,
        "dropout_scheme": "qd_detr",
        "saliency_head": "global_token",
        "init": "xavier",
    },
}


def tiny(**kw: object) -> TVSumModelConfig:
    base: dict[str, object] = dict(visual_dim=12, audio_dim=10, query_dim=6, hidden_dim=16, num_heads=2, ffn_dim=32)
    base.update(kw)
    return TVSumModelConfig(**base)  # type: ignore[arg-type]


def inputs(tokens: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """3 videos of 7, 4, 5 clips; titles of 3, 5, 2 tokens (or pooled)."""
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 4, 5])[:, None]  # (B, T)
    visual = torch.randn(3, 7, 12, generator=g) * mask[..., None]
    audio = torch.randn(3, 7, 10, generator=g) * mask[..., None]
    if not tokens:
        return visual, audio, torch.randn(3, 6, generator=g), mask, None
    token_mask = torch.arange(5)[None, :] < torch.tensor([3, 5, 2])[:, None]  # (B, L)
    return visual, audio, torch.randn(3, 5, 6, generator=g) * token_mask[..., None], mask, token_mask


@pytest.mark.parametrize("name", list(SWITCHES))
def test_shapes_padding_and_gradients(name: str) -> None:
    cfg = tiny(**SWITCHES[name])
    torch.manual_seed(0)
    model = TVSumQuag(cfg).eval()
    tokens = cfg.query_input == "tokens"
    visual, audio, query, mask, qmask = inputs(tokens)
    audio_in = audio if cfg.use_audio else None
    neg, neg_mask = query.roll(1, 0), None if qmask is None else qmask.roll(1, 0)
    out = model(visual, audio_in, query, mask, neg, qmask, neg_mask)
    assert out.scores.shape == out.negative_scores.shape == (3, 7)
    assert torch.isfinite(out.scores).all() and (out.msp_loss is not None) == cfg.use_msp
    # Video 1 alone (unpadded, its own title unpadded) scores as inside the padded batch.
    alone_q = query[1:2] if qmask is None else query[1:2, :5]
    alone = model(
        visual[1:2, :4],
        None if audio_in is None else audio_in[1:2, :4],
        alone_q,
        mask[1:2, :4],
        None,
        None if qmask is None else qmask[1:2, :5],
    ).scores
    torch.testing.assert_close(alone[0], out.scores[1, :4], rtol=1e-4, atol=1e-5)
    # Every parameter learns (train mode, with the negative pass).
    model.train()
    out = model(visual, audio_in, query, mask, neg, qmask, neg_mask)
    target = torch.rand(3, 7) * mask
    saliency_loss(out.scores, target, mask, SaliencyLossWeights(), out.msp_loss, out.negative_scores)[
        "total"
    ].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_padded_title_tokens_are_ignored() -> None:
    torch.manual_seed(0)
    model = TVSumQuag(tiny(query_input="tokens")).eval()
    visual, audio, query, mask, qmask = inputs(tokens=True)
    assert qmask is not None
    noisy = query + 100.0 * (~qmask)[..., None]  # garbage on the padded tokens only
    torch.testing.assert_close(
        model(visual, audio, noisy, mask, None, qmask).scores, model(visual, audio, query, mask, None, qmask).scores
    )


def test_audio_off_never_reads_audio(synthetic_tvsum: Path) -> None:
    model = TVSumQuag(tiny(use_audio=False, use_msp=False)).eval()
    assert not any("audio" in n for n, _ in model.named_parameters())
    visual, audio, query, mask, _ = inputs(tokens=False)
    with_nan = model(visual, torch.full_like(audio, float("nan")), query, mask).scores
    torch.testing.assert_close(with_nan, model(visual, None, query, mask).scores)
    # The loader opens no audio file either.
    shutil.rmtree(synthetic_tvsum / "audio_features")
    videos = load_tvsum(synthetic_tvsum, ("VU",), load_audio=False)
    batch = collate_videos(list(videos.values()))
    assert batch.audio is None and "audio" not in next(iter(videos.values())).stream_lengths
    with pytest.raises(FileNotFoundError):
        load_tvsum(synthetic_tvsum, ("VU",))


def test_title_tokens_are_loaded_and_collated(synthetic_tvsum: Path) -> None:
    videos = load_tvsum(synthetic_tvsum, ("VU",))
    batch = collate_videos([videos[v] for v in TVSUM_SPLITS["VU"]["train"]])
    assert batch.query_tokens is not None and batch.query_token_mask is not None
    assert batch.query_tokens.shape == (4, 3, 4) and bool(batch.query_token_mask.all())
    cfg = load_tvsum_config(None, [*tiny_tvsum_overrides(synthetic_tvsum), "model.query_input=tokens"])
    out = forward_batch(TVSumQuag(cfg.model), batch, negatives=True)
    assert out.scores.shape == out.negative_scores.shape == batch.video_mask.shape


def test_config_validation_and_unchanged_default_fingerprint() -> None:
    with pytest.raises(ValueError, match="use_msp"):
        TVSumModelConfig(use_audio=False)
    with pytest.raises(ValueError, match="position"):
        TVSumModelConfig(position="sine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query_input"):
        load_tvsum_config(None, ["model.query_input=words"])
    # Results computed before the switches existed keep their fingerprint (they are reused, not retrained): the
    # setting before init=xavier became the default, and the default's own runs (docs/tvsum.md).
    before = load_tvsum_config(None, ["model.init=pytorch"])
    assert before.training_fingerprint() == PYTORCH_INIT_FINGERPRINT
    assert TVSumConfig().training_fingerprint() == DEFAULT_FINGERPRINT
    assert load_tvsum_config(None, ["model.init=xavier"]).training_fingerprint() == DEFAULT_FINGERPRINT
    assert load_tvsum_config(REPO / "configs" / "tvsum_quag.yaml").training_fingerprint() == DEFAULT_FINGERPRINT
    switched = load_tvsum_config(None, ["model.init=pytorch", "model.saliency_head=global_token"])
    assert switched.training_fingerprint() != PYTORCH_INIT_FINGERPRINT
    assert TVSumConfig().training_fingerprint(exclude=("epochs",)) == load_tvsum_config(
        None, ["train.epochs=7"]
    ).training_fingerprint(exclude=("epochs",))
    assert load_tvsum_config(None, ["model.init=pytorch", "train.ema_decay=0"]).training_fingerprint() == (
        PYTORCH_INIT_FINGERPRINT
    )
    with pytest.raises(ValueError, match="init"):
        load_tvsum_config(None, ["model.init=kaiming"])
    assert load_tvsum_config(None, ["train.ema_decay=0.95"]).training_fingerprint() != DEFAULT_FINGERPRINT
    with pytest.raises(ValueError, match="ema_decay"):
        load_tvsum_config(None, ["train.ema_decay=1"])


@pytest.mark.parametrize("tokens", [False, True])
def test_xavier_init_redraws_the_attention_trunk_only(tokens: bool) -> None:
    """``init=xavier`` draws every weight matrix of MSP, QC2, the title cross-attention and the encoder again,
    Xavier-uniform (bound sqrt(6 / (fan_in + fan_out))), and leaves the embeddings, head and all vectors as built."""
    query = {"query_input": "tokens"} if tokens else {}
    torch.manual_seed(0)
    plain = TVSumQuag(tiny(init="pytorch", **query)).state_dict()
    torch.manual_seed(0)
    xavier = TVSumQuag(tiny(init="xavier", **query)).state_dict()
    assert plain.keys() == xavier.keys()
    trunk = ("msp.", "qc2.", "title_cross_attn.", "encoder.")
    redrawn = {k for k, v in plain.items() if v.dim() > 1 and k.startswith(trunk)}
    assert any(k.startswith("title_cross_attn.") for k in redrawn) == tokens
    assert {"msp.cross_attn.attn.q_proj.weight", "qc2.query_fuse.weight", "encoder.1.ffn_out.weight"} <= redrawn
    for k, v in xavier.items():
        if k in redrawn:
            bound = (6.0 / (v.shape[0] + v.shape[1])) ** 0.5
            assert not torch.equal(v, plain[k]), k
            assert float(v.abs().max()) <= bound, k
            assert v.numel() < 64 or float(v.abs().max()) > 0.8 * bound, k  # the range is filled (not QC2's 1 x 1)
        else:
            assert torch.equal(v, plain[k]), k


def test_qd_detr_position_features() -> None:
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    tef = time_edge_features(mask)
    torch.testing.assert_close(tef[0, :, 0], torch.tensor([0.0, 0.25, 0.5, 0.75]))
    torch.testing.assert_close(tef[1, :2], torch.tensor([[0.0, 0.5], [0.5, 1.0]]))
    assert float(tef[1, 2:].abs().sum()) == 0.0
    pos = sine_position_encoding(mask, 8)
    assert pos.shape == (2, 4, 8)
    torch.testing.assert_close(pos[1, 1], pos[0, 3])  # the last real clip sits at 2 pi in both videos


@pytest.mark.parametrize("name", ["all", "tokens"])
def test_training_with_switches_is_deterministic(synthetic_tvsum: Path, name: str) -> None:
    overrides = [f"model.{k}={str(v).lower()}" for k, v in SWITCHES[name].items()]
    cfg = load_tvsum_config(
        None,
        [
            *tiny_tvsum_overrides(synthetic_tvsum),
            *overrides,
            "train.epochs=3",
            "train.eval_every=1",
            "train.negative_query_weight=1",
        ],
    )
    videos = load_tvsum(synthetic_tvsum, ("VU",), load_audio=cfg.model.use_audio)
    train = [videos[v] for v in TVSUM_SPLITS["VU"]["train"]]
    test = [videos[v] for v in TVSUM_SPLITS["VU"]["test"]]
    a = train_category(cfg, train, test, seed=1, keep_eval_predictions=True)
    b = train_category(cfg, train, test, seed=1)
    assert a.curve == b.curve and a.predictions_fixed == b.predictions_fixed
    assert [e for e, _ in a.curve] == [1, 2, 3] and a.eval_predictions[-1] == a.predictions_fixed
    assert "eval_predictions" not in a.to_dict()


def test_moving_average_changes_what_is_scored_not_the_training(
    synthetic_tvsum: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train.ema_decay``: the same training steps, and every evaluation scores the moving average of the weights,
    recomputed here from the plain run's weights after each step."""
    from quag.tvsum import train as train_module

    videos = load_tvsum(synthetic_tvsum, ("VU",))
    train = [videos[v] for v in TVSUM_SPLITS["VU"]["train"]]
    test = [videos[v] for v in TVSUM_SPLITS["VU"]["test"]]
    common = [*tiny_tvsum_overrides(synthetic_tvsum), "train.epochs=4"]
    scored: list[list[torch.Tensor]] = []
    predict = train_module.predict_batches

    def spy(model: TVSumQuag, batches: list) -> dict[str, list[float]]:  # type: ignore[type-arg]
        scored.append([p.detach().clone() for p in model.parameters()])
        return predict(model, batches)

    monkeypatch.setattr(train_module, "predict_batches", spy)
    # 4 training videos, batch 4: one step per epoch; the plain run is scored after every step
    plain = train_category(load_tvsum_config(None, [*common, "train.eval_every=1"]), train, test, seed=3)
    after_step, scored[:] = list(scored), []
    decay = 0.5
    cfg = load_tvsum_config(None, [*common, "train.eval_every=2", f"train.ema_decay={decay}"])
    averaged = train_category(cfg, train, test, seed=3)
    assert averaged.final_losses == plain.final_losses  # the training steps are the same
    assert [e for e, _ in averaged.curve] == [2, 4] and averaged.predictions_fixed != plain.predictions_fixed
    ema = after_step[0]  # the average starts from the weights after the first step
    expected = []
    for weights in after_step[1:]:
        ema = [decay * e + (1 - decay) * w for e, w in zip(ema, weights, strict=True)]
        expected.append(ema)
    for got, want in zip(scored, (expected[0], expected[2]), strict=True):
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w)
