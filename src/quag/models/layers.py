"""Generic blocks shared by QUAG, the Joint baseline, the TVSum model and the caption decoder.

Nothing here knows about tasks or configs: every block takes primitives (``dim``, ``num_heads``, ...), so each
one can be tested on its own. Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`;
masks are ``torch.bool`` with True = valid everywhere, which is also SDPA's "True = may attend" convention, so
the only conversion at the attention call is a reshape to ``(B, 1, 1, S)``.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_LEAN_AUTOGRAD = True


@contextlib.contextmanager
def plain_autograd() -> Iterator[None]:
    """Within the block, :func:`linear`, the dropout attention of :func:`scaled_dot_product_attention`,
    :func:`tied_lookup` and :func:`tied_logits` run as plain autograd ops, saving for backward what PyTorch
    saves (the bf16 weight copies, both attention maps, two dense gradients of the tied embeddings). For
    benchmarks and tests that compare the two; the values are the same."""
    global _LEAN_AUTOGRAD
    before, _LEAN_AUTOGRAD = _LEAN_AUTOGRAD, False
    try:
        yield
    finally:
        _LEAN_AUTOGRAD = before


def _saves_less(*tensors: torch.Tensor) -> bool:
    """Whether the functions that keep less for backward apply: gradients are recorded for one of ``tensors``
    and :func:`plain_autograd` is not in force."""
    return _LEAN_AUTOGRAD and torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout whose CPU mask comes from 16-bit random draws (faster than ``torch.bernoulli_``: the timing
    is in docs/benchmarks.md, "Dropout masks on CPU").

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
    with the dropout mask of :func:`dropout`, and with gradients one autograd node that keeps less for backward
    (:class:`_DropoutAttention`). Elsewhere (``dropout_p == 0`` or another device) it is plain SDPA.

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
    if _saves_less(q, k, v):
        out: torch.Tensor = _DropoutAttention.apply(q, k, v, attn_mask, dropout_p)
        return out
    return _dropped_probabilities(q, k, attn_mask, dropout_p)[0] @ v  # (B, nh, L, hd)


def _dropped_probabilities(
    q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None, p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The softmax probabilities after :func:`dropout`, and its 0/1 ``uint8`` keep-mask, each (B, nh, L, S)."""
    probs = _softmax_probabilities(q, k, attn_mask)
    keep = dropout_keep_mask(probs.shape, p).view(torch.uint8)
    dropped = probs * keep if probs.requires_grad else probs.mul_(keep)  # in place unless autograd needs probs
    return dropped.mul_(1.0 / (1.0 - p)), keep


def _softmax_probabilities(q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
    """``softmax(q k^T / sqrt(hd))`` over the keys ``attn_mask`` allows: (B, nh, L, S).

    When the scale is a power of two (head width 4, 16, 64, 256, ...; 64 at the paper setting) it multiplies
    ``q`` before the product, not the (L, S) scores after it: a power-of-two factor commutes with every rounding
    of the product, so the scores are the same bits for a fraction of the work.
    """
    scale = q.shape[-1] ** -0.5
    kt = k.transpose(-2, -1)
    scores = (q * scale) @ kt if _is_power_of_two(scale) else (q @ kt) * scale  # (B, nh, L, S)
    if attn_mask is not None:
        scores.masked_fill_(~attn_mask, float("-inf"))
    return scores.softmax(dim=-1)


def _is_power_of_two(x: float) -> bool:
    """Whether ``x`` (> 0) is an exact power of two, so that scaling by it changes no mantissa bit."""
    return math.frexp(x)[0] == 0.5


class _DropoutAttention(torch.autograd.Function):
    """The CPU attention of :func:`scaled_dot_product_attention` with probability dropout, as one autograd node.

    Plain autograd keeps two attention maps for backward, the probabilities (for the softmax) and their
    dropped-out copy (for the product with ``v``), beside the 0/1 mask. This keeps only the mask (q, k and v are
    kept either way) and recomputes the probabilities from q and k in backward (one batched product and a
    softmax per map), then runs the ops autograd would run, in its order: the same values and gradients. At the
    paper setting a bf16 map is 9 MiB per attention layer.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attn_mask: torch.Tensor | None,
        p: float,
    ) -> torch.Tensor:
        dropped, keep = _dropped_probabilities(q, k, attn_mask, p)
        ctx.save_for_backward(q, k, v, keep)
        device = q.device.type
        ctx.attn_mask, ctx.p = attn_mask, p  # type: ignore[attr-defined]
        ctx.autocast = torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)  # type: ignore[attr-defined]
        return dropped @ v  # (B, nh, L, hd)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, keep = ctx.saved_tensors  # type: ignore[attr-defined]
        attn_mask = ctx.attn_mask  # type: ignore[attr-defined]
        enabled, dtype = ctx.autocast  # type: ignore[attr-defined]
        with torch.autocast(q.device.type, dtype=dtype, enabled=enabled):
            probs = _softmax_probabilities(q, k, attn_mask)  # as in forward: the same values
        inv_keep = 1.0 / (1.0 - ctx.p)  # type: ignore[attr-defined]
        grad = grad.to(v.dtype)
        keep = keep.to(probs.dtype)  # converted once here; a uint8 factor is converted by every product
        grad_v = (probs * keep).mul_(inv_keep).transpose(-2, -1) @ grad  # (B, nh, S, hd)
        grad_probs = (grad @ v.transpose(-2, -1)).mul_(inv_keep).mul_(keep)  # (B, nh, L, S)
        grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
        if attn_mask is not None:
            grad_scores.masked_fill_(~attn_mask, 0.0)
        scale = q.shape[-1] ** -0.5
        if _is_power_of_two(scale):  # as in the forward pass: scale the (L, hd) factors, the same bits
            grad_q = (grad_scores @ k) * scale  # (B, nh, L, hd)
            grad_k = ((q * scale).transpose(-2, -1) @ grad_scores).transpose(-2, -1)  # (B, nh, S, hd)
        else:
            grad_scores = grad_scores * scale
            grad_q = grad_scores @ k
            grad_k = (q.transpose(-2, -1) @ grad_scores).transpose(-2, -1)  # as autograd's bmm
        return grad_q, grad_k, grad_v, None, None


def _cpu_autocast_bf16(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a linear map of ``x`` by ``weight`` is a CPU bf16-autocast op whose weight needs a gradient."""
    return (
        _saves_less(weight)
        and x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`torch.nn.functional.linear`; under CPU bf16 autocast with gradients, :class:`_Linear`; under
    autocast without gradients, with the weight's cast kept between calls (:func:`_kept_cast`).

    All compute the same values and gradients. The autocast path of ``F.linear`` keeps the bf16 copy of the
    weight alive for backward (about 2 bytes per parameter of every layer used, until backward reaches it),
    while :class:`_Linear` keeps only the fp32 weight it already has and casts it again in backward. A weight
    used twice in one forward pass (MSP's shared cross-attention) gets its two gradients summed in fp32
    instead of bf16.
    """
    dtype = _inference_autocast_dtype(x, weight)
    if dtype is not None and isinstance(weight, nn.Parameter):  # not a view made anew by each call (QC2's halves)
        return F.linear(x, _kept_cast(weight, dtype), None if bias is None else _kept_cast(bias, dtype))
    if _WEIGHT_CASTS and torch.is_grad_enabled():  # training resumed: the kept casts go stale with its first step
        _WEIGHT_CASTS.clear()
    if _cpu_autocast_bf16(x, weight):
        out: torch.Tensor = _Linear.apply(x, weight, bias, torch.bfloat16, None)
        return out
    return F.linear(x, weight, bias)


_WEIGHT_CASTS: dict[int, tuple[weakref.ref[torch.Tensor], tuple[int, int], torch.Tensor]] = {}
"""Per weight (by ``id``): a weak reference to it, its (version, data pointer) when cast, and the cast."""


def _inference_autocast_dtype(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype | None:
    """The dtype autocast would cast ``weight`` to for a linear map of ``x`` when no gradient is recorded
    (inference), or None (gradients recorded, autocast off, or nothing to cast)."""
    if torch.is_grad_enabled() or not torch.is_autocast_enabled(x.device.type):
        return None
    dtype = torch.get_autocast_dtype(x.device.type)
    return dtype if weight.dtype == torch.float32 and dtype != weight.dtype else None


def _kept_cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)`` for a parameter ``t``, computed once and kept while ``t`` is unchanged.

    Autocast casts every weight again in every autocast region (each decoded batch, each request); the cast is
    the same tensor each time. The kept cast is dropped when ``t`` changes in place (an optimizer step, a loaded
    state dict: its version moves), is moved, or is freed, and all are dropped when :func:`linear` records
    gradients again (training) or by :func:`clear_kept_casts`. Inference keeps 2 bytes per parameter it used.
    """
    key, state = id(t), (t._version, t.data_ptr())
    entry = _WEIGHT_CASTS.get(key)
    if entry is not None and entry[0]() is t and entry[1] == state and entry[2].dtype == dtype:
        return entry[2]
    cast = t.detach().to(dtype)

    def forget(ref: weakref.ref[torch.Tensor]) -> None:
        if _WEIGHT_CASTS.get(key, (None,))[0] is ref:  # not a newer weight that reuses the id
            _WEIGHT_CASTS.pop(key, None)

    _WEIGHT_CASTS[key] = (weakref.ref(t, forget), state, cast)
    return cast


def clear_kept_casts() -> None:
    """Free the weight casts that inference keeps between calls (:func:`linear`)."""
    _WEIGHT_CASTS.clear()


class _Linear(torch.autograd.Function):
    """``F.linear`` computed in ``dtype`` (inputs, weight and bias cast to it, as CPU bf16 autocast does), saving
    the cast input and the weight itself, not its cast; backward runs the matrix products autograd would run
    and casts each gradient back to its input's dtype. With a ``stash`` (a dict, see :func:`tied_logits`) the
    weight's gradient is left in ``stash["grad"]`` instead of being returned."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        dtype: torch.dtype,
        stash: dict[str, torch.Tensor] | None,
    ) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            xc = x.to(dtype)
            out = F.linear(xc, weight.to(dtype), None if bias is None else bias.to(dtype))
        ctx.save_for_backward(xc, weight)
        ctx.x_dtype, ctx.bias_dtype = x.dtype, None if bias is None else bias.dtype  # type: ignore[attr-defined]
        ctx.stash = stash  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xc, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        grad2 = grad.to(xc.dtype).reshape(-1, grad.shape[-1])  # (N, out)
        grad_x = grad_w = grad_b = None
        if needs[0]:
            grad_x = (grad2 @ weight.to(xc.dtype)).view(*grad.shape[:-1], weight.shape[1])
            grad_x = grad_x.to(ctx.x_dtype)  # type: ignore[attr-defined]
        if needs[1]:
            grad_w = _weight_grad(grad2, xc.reshape(-1, xc.shape[-1]), weight.dtype)  # (out, in)
            if ctx.stash is not None:  # type: ignore[attr-defined]
                ctx.stash["grad"], grad_w = grad_w, None  # type: ignore[attr-defined]
        if needs[2]:
            grad_b = grad2.sum(0).to(ctx.bias_dtype)  # type: ignore[attr-defined]
        return grad_x, grad_w, grad_b, None, None


def tied_lookup(ids: torch.Tensor, weight: torch.Tensor, stash: dict[str, torch.Tensor]) -> torch.Tensor:
    """``F.embedding(ids, weight)`` for a matrix that :func:`tied_logits` also uses, with the same ``stash``.

    Autograd would give the shared matrix two dense gradients, one per use, and sum them: for the 30,522 x 768
    word embeddings a second 90 MiB fp32 matrix at the end of the captioning backward pass. Here the output
    head leaves its dense gradient in ``stash`` and the lookup adds its rows into it in place
    (``index_add_``), so one matrix is ever allocated. The sum is the same up to fp32 rounding order (a row
    looked up several times adds its gradients one by one to the head's instead of to each other first).
    """
    if not _saves_less(weight):
        return F.embedding(ids, weight)
    out: torch.Tensor = _TiedLookup.apply(ids, weight, stash)
    return out


def tied_logits(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stash: dict[str, torch.Tensor]
) -> torch.Tensor:
    """``linear(h, weight, bias)`` whose weight gradient goes to ``stash`` for :func:`tied_lookup` to complete.

    Computed in bf16 under CPU bf16 autocast (as :func:`linear`), else in the weight's dtype; under autocast on
    another device it is :func:`linear` and the stash stays empty (the lookup then allocates its own gradient).
    """
    if _cpu_autocast_bf16(h, weight):
        dtype = torch.bfloat16
    elif _saves_less(weight) and not torch.is_autocast_enabled(h.device.type):
        dtype = weight.dtype
    else:
        return linear(h, weight, bias)
    out: torch.Tensor = _Linear.apply(h, weight, bias, dtype, stash)
    return out


class _TiedLookup(torch.autograd.Function):
    """Embedding lookup whose weight gradient completes the one :func:`tied_logits` left in the stash."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        ids: torch.Tensor,
        weight: torch.Tensor,
        stash: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.weight_meta = (weight.shape, weight.dtype, weight.device)  # type: ignore[attr-defined]
        ctx.stash = stash  # type: ignore[attr-defined]
        return F.embedding(ids, weight)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (ids,) = ctx.saved_tensors  # type: ignore[attr-defined]
        shape, dtype, device = ctx.weight_meta  # type: ignore[attr-defined]
        grad_w = ctx.stash.pop("grad", None)  # type: ignore[attr-defined]
        if grad_w is None:  # the head's gradient did not come (head unused, or computed elsewhere)
            grad_w = torch.zeros(shape, dtype=dtype, device=device)
        grad_w.index_add_(0, ids.reshape(-1), grad.reshape(-1, shape[1]).to(dtype))
        return None, grad_w, None


WEIGHT_GRAD_ROWS = 4096
"""Output rows per block of :func:`_weight_grad` for weights with more rows (the tied word embeddings)."""


def _weight_grad(grad: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``grad.T @ x`` (products in the inputs' dtype) cast to ``dtype``, contiguous: a linear layer's weight gradient.

    Contiguous because autograd would otherwise copy a transposed gradient to the weight's layout when
    accumulating it. A weight with more than :data:`WEIGHT_GRAD_ROWS` rows is filled block by block, so its bf16
    gradient never exists in full beside the ``dtype`` one (for the 30,522-row word embeddings, 45 MiB less).

    Args:
        grad: (N, out) gradient of the output (bf16 under autocast).
        x: (N, in) input, in ``grad``'s dtype.
        dtype: The weight's dtype.

    Returns:
        (out, in).
    """
    rows = grad.shape[1]
    if rows <= WEIGHT_GRAD_ROWS:
        return (grad.t() @ x).to(dtype)
    out = torch.empty(rows, x.shape[1], dtype=dtype, device=x.device)
    for start in range(0, rows, WEIGHT_GRAD_ROWS):
        block = slice(start, start + WEIGHT_GRAD_ROWS)
        out[block] = grad[:, block].t() @ x
    return out


class Linear(nn.Linear):
    """``nn.Linear`` through :func:`linear` (same parameters and state-dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


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
        self.q_proj = Linear(dim, dim, bias=bias)
        self.k_proj = Linear(dim, dim, bias=bias)
        self.v_proj = Linear(dim, dim, bias=bias)
        self.out_proj = Linear(dim, dim, bias=bias)
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
        self.ffn_in = Linear(dim, ffn_dim)
        self.ffn_out = Linear(ffn_dim, dim)
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
