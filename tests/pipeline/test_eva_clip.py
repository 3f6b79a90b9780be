"""EVA-CLIP towers: the full-size key/shape layout equals the official checkpoint; the tiny configuration runs
the same classes and matches a naive transcription of the reference forward passes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from quag.pipeline.eva_clip import (
    EVA_CLIP_G14,
    ClipTextTower,
    EvaClipConfig,
    EvaVisionTransformer,
    build_text_tower,
    build_vision_tower,
)
from tests.pipeline.helpers import MANIFEST, TINY_EVA


def read_manifest() -> list[tuple[str, list[int]]]:
    rows = [line.split("\t") for line in MANIFEST.read_text().splitlines() if line.strip()]
    return [(name, [int(x) for x in shape.strip("[]").split(",") if x.strip()]) for name, shape, _ in rows]


def test_full_size_towers_have_exactly_the_official_keys_and_shapes() -> None:
    with torch.device("meta"):  # no 1B-parameter allocation
        visual, text = build_vision_tower(EVA_CLIP_G14), build_text_tower(EVA_CLIP_G14)
    ours = [(f"visual.{k}", list(v.shape)) for k, v in visual.state_dict().items()]
    ours += [(f"text.{k}", list(v.shape)) for k, v in text.state_dict().items()]
    assert ours == read_manifest()  # same names, shapes and order: 678 keys
    assert sum(p.numel() for p in visual.parameters()) == 1_012_588_928
    assert sum(p.numel() for p in text.parameters()) == 123_846_913


def test_g14_derived_sizes() -> None:
    v = EVA_CLIP_G14.vision
    assert v.width // v.head_width == 16 and int(v.width * v.mlp_ratio) == 6144
    assert (v.image_size // v.patch_size) ** 2 + 1 == 257


def test_config_round_trip_and_unknown_keys() -> None:
    assert EvaClipConfig.from_dict(TINY_EVA.to_dict()) == TINY_EVA
    bad = TINY_EVA.to_dict()
    bad["vision"]["depth"] = 3
    with pytest.raises(ValueError, match="depth"):
        EvaClipConfig.from_dict(bad)


def naive_vision(model: EvaVisionTransformer, images: torch.Tensor, heads: int) -> torch.Tensor:
    """The reference forward (BEiT/EVA vit_model.py), written out step by step."""
    x = model.patch_embed.proj(images).flatten(2).transpose(1, 2)
    x = torch.cat([model.cls_token.expand(len(x), -1, -1), x], 1) + model.pos_embed
    for blk in model.blocks:
        h = blk.norm1(x)
        a = blk.attn
        bias = torch.cat([a.q_bias, torch.zeros_like(a.v_bias), a.v_bias])
        B, N, C = h.shape
        qkv = F.linear(h, a.qkv.weight, bias).reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (C // heads) ** -0.5, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(-1)
        x = x + a.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
        m = blk.mlp
        x = x + m.fc2(F.gelu(m.fc1(blk.norm2(x))))
    return model.head(model.norm(x)[:, 0])


def naive_text(model: ClipTextTower, tokens: torch.Tensor, heads: int) -> torch.Tensor:
    """The reference forward (nn.MultiheadAttention with an additive -inf causal mask, LND layout)."""
    L = tokens.shape[1]
    mask = torch.full((L, L), float("-inf")).triu_(1)
    x = (model.token_embedding(tokens) + model.positional_embedding).permute(1, 0, 2)
    for blk in model.transformer.resblocks:
        mha = nn.MultiheadAttention(x.shape[-1], heads)
        mha.in_proj_weight.data.copy_(blk.attn.in_proj_weight)
        mha.in_proj_bias.data.copy_(blk.attn.in_proj_bias)
        mha.out_proj.load_state_dict(blk.attn.out_proj.state_dict())
        h = blk.ln_1(x)
        x = x + mha(h, h, h, need_weights=False, attn_mask=mask)[0]
        x = x + blk.mlp.c_proj(F.gelu(blk.mlp.c_fc(blk.ln_2(x))))
    x = model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(len(x)), tokens.argmax(-1)] @ model.text_projection


def test_tiny_vision_tower_matches_the_reference_computation() -> None:
    torch.manual_seed(0)
    model = build_vision_tower(TINY_EVA).eval()
    with torch.no_grad():  # non-zero q/v biases, so the zero k bias matters
        for blk in model.blocks:
            blk.attn.q_bias.normal_()
            blk.attn.v_bias.normal_()
    images = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        out = model(images)
        ref = naive_vision(model, images, heads=TINY_EVA.vision.width // TINY_EVA.vision.head_width)
    assert out.shape == (3, TINY_EVA.embed_dim)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_tiny_text_tower_matches_the_reference_computation() -> None:
    torch.manual_seed(0)
    model = build_text_tower(TINY_EVA).eval()
    tokens = torch.zeros(2, TINY_EVA.text.context_length, dtype=torch.long)
    tokens[0, :5] = torch.tensor([49406, 320, 1929, 530, 49407])
    tokens[1, :3] = torch.tensor([49406, 2368, 49407])
    with torch.no_grad():
        out = model(tokens)
        ref = naive_text(model, tokens, heads=TINY_EVA.text.heads)
    assert out.shape == (2, TINY_EVA.embed_dim)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # causal: tokens after EOT (padding) do not change the pooled embedding
    padded = tokens.clone()
    padded[1, 5:] = 7
    with torch.no_grad():
        torch.testing.assert_close(model(padded)[1], out[1])
    assert not math.isnan(out.sum().item())
