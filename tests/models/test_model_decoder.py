"""Caption decoder: cache == no cache, the reference's beam semantics, batching, greedy decoding, and the tokens
decoding never emits ([PAD], [UNK], [CLS], [MASK], [unusedN])."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from quag.data.tokenizer import CLS_ID, PAD_ID, SEP_ID, UNK_ID, get_tokenizer
from quag.models import StepCaptionDecoder, generate_beam, generate_greedy
from quag.models.generation import never_generated_ids

VOCAB, DIM = 120, 32


def _decoder(seed: int = 0, sep_bias: float = 4.0) -> StepCaptionDecoder:
    """A tiny decoder with peaked, random outputs so that beams diverge and [SEP] comes at varied steps."""
    torch.manual_seed(seed)
    dec = StepCaptionDecoder(VOCAB, DIM, num_layers=2, num_heads=4, ffn_dim=64, max_positions=64, dropout=0.1)
    with torch.no_grad():
        for name, p in dec.named_parameters():
            if p.dim() == 2 and "norm" not in name:  # larger weights than BERT's 0.02: the memory matters
                p.normal_(std=1.5 / p.shape[1] ** 0.5)
        dec.word_embeddings.weight.normal_(std=1.0)
        dec.output_bias[SEP_ID] = sep_bias
    return dec.eval()


def _memory(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    mem = torch.randn(len(lengths), max(lengths), DIM, generator=gen)
    mask = torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]
    return mem, mask


def test_cached_logits_equal_full_prefix_logits() -> None:
    dec = _decoder()
    mem, mask = _memory([5, 8])
    ids = torch.randint(SEP_ID + 1, VOCAB, (2, 7))
    ids[:, 0] = CLS_ID
    with torch.no_grad():
        full, none_cache = dec(ids, mem, mask)
        assert none_cache is None
        cache = dec.init_cache(mem, mask)
        steps = []
        for t in range(ids.shape[1]):
            logits, cache = dec(ids[:, t : t + 1], mem, mask, cache)
            steps.append(logits)
    assert cache.length == ids.shape[1]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-4)


def test_input_padding_mask_leaves_real_tokens_unchanged() -> None:
    dec = _decoder()
    mem, mask = _memory([6, 6])
    ids = torch.tensor([[CLS_ID, 110, 111, 0, 0], [CLS_ID, 112, 113, 114, 115]])
    with torch.no_grad():
        plain, _ = dec(ids, mem, mask)
        masked, _ = dec(ids, mem, mask, input_mask=ids != 0)
    torch.testing.assert_close(masked[0, :3], plain[0, :3])
    torch.testing.assert_close(masked[1], plain[1])


def _reference_beam(
    dec: StepCaptionDecoder,
    mem: torch.Tensor,
    mask: torch.Tensor,
    k: int,
    max_len: int,
    suppress: tuple[int, ...] = (),
) -> list[int]:
    """The reference's OpenNMT ``Beam`` for one sample, written out naively (full prefix each step); ``suppress``
    tokens get log-probability -inf (the one departure of :func:`generate_beam`)."""
    scores = torch.zeros(k)
    prev_ks: list[torch.Tensor] = []
    next_ys = [torch.full((k,), CLS_ID, dtype=torch.long)]

    def hypothesis(b: int) -> list[int]:
        hyp = []
        for j in range(len(prev_ks) - 1, -1, -1):
            hyp.append(int(next_ys[j + 1][b]))
            b = int(prev_ks[j][b])
        return hyp[::-1]

    for _ in range(max_len):
        prefix = torch.tensor([[CLS_ID, *hypothesis(b)] for b in range(k)])  # (K, t)
        with torch.no_grad():
            logits, _ = dec(prefix, mem.expand(k, -1, -1), mask.expand(k, -1))
        word_prob = F.log_softmax(logits[:, -1].float(), dim=-1)  # (K, V)
        word_prob[:, list(suppress)] = float("-inf")
        beam_lk = word_prob + scores[:, None] if prev_ks else word_prob[0]
        best, best_id = beam_lk.reshape(-1).topk(k, 0, True, True)
        scores = best
        prev_ks.append(best_id // VOCAB)
        next_ys.append(best_id - prev_ks[-1] * VOCAB)
        if int(next_ys[-1][0]) == SEP_ID:
            break
    hyp = hypothesis(0)
    for stop in (SEP_ID, PAD_ID):
        hyp = hyp[: hyp.index(stop)] if stop in hyp else hyp
    return hyp


@pytest.mark.parametrize("seed", [0, 1, 5])
@pytest.mark.parametrize("suppress", [None, ()])
def test_beam_search_matches_the_reference_beam(seed: int, suppress: tuple[int, ...] | None) -> None:
    dec = _decoder(seed)
    with torch.no_grad():  # make the suppressed tokens likely: the reference would pick them
        dec.output_bias[[PAD_ID, UNK_ID, CLS_ID]] = 2.0
    lengths = [4, 7, 5, 6, 3]
    mem, mask = _memory(lengths, seed)
    got = generate_beam(dec, mem, mask, num_beams=3, max_len=12, suppress_ids=suppress)
    banned = never_generated_ids(VOCAB) if suppress is None else suppress
    expected = [
        _reference_beam(dec, mem[i : i + 1, :n], mask[i : i + 1, :n], 3, 12, banned) for i, n in enumerate(lengths)
    ]
    assert got == expected
    assert len({len(g) for g in got}) > 1, "the test should cover samples finishing at different steps"


def test_never_generated_ids_of_the_bert_vocabulary() -> None:
    tok = get_tokenizer()
    ids = never_generated_ids(len(tok))
    names = {tok.id_to_token[i] for i in ids}
    assert {"[PAD]", "[UNK]", "[CLS]", "[MASK]", "[unused0]", "[unused176]", "[unused993]"} <= names
    assert SEP_ID not in ids and len(ids) == 998  # 999 bracketed entries, less [SEP]
    allowed = [t for i, t in enumerate(tok.id_to_token) if i not in set(ids)]
    assert [t for t in allowed if t.startswith("[") and t.endswith("]")] == ["[SEP]"]
    assert never_generated_ids(VOCAB) == (PAD_ID, UNK_ID, CLS_ID)  # another vocabulary: only quag's own ids


@pytest.mark.parametrize("num_beams", [1, 3])
def test_suppressed_tokens_are_never_generated(num_beams: int) -> None:
    dec = _decoder(2, sep_bias=0.0)
    banned = (PAD_ID, 7, 50, UNK_ID, CLS_ID)
    with torch.no_grad():
        dec.output_bias[list(banned)] = 30.0  # every step would pick one of them
    mem, mask = _memory([5, 6], seed=3)
    plain = generate_beam(dec, mem, mask, num_beams=num_beams, max_len=10, suppress_ids=())
    assert all(ids == [] or ids[0] in banned for ids in plain)  # the reference semantics emit them
    out = generate_beam(dec, mem, mask, num_beams=num_beams, max_len=10, suppress_ids=banned)
    assert all(len(ids) == 10 and not set(ids) & set(banned) for ids in out)
    with pytest.raises(ValueError, match="end token"):
        generate_beam(dec, mem, mask, suppress_ids=(SEP_ID,))


@pytest.mark.parametrize("num_beams", [1, 3])
def test_cached_and_uncached_decoding_give_the_same_ids(num_beams: int) -> None:
    dec = _decoder(3, sep_bias=1.0)
    mem, mask = _memory([6, 3, 8, 5], seed=4)
    cached = generate_beam(dec, mem, mask, num_beams=num_beams, max_len=20, use_cache=True)
    uncached = generate_beam(dec, mem, mask, num_beams=num_beams, max_len=20, use_cache=False)
    assert cached == uncached
    assert all(SEP_ID not in ids and CLS_ID not in ids for ids in cached)


def test_batched_decoding_equals_one_by_one() -> None:
    dec = _decoder(5)
    lengths = [6, 2, 8]
    mem, mask = _memory(lengths, seed=6)
    batched = generate_beam(dec, mem, mask, num_beams=3, max_len=15)
    singles = [generate_beam(dec, mem[i : i + 1, :n], mask[i : i + 1, :n], 3, 15)[0] for i, n in enumerate(lengths)]
    assert batched == singles


def test_greedy_is_the_argmax_path() -> None:
    dec = _decoder(7)
    mem, mask = _memory([5, 7], seed=8)
    got = generate_greedy(dec, mem, mask, max_len=10)
    for i, n in enumerate([5, 7]):
        ids = [CLS_ID]
        for _ in range(10):
            with torch.no_grad():
                logits, _ = dec(torch.tensor([ids]), mem[i : i + 1, :n], mask[i : i + 1, :n])
            step = logits[0, -1].clone()
            step[list(never_generated_ids(VOCAB))] = float("-inf")
            ids.append(int(step.argmax()))
            if ids[-1] == SEP_ID:
                break
        expected = ids[1:]
        assert got[i] == (expected[: expected.index(SEP_ID)] if SEP_ID in expected else expected)


def test_length_penalty_decodes_valid_ids() -> None:
    dec = _decoder(9, sep_bias=1.5)
    mem, mask = _memory([5, 6, 7], seed=10)
    for use_cache in (True, False):
        out = generate_beam(dec, mem, mask, num_beams=3, max_len=16, length_penalty=1.0, use_cache=use_cache)
        assert len(out) == 3 and all(len(ids) <= 16 and SEP_ID not in ids for ids in out)
    with pytest.raises(ValueError, match="length_penalty"):
        generate_beam(dec, mem, mask, length_penalty=-1.0)


def test_decoding_too_long_for_the_position_table_raises() -> None:
    dec = _decoder()
    mem, mask = _memory([3])
    with pytest.raises(ValueError, match="positions"):
        generate_beam(dec, mem, mask, num_beams=1, max_len=80)
