"""MSP and QC2 pieces: InfoNCE against a hand computation, the temperature clamp, masked means, the gates,
and our attention / post-LN layer against PyTorch's own modules with the same weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from quag.models import build_model
from quag.models.fusion import MSP, QC2, fuse_audio_visual, fuse_query, info_nce
from quag.models.layers import MultiHeadAttention, PostLNTransformerLayer, masked_mean, relative_time
from tests.models.helpers import tiny_config


def test_info_nce_matches_hand_computation_3x3() -> None:
    v = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    a = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    tau = 0.1

    def unit(x: list[float]) -> list[float]:
        n = math.sqrt(sum(c * c for c in x))
        return [c / n for c in x]

    vn, an = [unit(x) for x in v], [unit(x) for x in a]
    s = [[sum(p * q for p, q in zip(vi, aj, strict=True)) / tau for aj in an] for vi in vn]
    v2a = -sum(math.log(math.exp(s[k][k]) / sum(math.exp(s[k][r]) for r in range(3))) for k in range(3)) / 3
    a2v = -sum(math.log(math.exp(s[k][k]) / sum(math.exp(s[r][k]) for r in range(3))) for k in range(3)) / 3
    expected = 0.5 * (v2a + a2v)
    got = info_nce(torch.tensor(v), torch.tensor(a), torch.tensor(tau))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_of_one_pair_is_zero() -> None:
    assert info_nce(torch.randn(1, 4), torch.randn(1, 4), torch.tensor(0.07)).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(("start", "clamped"), [(5.0, 0.5), (-1.0, 0.001), (1e-5, 0.001), (0.2, 0.2)])
def test_temperature_is_clamped_in_place_every_forward(start: float, clamped: float) -> None:
    msp = MSP(8, 2, 0.0)
    assert msp.temperature.item() == pytest.approx(0.07)
    with torch.no_grad():
        msp.temperature.fill_(start)
    x, mask = torch.randn(3, 4, 8), torch.ones(3, 4, dtype=torch.bool)
    _, loss = msp(x, x.flip(0), mask)
    assert msp.temperature.item() == pytest.approx(clamped)
    expected = info_nce(msp.global_features(x, mask), msp.global_features(x.flip(0), mask), torch.tensor(clamped))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_masked_mean_ignores_padding() -> None:
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert masked_mean(x, mask).flatten().tolist() == [2.0, 4.0]
    assert masked_mean(x, None).flatten().tolist() == pytest.approx([104 / 3, 4.0])


def test_relative_time_spans_minus_one_to_one_on_valid_frames() -> None:
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    t = relative_time(mask).squeeze(-1)
    torch.testing.assert_close(t, torch.tensor([[-1.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("gates", ["both", "temporal", "channel", "none"])
def test_qc2_gate_variants_build_only_their_gates(gates: str) -> None:
    qc2 = QC2(16, 4, 0.0, gates=gates)
    assert (qc2.temporal_gate is not None) == (gates in ("both", "temporal"))
    assert (qc2.channel_gate is not None) == (gates in ("both", "channel"))
    out = qc2(torch.randn(2, 5, 16), torch.randn(2, 16), torch.ones(2, 5, dtype=torch.bool))
    assert out.shape == (2, 5, 16)


def test_qc2_is_gate_times_av_plus_self_attention_branch() -> None:
    """Eq. 6-8 with the reference's placement: the gate multiplies the MSP output, not the query-fused tensor."""
    torch.manual_seed(0)
    qc2 = QC2(8, 2, 0.0).eval()
    av, q, mask = torch.randn(2, 5, 8), torch.randn(2, 8), torch.ones(2, 5, dtype=torch.bool)
    r_c = qc2.query_fuse(torch.cat([av, q[:, None].expand_as(av)], -1))
    a_te = torch.sigmoid(qc2.temporal_gate(r_c.mean(-1, keepdim=True)))
    a_ch = torch.sigmoid(qc2.channel_gate(r_c.mean(1, keepdim=True)))
    phi = qc2.out_proj(qc2.norm(r_c + qc2.self_attn(r_c)))
    torch.testing.assert_close(qc2(av, q, mask), a_te * a_ch * av + phi)


def test_msp_separate_cross_attention_adds_one_layer() -> None:
    shared = build_model(tiny_config("quag")).msp
    separate = build_model(tiny_config("quag", msp_separate_cross_attention=True)).msp
    n_layer = sum(p.numel() for p in shared.cross_attn.parameters())
    n_shared = sum(p.numel() for p in shared.parameters())
    assert sum(p.numel() for p in separate.parameters()) == n_shared + n_layer


def _load_packed(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        for proj, w in zip((ours.q_proj, ours.k_proj, ours.v_proj), theirs.in_proj_weight.chunk(3), strict=True):
            proj.weight.copy_(w)
        if theirs.in_proj_bias is not None:
            for proj, b in zip((ours.q_proj, ours.k_proj, ours.v_proj), theirs.in_proj_bias.chunk(3), strict=True):
                proj.bias.copy_(b)
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


@pytest.mark.parametrize("bias", [True, False])
def test_attention_matches_torch_multihead_attention(bias: bool) -> None:
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, bias=bias, batch_first=True).eval()
    ours = MultiHeadAttention(16, 4, bias=bias).eval()
    _load_packed(ours, theirs)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    expected, _ = theirs(x, ctx, ctx, key_padding_mask=~mask, need_weights=False)
    torch.testing.assert_close(ours(x, ctx, key_mask=mask), expected, rtol=1e-5, atol=1e-6)


def test_post_ln_layer_matches_torch_transformer_encoder_layer() -> None:
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True).eval()
    ours = PostLNTransformerLayer(16, 4, 32, dropout=0.1).eval()
    _load_packed(ours.self_attn, theirs.self_attn)
    for mine, ref in ((ours.ffn_in, theirs.linear1), (ours.ffn_out, theirs.linear2)):
        mine.load_state_dict(ref.state_dict())
    ours.attn_norm.load_state_dict(theirs.norm1.state_dict())
    ours.ffn_norm.load_state_dict(theirs.norm2.state_dict())
    x = torch.randn(2, 6, 16)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    expected = theirs(x, src_key_padding_mask=~mask)
    torch.testing.assert_close(ours(x, mask)[mask], expected[mask], rtol=1e-5, atol=1e-5)


def test_trunk_steps_run_the_module_or_the_table_4_ablation() -> None:
    """fuse_audio_visual: MSP, or V + A without L_msp; fuse_query: QC2, or element-wise query gating."""
    torch.manual_seed(0)
    msp, qc2 = MSP(8, 2, 0.0).eval(), QC2(8, 2, 0.0).eval()
    v, a, q = torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 8)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    av, loss = fuse_audio_visual(msp, v, a, mask)
    want_av, want_loss = msp(v, a, mask)
    assert torch.equal(av, want_av) and loss is not None and torch.equal(loss, want_loss)
    summed, no_loss = fuse_audio_visual(None, v, a, mask)
    assert torch.equal(summed, v + a) and no_loss is None
    assert torch.equal(fuse_query(qc2, av, q, mask), qc2(av, q, mask))
    assert torch.equal(fuse_query(None, av, q, mask), av * q[:, None, :])
