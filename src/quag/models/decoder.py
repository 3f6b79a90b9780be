"""Step-caption decoder in the CLIP4Caption style, with key/value caching (paper Eq. 11; docs/models.md).

Architecture (CLIP4Caption's ``DecoderModel`` with BERT embeddings):

- embeddings: BERT word embeddings (V = 30,522, bert-base-uncased WordPiece) + BERT absolute positions (512),
  LayerNorm (eps 1e-12), dropout;
- N post-LN decoder layers: masked self-attention, cross-attention over the encoder memory, erf-GELU FFN, each
  sub-block ``LN(x + Drop(sublayer(x)))``;
- output head: ``Linear(H -> H)``, GELU, LayerNorm, then the **tied** word-embedding matrix plus a V-wide bias.

All CLIP4Caption weights start from N(0, 0.02), zero biases and unit LayerNorms, as the reference does before
copying the pretrained checkpoint in (:func:`quag.models.reference_compat.init_from_clip4caption`).

Caching: :meth:`StepCaptionDecoder.init_cache` projects the memory to cross-attention keys/values once; each
call with a cache appends the new tokens' self-attention keys/values, so decoding step t costs one position,
not t. :class:`DecoderCache` is a value: calls return a new cache and ``select`` reorders it for beam search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from quag.models.encoders import BERT_INIT_STD, BERT_NORM_EPS
from quag.models.layers import Dropout, Linear, MultiHeadAttention, attention_mask, tied_logits, tied_lookup


@dataclass
class DecoderCache:
    """Keys and values kept between decoding steps.

    Attributes:
        self_kv: Per layer, self-attention (keys, values), each (N, nh, t, hd) for the t tokens seen so far.
        cross_kv: Per layer, cross-attention (keys, values) of the memory, each (N, nh, T, hd).
        memory_mask: (N, 1, 1, T) bool attention mask over the memory (True = attend), or None.
    """

    self_kv: list[tuple[torch.Tensor, torch.Tensor]]
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]
    memory_mask: torch.Tensor | None

    @property
    def length(self) -> int:
        """Tokens already decoded (the position of the next one)."""
        return int(self.self_kv[0][0].shape[2]) if self.self_kv else 0

    def select(self, index: torch.Tensor, self_only: bool = False) -> DecoderCache:
        """Rows ``index`` (N',) of every cached tensor: beam reordering and dropping finished samples.

        ``self_only=True`` leaves the memory's keys/values as they are; valid only when ``index`` keeps N and
        maps each row to a row with the same memory (reordering beams within a sample).
        """

        def pick(kv: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            return kv[0].index_select(0, index), kv[1].index_select(0, index)

        if self_only:
            return DecoderCache([pick(kv) for kv in self.self_kv], self.cross_kv, self.memory_mask)
        return DecoderCache(
            self_kv=[pick(kv) for kv in self.self_kv],
            cross_kv=[pick(kv) for kv in self.cross_kv],
            memory_mask=None if self.memory_mask is None else self.memory_mask.index_select(0, index),
        )


class DecoderLayer(nn.Module):
    """One CLIP4Caption decoder layer: self-attention, cross-attention, FFN, each post-LN with a residual.

    Args:
        dim: H.
        num_heads: Heads of both attentions.
        ffn_dim: FFN width.
        dropout: Attention-probability and hidden dropout.

    Shapes:
        - x: (N, L, H); self_mask: broadcastable to (N, nh, L, t); output: (N, L, H).
    """

    def __init__(
        self, dim: int, num_heads: int, ffn_dim: int, dropout: float, attn_dropout: float | None = None
    ) -> None:
        super().__init__()
        attn_p = dropout if attn_dropout is None else attn_dropout
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout=attn_p, init_std=BERT_INIT_STD)
        self.self_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        self.cross_attn = MultiHeadAttention(dim, num_heads, dropout=attn_p, init_std=BERT_INIT_STD)
        self.cross_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        self.ffn_in = Linear(dim, ffn_dim)
        self.ffn_out = Linear(ffn_dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        self.dropout = Dropout(dropout)
        for lin in (self.ffn_in, self.ffn_out):
            nn.init.normal_(lin.weight, std=BERT_INIT_STD)
            nn.init.zeros_(lin.bias)

    def forward(
        self,
        x: torch.Tensor,
        self_kv: tuple[torch.Tensor, torch.Tensor],
        self_mask: torch.Tensor | None,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        cross_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        x = self.self_norm(x + self.dropout(self.self_attn.attend(x, *self_kv, self_mask)))
        x = self.cross_norm(x + self.dropout(self.cross_attn.attend(x, *cross_kv, cross_mask)))
        return self.ffn_norm(x + self.dropout(self.ffn_out(F.gelu(self.ffn_in(x)))))


class StepCaptionDecoder(nn.Module):
    """CLIP4Caption-style caption decoder over the encoder memory, with an optional key/value cache.

    Args:
        vocab_size: V (30,522).
        dim: H, width of the decoder and of the memory (768).
        num_layers: Decoder layers (2).
        num_heads: Heads (12).
        ffn_dim: FFN width (3072).
        max_positions: BERT absolute positions (512).
        dropout: Hidden and attention dropout (0.1).
        attn_dropout: Attention-probability dropout (default: ``dropout``).
        mask_memory: Give the cross-attention the memory's key-padding mask. False reproduces the reference,
            whose cross-attention mask is all zeros (no effect); callers may pass the mask either way.

    Shapes:
        - input_ids: (N, L) token ids, starting with [CLS] (with a cache: only the new tokens).
        - memory: (N, T, H); memory_mask: (N, T) bool, True = real frame, or None.
        - input_mask: (N, L) bool, True = real token (teacher forcing only; right padding).
        - output: logits (N, L, V) and the updated cache (None when called without one).
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        max_positions: int,
        dropout: float,
        mask_memory: bool = True,
        attn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.mask_memory = mask_memory
        self.word_embeddings = nn.Embedding(vocab_size, dim)
        self.position_embeddings = nn.Embedding(max_positions, dim)
        self.embed_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        self.dropout = Dropout(dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, num_heads, ffn_dim, dropout, attn_dropout) for _ in range(num_layers)
        )
        self.transform = Linear(dim, dim)
        self.transform_norm = nn.LayerNorm(dim, eps=BERT_NORM_EPS)
        # The output projection is the word-embedding matrix itself (tied); only its bias is a new parameter.
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        for m in (self.word_embeddings, self.position_embeddings, self.transform):
            nn.init.normal_(m.weight, std=BERT_INIT_STD)
        nn.init.zeros_(self.transform.bias)

    @property
    def decoder_layers(self) -> list[DecoderLayer]:
        """The layers, typed."""
        return cast(list[DecoderLayer], list(self.layers))

    @property
    def max_positions(self) -> int:
        return self.position_embeddings.num_embeddings

    def _memory_attn_mask(self, memory_mask: torch.Tensor | None) -> torch.Tensor | None:
        if memory_mask is None or not self.mask_memory:
            return None
        return attention_mask(memory_mask)  # (N, 1, 1, T)

    def init_cache(self, memory: torch.Tensor, memory_mask: torch.Tensor | None) -> DecoderCache:
        """Project ``memory`` (N, T, H) to every layer's cross-attention keys/values, once per memory."""
        return DecoderCache(
            self_kv=[],
            cross_kv=[layer.cross_attn.project_kv(memory) for layer in self.decoder_layers],
            memory_mask=self._memory_attn_mask(memory_mask),
        )

    def logits(self, h: torch.Tensor, stash: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Output head: (N, L, H) -> (N, L, V) through the tied word embeddings.

        ``stash``: the one given to this forward pass's :func:`~quag.models.layers.tied_lookup`, so the two uses
        of the matrix share one gradient.
        """
        h = self.transform_norm(F.gelu(self.transform(h)))
        return tied_logits(h, self.word_embeddings.weight, self.output_bias, {} if stash is None else stash)

    def forward(
        self,
        input_ids: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
        cache: DecoderCache | None = None,
        input_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DecoderCache | None]:
        past = cache.length if cache is not None else 0
        length = input_ids.shape[1]
        if past + length > self.max_positions:
            raise ValueError(f"caption of {past + length} tokens exceeds the decoder's {self.max_positions} positions")
        positions = torch.arange(past, past + length, device=input_ids.device)
        stash: dict[str, torch.Tensor] = {}  # the tied matrix's gradient, from the head to the lookup
        x = tied_lookup(input_ids, self.word_embeddings.weight, stash) + self.position_embeddings(positions)
        x = self.dropout(self.embed_norm(x))

        # Causal mask aligned to the end (new token i sits at position past + i), plus right padding.
        causal = torch.ones(length, past + length, dtype=torch.bool, device=x.device).tril(past)  # (L, t)
        self_mask: torch.Tensor | None = causal[None, None]  # (1, 1, L, t)
        if input_mask is not None and cache is None:
            self_mask = causal[None, None] & input_mask[:, None, None, :]  # (N, 1, L, L)
        if length == 1:
            self_mask = None  # one new token may see every cached one: let SDPA take its unmasked path
        if cache is None:
            cross_kvs = [layer.cross_attn.project_kv(memory) for layer in self.decoder_layers]
            cross_mask = self._memory_attn_mask(memory_mask)
        else:
            cross_kvs, cross_mask = cache.cross_kv, cache.memory_mask

        new_self_kv = []
        for i, layer in enumerate(self.decoder_layers):
            k, v = layer.self_attn.project_kv(x)  # (N, nh, L, hd)
            if cache is not None:
                if cache.self_kv:
                    past_k, past_v = cache.self_kv[i]
                    k = torch.cat([past_k, k.to(past_k.dtype)], dim=2)  # (N, nh, t, hd)
                    v = torch.cat([past_v, v.to(past_v.dtype)], dim=2)  # (N, nh, t, hd)
                new_self_kv.append((k, v))
            x = layer(x, (k, v), self_mask, cross_kvs[i], cross_mask)
        new_cache = None if cache is None else DecoderCache(new_self_kv, cache.cross_kv, cache.memory_mask)
        return self.logits(x, stash), new_cache  # (N, L, V)
