"""The two behaviours of the authors' code that are switches here: the island walk bounded by the padded batch
length (``eval.segmentation_length``) and the caption text as they print it (``eval.caption_text``)."""

import torch

from quag.data.tokenizer import get_tokenizer
from quag.inference.segmentation import decode_islands, decode_islands_naive, postprocess_boundaries


def _logits_fn(scores: torch.Tensor):  # noqa: ANN202
    def fn(rows: torch.Tensor, region: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        return scores[rows]

    return fn


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Video 0 (10 frames, moment [2, 9]) is shorter than video 1 (20 frames) and its moment ends on its last
    frame; its scores peak on a plateau that reaches that frame."""
    scores = torch.full((2, 20), -5.0)
    scores[0, 6:10] = 3.0
    scores[1, 8:12] = 3.0
    return scores, torch.tensor([[2, 9], [3, 18]]), torch.tensor([10, 20])


def test_segmentation_length_reference_walks_into_the_padding() -> None:
    scores, moments, lengths = _batch()
    own = decode_islands(_logits_fn(scores), moments, lengths, rounds=1)
    ref = decode_islands(_logits_fn(scores), moments, lengths, rounds=1, length="reference")
    assert own[0] == [(5, 9)]  # stops on the video's own last frame
    assert ref[0] == [(5, 10)]  # one frame into the padding, as the authors' code
    assert own[1] == ref[1]  # the longest video of the batch is not affected
    for length in ("own", "reference"):
        fast = decode_islands(_logits_fn(scores), moments, lengths, rounds=3, length=length)
        assert fast == decode_islands_naive(_logits_fn(scores), moments, lengths, rounds=3, length=length)
    # Under the authors' post-processing the padded bound keeps the moment end (9) and the own bound loses it;
    # our default post-processing (emit_last) closes every list with the moment end either way.
    assert postprocess_boundaries(own[0], 2, 9, emit_last=False) == [2]
    assert postprocess_boundaries(ref[0], 2, 9, emit_last=False) == [2, 9]
    assert postprocess_boundaries(own[0], 2, 9, min_gap=1, emit_last=False) == [2, 5]
    assert postprocess_boundaries(ref[0], 2, 9, min_gap=1, emit_last=False) == [2, 5, 9]
    assert postprocess_boundaries(own[0], 2, 9) == postprocess_boundaries(ref[0], 2, 9) == [2, 9]


def test_caption_text_clean_and_reference() -> None:
    tok = get_tokenizer()
    ids = [tok.vocab[w] for w in ["#", "add", "[CLS]", "the", "salt", "##s", "#"]] + [102, tok.vocab["cat"]]
    assert tok.decode(ids) == "# add the salts #"
    assert tok.decode(ids, "reference") == "add [CLS] the salts"
