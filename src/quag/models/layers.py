"""Generic blocks shared by QUAG, the Joint baseline, the TVSum model and the caption decoder.

Nothing here knows about tasks or configs: every block takes primitives (``dim``, ``num_heads``, ...), so each
one can be tested on its own. Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`;
masks are ``torch.bool`` with True = valid everywhere, which is also SDPA's "True = may attend" convention, so
the only conversion at the attention call is a reshape to ``(B, 1, 1, S)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout whose CPU mask comes from 16-bit random draws (~3.5x faster than ``torch.bernoulli_``).

    An element is kept when its draw ``u`` (uniform over the 65,536 int16 values) satisfies
    ``u >= -32768 + round(p * 65536)``: the drop probability is ``p`` rounded to a multiple of 1/65536 (0.1 ->
    0.100006). Kept elements are scaled by ``1 / (1 - p)``. Dropout draws from the global torch generator, like
    ``F.dropout``, but a different stream. On other devices this is ``F.dropout``.

    The mask is applied as a 0/1 ``uint8`` factor (``x * keep * scale``): the same values as
    ``where(keep, x * scale, 0)``, forward and backward, without CPU ``where``/``masked_fill`` on a bool mask,
    which are slower than a multiply.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return (x * dropout_keep_mask(x.shape, p).view(torch.uint8)).mul_(1.0 / (1.0 - p))


def dropout_keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """The bool keep-mask of :func:`dropout` (CPU): True where the 16-bit draw is >= ``-32768 + round(p * 65536)``."""
    n = math.prod(shape)
    draws = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)  # 4 x 16 random bits each
    return draws.view(torch.int16)[:n].view(shape) >= -32768 + round(p * 65536)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """:func:`torch.nn.functional.scaled_dot_product_attention` whose CPU probability dropout uses :func:`dropout`.

    With ``dropout_p > 0`` on CPU, SDPA falls back to its unfused path anyway; this path is the same computation
    with the dropout mask drawn 3.5x faster. Elsewhere (``dropout_p == 0`` or another device) it is plain SDPA.

    Args:
        q: Queries (B, nh, L, hd).
        k: Keys (B, nh, S, hd).
        v: Values (B, nh, S, hd).
        attn_mask: Bool, broadcastable to (B, nh, L, S), True = may attend; or None.
        dropout_p: Dropout on the attention probabilities (pass 0 outside training).

    Returns:
        (B, nh, L, hd).
    """
    if dropout_p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (B, nh, L, S)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return dropout(scores.softmax(dim=-1), dropout_p) @ v  # (B, nh, L, hd)


class Dropout(nn.Module):
    """:func:`dropout` as a module (drop-in for ``nn.Dropout``; active in training mode only)."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None, dim: int = 1) -> torch.Tensor:
    """Mean of ``x`` over ``dim``, counting only positions where ``mask`` is True.

    Args:
        x: Values, e.g. (B, T, D).
        mask: (B, T) bool, True = valid, or None for a plain mean. Rows with no valid position give 0.
        dim: Axis to reduce (the axis ``mask`` covers).

    Returns:
        ``x`` with ``dim`` removed, e.g. (B, D).
    """
    if mask is None:
        return x.mean(dim)
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
    count = weights.sum(dim).clamp(min=1.0)  # (B, 1)
    return (x * weights).sum(dim) / count


def relative_time(video_mask: torch.Tensor) -> torch.Tensor:
    """Per-sample normalised frame times in [-1, 1] (the reference's ``linspace(0, 1, n_valid) * 2 - 1``).

    Args:
        video_mask: (B, T) bool, True on real frames (a prefix of each row).

    Returns:
        (B, T, 1) float: -1 at the first valid frame, +1 at the last, 0 on padding; a single-frame video gets -1.
    """
    n_valid = video_mask.sum(1, keepdim=True)  # (B, 1)
    steps = torch.arange(video_mask.shape[1], device=video_mask.device)[None, :]  # (1, T)
    t = steps / (n_valid - 1).clamp(min=1)  # (B, T) in [0, 1] on valid frames
    t = (t * 2.0 - 1.0) * video_mask
    return t.unsqueeze(-1).float()  # (B, T, 1)


def attention_mask(key_mask: torch.Tensor) -> torch.Tensor:
    """Key-padding mask (B, S), True = valid, to an SDPA bool mask (B, 1, 1, S), True = may attend.

    A row without any valid key is opened entirely (SDPA would return NaN for it); its output is meaningless
    but finite, and no real sample has zero frames.
    """
    key_mask = key_mask | ~key_mask.any(-1, keepdim=True)
    return key_mask[:, None, None, :]  # (B, 1, 1, S)


class MultiHeadAttention(nn.Module):
    """Multi-head (self- or cross-) attention with separate q/k/v projections, run by SDPA.

    Separate projections make cross-attention and key/value caching direct; checkpoints that pack them
    (``nn.MultiheadAttention.in_proj_weight``) are split in :mod:`quag.models.reference_compat`.

    Args:
        dim: Width of queries, keys, values and output.
        num_heads: Heads; ``dim`` must be divisible by it.
        dropout: Dropout on the attention probabilities (training only).
        bias: Whether the four projections have biases.
        init_std: ``None``: ``nn.MultiheadAttention``'s initialisation (Xavier-uniform over the packed
            (3D, D) input projection, zero biases); a float: BERT's N(0, init_std) weights and zero biases.

    Shapes:
        - x: (B, L, D) queries; context: (B, S, D) keys/values (defaults to x).
        - key_mask: (B, S) bool, True = may be attended.
        - output: (B, L, D).
    """

    def __init__(
        self, dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, init_std: float | None = None
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(dim, dim, bias=bias)
        self.v_proj = nn.Linear(dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self._init(init_std)

    def _init(self, init_std: float | None) -> None:
        projections = (self.q_proj, self.k_proj, self.v_proj)
        if init_std is None:
            # Xavier-uniform over the packed (3D, D) matrix, as nn.MultiheadAttention does.
            dim = self.q_proj.in_features
            bound = math.sqrt(6.0 / (dim + 3 * dim))
            for p in projections:
                nn.init.uniform_(p.weight, -bound, bound)
        else:
            for p in (*projections, self.out_proj):
                nn.init.normal_(p.weight, std=init_std)
        for p in (*projections, self.out_proj):
            if p.bias is not None:
                nn.init.zeros_(p.bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, D) -> (B, nh, S, hd)."""
        b, s, _ = x.shape
        return x.view(b, s, self.num_heads, self.head_dim).transpose(1, 2)  # (B, nh, S, hd)

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``context`` (B, S, D), each (B, nh, S, hd); cached by the decoder."""
        return self.split_heads(self.k_proj(context)), self.split_heads(self.v_proj(context))

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention of queries ``x`` (B, L, D) over projected ``k``, ``v`` (B, nh, S, hd).

        ``attn_mask`` is bool, broadcastable to (B, nh, L, S), True = may attend.
        """
        b, n, _ = x.shape
        q = self.split_heads(self.q_proj(x))  # (B, nh, L, hd)
        # Under autocast the projections may differ in dtype from cached keys; SDPA needs one dtype.
        k, v = k.to(q.dtype), v.to(q.dtype)
        p = self.dropout if self.training else 0.0
        out = scaled_dot_product_attention(q, k, v, attn_mask, p)  # (B, nh, L, hd)
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)  # (B, L, D)
        return self.out_proj(out)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        k, v = self.project_kv(x if context is None else context)
        # no padding in the batch (e.g. caption windows): no mask, so SDPA keeps its fastest kernel
        mask = None if key_mask is None or bool(key_mask.all()) else attention_mask(key_mask)
        return self.attend(x, k, v, mask)


class PostLNTransformerLayer(nn.Module):
    """Post-LN self-attention layer: ``x = LN(x + Drop(Attn(x)))``, ``x = LN(x + Drop(FFN(x)))``.

    Used for QUAG's encoder (the reference's ``CrossTransformer``, PyTorch ``TransformerEncoderLayer`` style:
    ReLU, LayerNorm eps 1e-5, dropout also inside the FFN) and for the Joint baseline's CLIP4Caption visual
    encoder (BERT style: erf-GELU, eps 1e-12, no dropout inside the FFN, N(0, 0.02) initialisation).

    Args:
        dim: Model width.
        num_heads: Attention heads.
        ffn_dim: Hidden width of the feed-forward block.
        dropout: Attention-probability and residual dropout.
        activation: ``"relu"`` or ``"gelu"``.
        norm_eps: LayerNorm epsilon.
        ffn_inner_dropout: Dropout after the FFN activation as well.
        init_std: See :class:`MultiHeadAttention`; also applied to the FFN when given (BERT init).
        attn_dropout: Attention-probability dropout (default: ``dropout``).

    Shapes:
        - x: (B, T, D); key_mask: (B, T) bool or None; output: (B, T, D).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float,
        activation: str = "relu",
        norm_eps: float = 1e-5,
        ffn_inner_dropout: bool = True,
        init_std: float | None = None,
        attn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        attn_p = dropout if attn_dropout is None else attn_dropout
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=attn_p, init_std=init_std)
        self.attn_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.ffn_in = nn.Linear(dim, ffn_dim)
        self.ffn_out = nn.Linear(ffn_dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.dropout = Dropout(dropout)
        self.inner_dropout = Dropout(dropout) if ffn_inner_dropout else nn.Identity()
        self.activation = activation
        if init_std is not None:
            for lin in (self.ffn_in, self.ffn_out):
                nn.init.normal_(lin.weight, std=init_std)
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn_norm(x + self.dropout(self.self_attn(x, key_mask=key_mask)))
        act = F.relu if self.activation == "relu" else F.gelu
        h = self.ffn_out(self.inner_dropout(act(self.ffn_in(x))))
        return self.ffn_norm(x + self.dropout(h))
