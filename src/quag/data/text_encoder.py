"""The sentence-encoder interface that HiREST-sim and the caption baselines are given.

Code below the pipeline (``quag.data.sim``, ``quag.evaluation.baselines``) takes an encoder as an argument instead
of building one, so it never imports :mod:`quag.pipeline` (see docs/architecture.md). The all-MiniLM-L6-v2
encoder, ``quag.pipeline.text.MiniLMEncoder``, satisfies :class:`TextEncoder`; the commands and the demo build it.
A plain function ``texts -> (N, D)`` array (:data:`Encode`) is accepted wherever an encoder is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

Encode = Callable[[list[str]], np.ndarray]
"""``texts -> (N, D)`` float32 embeddings, one row per text."""


@runtime_checkable
class TextEncoder(Protocol):
    """A named sentence encoder with a fixed output width.

    Attributes:
        name: what reports call it, e.g. ``all-MiniLM-L6-v2``.
        dim: width ``D`` of the embeddings.
    """

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``.

        Shapes:
            returns (N, D) float32, unit-norm rows, N = ``len(texts)``.
        """
        ...


def encode_function(encoder: TextEncoder | Encode) -> Encode:
    """The ``texts -> embeddings`` function of an encoder (a function is returned as it is)."""
    return encoder.encode if isinstance(encoder, TextEncoder) else encoder
