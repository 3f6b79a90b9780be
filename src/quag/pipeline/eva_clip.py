"""EVA-CLIP-g/14 (EVA-01 CLIP, the official ``EVA_CLIP_g_14`` config): image tower and text tower.

The frozen encoder of HiREST/QUAG (docs/pipeline.md). Weights come from a user-supplied checkpoint
(``eva_clip_psz14.pt``, BAAI/EVA on Hugging Face); nothing is downloaded. Parameter names match that file
(``visual.*``, ``text.*``; see :mod:`quag.pipeline.weights` for loading).

Image tower (BEiT-style ViT, EVA-01): 224 px, patch 14 -> 16x16 = 256 patches + 1 class token, 40 pre-LN blocks of
width 1408 with 16 heads of 88 channels, MLP hidden ``int(1408 * 4.3637) = 6144`` with exact GELU, LayerNorm eps
1e-6, no layer scale, no relative position bias. The attention projection has a q bias and a v bias and no k bias
(the k slot of the fused ``qkv`` bias is zero). Output: final LayerNorm, the class token, then ``head``
(1408 -> 1024). The output is *not* normalised; the extractor L2-normalises each row as the official script does.

Text tower (OpenAI-CLIP-style): context 77, vocabulary 49,408, width 768, 12 heads, 12 pre-LN layers with a causal
mask, exact GELU (the config sets no ``quick_gelu``), LayerNorm eps 1e-5, final LayerNorm, pooling at the EOT
token (the largest token id of each row), projection 768 -> 1024. Output unnormalised, as in the reference.

Shapes: B batch, N tokens (257 image tokens or 77 text tokens), D width, H heads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class EvaVisionConfig:
    """Image tower hyper-parameters (defaults: EVA_CLIP_g_14)."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1408
    layers: int = 40
    head_width: int = 88  # channels per head: 1408 / 88 = 16 heads
    mlp_ratio: float = 4.3637  # int(1408 * 4.3637) = 6144 hidden units
    ln_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.width % self.head_width:
            raise ValueError(f"width {self.width} must be a multiple of head_width {self.head_width}")


@dataclass(frozen=True)
class ClipTextConfig:
    """Text tower hyper-parameters (defaults: EVA_CLIP_g_14)."""

    context_length: int = 77
    vocab_size: int = 49408
    width: int = 768
    heads: int = 12
    layers: int = 12
    mlp_ratio: float = 4.0
    ln_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"text width {self.width} must be a multiple of heads {self.heads}")


@dataclass(frozen=True)
class EvaClipConfig:
    """Both towers and the shared embedding width; ``name`` is what feature specs record."""

    name: str = "eva-clip-g14"
    embed_dim: int = 1024
    vision: EvaVisionConfig = field(default_factory=EvaVisionConfig)
    text: ClipTextConfig = field(default_factory=ClipTextConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaClipConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""

        def build(klass: type, values: Any, where: str) -> Any:
            if not isinstance(values, dict):
                raise ValueError(f"EVA-CLIP config {where}: expected a mapping, got {type(values).__name__}")
            names = {f.name for f in fields(klass)}
            unknown = sorted(set(values) - names)
            if unknown:
                raise ValueError(f"EVA-CLIP config {where}: unknown key(s) {unknown}; valid: {sorted(names)}")
            return klass(**values)

        data = dict(data)
        vision = build(EvaVisionConfig, data.pop("vision", {}), "vision")
        text = build(ClipTextConfig, data.pop("text", {}), "text")
        top = build(cls, data, "top level")
        return cls(name=top.name, embed_dim=top.embed_dim, vision=vision, text=text)


EVA_CLIP_G14 = EvaClipConfig()
"""The official ``EVA_CLIP_g_14`` configuration used by HiREST and QUAG."""


# ---------------------------------------------------------------------------------------------------------
# image tower


class EvaAttention(nn.Module):
    """Multi-head self-attention with a fused bias-free ``qkv`` and separate q/v biases (k bias is zero)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        # Registered before qkv so that state_dict order matches the official checkpoint.
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)  # (B, N, 3D)
        q, k, v = qkv.view(B, N, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, D/H)
        # Default scale 1/sqrt(head_dim), as the reference's qk_scale=None.
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, D/H)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))  # (B, N, D)


class EvaMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EvaBlock(nn.Module):
    """Pre-LN transformer block (no layer scale: the g/14 config sets no ``layer_scale_init_value``)."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, ln_eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = EvaAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = EvaMlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, N-1, D)


class EvaVisionTransformer(nn.Module):
    """EVA-01 image tower: normalised images (B, 3, S, S) -> class-token embedding (B, out_dim), unnormalised.

    Args:
        image_size: input side S in pixels.
        patch_size: patch side.
        width: token width D.
        layers: number of blocks.
        num_heads: attention heads.
        mlp_hidden: MLP hidden units.
        out_dim: embedding width after ``head``.
        ln_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        width: int,
        layers: int,
        num_heads: int,
        mlp_hidden: int,
        out_dim: int,
        ln_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.out_dim = out_dim
        num_patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, width))
        self.patch_embed = PatchEmbed(patch_size, width)
        self.blocks = nn.ModuleList(EvaBlock(width, num_heads, mlp_hidden, ln_eps) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=ln_eps)
        self.head = nn.Linear(width, out_dim)
        # Random init only matters for the tiny test configurations; real weights come from the checkpoint.
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)  # (B, N-1, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat((cls, x), dim=1) + self.pos_embed  # (B, N, D)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0])  # (B, out_dim): class token, as use_mean_pooling=False in the reference


# ---------------------------------------------------------------------------------------------------------
# text tower


class TextAttention(nn.Module):
    """Causal self-attention with ``nn.MultiheadAttention``'s parameter names (``in_proj_*``, ``out_proj``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, N, 3D)
        q, k, v = qkv.view(B, N, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, D/H)
        # is_causal equals the reference's additive mask (-inf above the diagonal).
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, N, D/H)
        return self.out_proj(out.transpose(1, 2).reshape(B, N, D))  # (B, N, D)


class TextMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, hidden)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, ln_eps: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=ln_eps)
        self.attn = TextAttention(dim, num_heads)
        self.ln_2 = nn.LayerNorm(dim, eps=ln_eps)
        self.mlp = TextMlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    def __init__(self, width: int, layers: int, num_heads: int, mlp_hidden: int, ln_eps: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, num_heads, mlp_hidden, ln_eps) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class ClipTextTower(nn.Module):
    """CLIP text tower: token ids (B, context_length) -> EOT embedding @ projection (B, out_dim), unnormalised.

    Args:
        context_length: token positions (77).
        vocab_size: BPE vocabulary size (49,408).
        width: token width D.
        layers: transformer layers.
        num_heads: attention heads.
        mlp_hidden: MLP hidden units.
        out_dim: embedding width after the projection.
        ln_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        context_length: int,
        vocab_size: int,
        width: int,
        layers: int,
        num_heads: int,
        mlp_hidden: int,
        out_dim: int,
        ln_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.out_dim = out_dim
        # Registration order follows the official state_dict order.
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.text_projection = nn.Parameter(torch.empty(width, out_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # unused at inference; kept for loading
        self.transformer = TextTransformer(width, layers, num_heads, mlp_hidden, ln_eps)
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.ln_final = nn.LayerNorm(width, eps=ln_eps)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[-1] != self.context_length:
            raise ValueError(f"text tower expects {self.context_length} token positions, got {tokens.shape[-1]}")
        x = self.token_embedding(tokens) + self.positional_embedding  # (B, N, D)
        x = self.ln_final(self.transformer(x))  # (B, N, D)
        eot = tokens.argmax(dim=-1)  # (B,): the EOT token has the largest id of each row
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection  # (B, out_dim)


# ---------------------------------------------------------------------------------------------------------
# builders (the only functions that read a config)


def build_vision_tower(config: EvaClipConfig) -> EvaVisionTransformer:
    """The image tower of ``config`` (random weights; use :func:`quag.pipeline.weights.load_tower` for real ones)."""
    v = config.vision
    return EvaVisionTransformer(
        image_size=v.image_size,
        patch_size=v.patch_size,
        width=v.width,
        layers=v.layers,
        num_heads=v.width // v.head_width,
        mlp_hidden=int(v.width * v.mlp_ratio),
        out_dim=config.embed_dim,
        ln_eps=v.ln_eps,
    )


def build_text_tower(config: EvaClipConfig) -> ClipTextTower:
    """The text tower of ``config`` (random weights)."""
    t = config.text
    return ClipTextTower(
        context_length=t.context_length,
        vocab_size=t.vocab_size,
        width=t.width,
        layers=t.layers,
        num_heads=t.heads,
        mlp_hidden=int(t.width * t.mlp_ratio),
        out_dim=config.embed_dim,
        ln_eps=t.ln_eps,
    )
