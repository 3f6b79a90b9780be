"""Caption decoding: batched beam search with the reference's semantics, and greedy decoding.

The reference (CLIP4Caption's OpenNMT-style ``Beam``, docs/models.md) decodes like this, and
:func:`generate_beam` does the same, for the whole batch at once:

- start from [CLS]; at most ``max_len`` decoding steps;
- a beam's score is its cumulative log-probability, with no length normalisation;
- the first step expands only beam 0 (the other beams start at -inf);
- each step keeps the ``num_beams`` best (beam, token) continuations of a sample, sorted by score;
- beams that emitted [SEP] below the top one keep being extended like any other beam;
- a sample finishes when its **top** beam's newest token is [SEP]; otherwise after ``max_len`` steps;
- the output is the top beam, cut at its first [SEP] and then at its first [PAD] (special tokens removed).

One departure, always on: tokens that are not words are never generated. With the bert-base-uncased vocabulary
(V = 30,522) that is every bracketed entry but [SEP]: [PAD], [UNK], [CLS], [MASK] and the 994 [unusedN]
placeholders (the reference can emit them, and an undertrained decoder does: ``[unused176]`` inside a caption).
Their log-probabilities are set to -inf after the softmax, so every other continuation keeps the score the
reference gives it; only the choice among continuations changes. With another vocabulary size only the ids quag
itself reserves ([PAD] 0, [UNK] 100, [CLS] 101) are suppressed. ``suppress_ids`` overrides the set.

Deviations, both opt-in and documented:

- ``use_cache=True`` (default) runs one new position per step through a key/value cache instead of the whole
  prefix; the reference recomputes the prefix (``use_cache=False`` does that too and gives the same ids).
- ``length_penalty > 0`` ranks hypotheses by ``log p / length ** length_penalty``; to make that meaningful,
  beams that emitted [SEP] are frozen (only a [PAD] continuation at log-probability 0, length fixed at the
  [SEP]) and a sample finishes when its top-ranked beam is frozen. With 0 (default) nothing is frozen, exactly
  as the reference.

Call with the decoder in eval mode (dropout off). Finished samples are dropped from the batch (as the
reference's ``collate_active_info`` does), so the work per step shrinks as samples finish; nothing loops over
samples per step. Shape letters here: K beams, A samples still decoding, t tokens so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from quag.data.tokenizer import CLS_ID, PAD_ID, SEP_ID, UNK_ID, get_tokenizer
from quag.models.decoder import StepCaptionDecoder


@lru_cache(maxsize=8)
def never_generated_ids(vocab_size: int, eos_id: int = SEP_ID) -> tuple[int, ...]:
    """Token ids decoding never emits (see the module docstring), sorted.

    Args:
        vocab_size: V of the decoder.
        eos_id: the end token, always allowed.
    """
    tok = get_tokenizer()
    if vocab_size == len(tok):
        ids = [i for i, t in enumerate(tok.id_to_token) if t.startswith("[") and t.endswith("]")]
    else:
        ids = [PAD_ID, UNK_ID, CLS_ID]
    return tuple(i for i in ids if i != eos_id and i < vocab_size)


def _cut(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    """Cut at the first [SEP], then at the first [PAD] (the reference's post-processing)."""
    for stop in (eos_id, pad_id):
        if stop in ids:
            ids = ids[: ids.index(stop)]
    return ids


@torch.no_grad()
def generate_beam(
    decoder: StepCaptionDecoder,
    memory: torch.Tensor,
    memory_mask: torch.Tensor | None,
    num_beams: int = 3,
    max_len: int = 48,
    length_penalty: float = 0.0,
    use_cache: bool = True,
    bos_id: int = CLS_ID,
    eos_id: int = SEP_ID,
    pad_id: int = PAD_ID,
    suppress_ids: Sequence[int] | None = None,
) -> list[list[int]]:
    """Beam-search captions for a batch of memories (see the module docstring for the exact semantics).

    Args:
        decoder: The caption decoder (in eval mode).
        memory: (B, T, H) encoder output.
        memory_mask: (B, T) bool, True = real frame, or None.
        num_beams: Beams per sample (3 in the reference scripts; 1 is greedy decoding).
        max_len: Decoding steps (48).
        length_penalty: alpha in ``log p / length ** alpha``; 0 = the reference (no normalisation).
        use_cache: Decode through the key/value cache (fast) instead of re-running the prefix.
        bos_id: Start token ([CLS] = 101).
        eos_id: End token ([SEP] = 102).
        pad_id: Padding token ([PAD] = 0).
        suppress_ids: Tokens never generated; None: :func:`never_generated_ids` of the decoder's vocabulary.

    Returns:
        One list of token ids per sample, without [CLS] and [SEP].
    """
    if num_beams < 1 or max_len < 1:
        raise ValueError(f"num_beams ({num_beams}) and max_len ({max_len}) must be >= 1")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    if max_len > decoder.max_positions:
        raise ValueError(f"max_len ({max_len}) exceeds the decoder's {decoder.max_positions} positions")
    batch, k, device = memory.shape[0], num_beams, memory.device
    freeze = length_penalty > 0
    vocab_size = decoder.word_embeddings.num_embeddings
    suppress = never_generated_ids(vocab_size, eos_id) if suppress_ids is None else tuple(suppress_ids)
    if eos_id in suppress:
        raise ValueError(f"suppress_ids must not contain the end token {eos_id}")
    banned = torch.zeros(vocab_size, dtype=torch.bool, device=device)  # (V,)
    banned[list(suppress)] = True

    mem = memory.repeat_interleave(k, dim=0)  # (B*K, T, H)
    mem_mask = None if memory_mask is None else memory_mask.repeat_interleave(k, dim=0)  # (B*K, T)
    cache = decoder.init_cache(mem, mem_mask) if use_cache else None
    tokens = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=device)  # (N, t)
    scores = torch.zeros(batch, k, device=device)  # (A, K) cumulative log-probabilities
    scores[:, 1:] = float("-inf")  # the first step expands beam 0 only
    ended_at = torch.zeros(batch, k, dtype=torch.long, device=device)  # (A, K) length at [SEP], 0 = open
    active = torch.arange(batch, device=device)  # (A,) original index of each active sample
    results: list[list[int]] = [[] for _ in range(batch)]

    for step in range(max_len):
        if cache is not None:
            logits, cache = decoder(tokens[:, -1:], mem, mem_mask, cache)
        else:
            logits, _ = decoder(tokens, mem, mem_mask)
        logp = F.log_softmax(logits[:, -1].float(), dim=-1).masked_fill(banned, float("-inf"))  # (A*K, V)
        n_active, vocab = active.numel(), logp.shape[-1]
        if freeze:
            frozen_row = torch.full((vocab,), float("-inf"), device=device)
            frozen_row[pad_id] = 0.0
            ended = (ended_at.view(-1) > 0)[:, None]  # (A*K, 1)
            logp = torch.where(ended, frozen_row, logp)  # (A*K, V): a frozen beam may only add [PAD] at 0
        candidates = (scores.view(-1, 1) + logp).view(n_active, k * vocab)  # (A*K, 1) + (A*K, V) -> (A, K*V)
        rank = candidates
        if freeze:
            lengths = torch.where(ended_at > 0, ended_at, step + 1).float()  # (A, K)
            per_beam = candidates.view(n_active, k, vocab)  # (A, K, V)
            rank = (per_beam / lengths[..., None] ** length_penalty).view(n_active, k * vocab)  # (A, K*V)
        top = rank.topk(k, dim=1).indices  # (A, K), best first
        scores = candidates.gather(1, top)  # (A, K)
        prev_beam, new_token = top // vocab, top % vocab  # (A, K)
        origin = (torch.arange(n_active, device=device)[:, None] * k + prev_beam).view(-1)  # (A*K,)
        tokens = torch.cat([tokens.index_select(0, origin), new_token.view(-1, 1)], dim=1)  # (A*K, t+1)
        if freeze:
            prev_end = ended_at.view(-1).index_select(0, origin).view(n_active, k)  # (A, K)
            ended_at = torch.where(prev_end > 0, prev_end, (new_token == eos_id).long() * (step + 1))
            done = ended_at[:, 0] > 0  # (A,)
        else:
            done = new_token[:, 0] == eos_id  # (A,) the top beam just emitted [SEP]

        if step == max_len - 1:
            done = torch.ones_like(done)
        any_done = bool(done.any())  # one host sync per step, as the reference's per-sample checks
        if any_done:
            top_rows = tokens[::k, 1:].tolist()  # (A, t) the best beam of every active sample
            for i in done.nonzero().flatten().tolist():
                results[int(active[i])] = top_rows[i]
            keep = ~done
            if not bool(keep.any()):
                break
            rows = (keep.nonzero().flatten()[:, None] * k + torch.arange(k, device=device)).view(-1)  # (A'*K,)
            tokens, scores, ended_at, active = tokens[rows], scores[keep], ended_at[keep], active[keep]
            mem = mem[rows]
            mem_mask = None if mem_mask is None else mem_mask[rows]
            origin = origin[rows]
        if cache is not None:
            # Cross-attention keys/values are identical across one sample's beams: reorder them only when
            # samples were dropped.
            cache = cache.select(origin, self_only=not any_done)
    return [_cut(r, eos_id, pad_id) for r in results]


def generate_greedy(
    decoder: StepCaptionDecoder,
    memory: torch.Tensor,
    memory_mask: torch.Tensor | None,
    max_len: int = 48,
    use_cache: bool = True,
    suppress_ids: Sequence[int] | None = None,
) -> list[list[int]]:
    """Greedy decoding (beam search with one beam): argmax each step until [SEP] or ``max_len``.

    ``suppress_ids`` as in :func:`generate_beam`.

    Shapes:
        - memory: (B, T, H); memory_mask: (B, T) bool or None.
    """
    return generate_beam(
        decoder, memory, memory_mask, num_beams=1, max_len=max_len, use_cache=use_cache, suppress_ids=suppress_ids
    )
