"""Model outputs: one dataclass per task, plus the front-end output used for fast segmentation decoding.

Logits are raw and finite at every position, padded frames and padded tokens included; masking belongs to the
losses (:mod:`quag.models.losses`) and to the decoders (moment / boundary / caption decoding).
``msp_loss`` is QUAG's contrastive loss L_msp (Eq. 2), or None when the model has no MSP (Joint, MSP ablation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class FrontOutput:
    """Output of ``encode_front``: what does not depend on the moment and boundary masks.

    Attributes:
        features: (B, T, D) fused features (QUAG: after MSP and QC2; Joint: after projection and query gating).
        msp_loss: Scalar L_msp or None.
    """

    features: torch.Tensor
    msp_loss: torch.Tensor | None


@dataclass
class EncoderOutput:
    """Output of ``encode``: the temporal encoder's output for the heads and the caption decoder.

    Attributes:
        hidden: (B, T, H) contextualised frames.
        msp_loss: Scalar L_msp or None.
    """

    hidden: torch.Tensor
    msp_loss: torch.Tensor | None


@dataclass
class MomentRetrievalOutput:
    """Moment retrieval.

    Attributes:
        start_logits: (B, T) start logits (finite on padding).
        end_logits: (B, T) end logits (finite on padding).
        msp_loss: Scalar L_msp or None.
    """

    start_logits: torch.Tensor
    end_logits: torch.Tensor
    msp_loss: torch.Tensor | None


@dataclass
class SegmentationOutput:
    """Moment segmentation.

    Attributes:
        logits: (B, T) next-boundary logits (finite everywhere; the loss masks frames outside the region).
        msp_loss: Scalar L_msp or None.
    """

    logits: torch.Tensor
    msp_loss: torch.Tensor | None


@dataclass
class CaptionOutput:
    """Step captioning (teacher forcing).

    Attributes:
        logits: (B, L, V) next-token logits for every decoder input position.
        msp_loss: Scalar L_msp or None.
    """

    logits: torch.Tensor
    msp_loss: torch.Tensor | None


TaskOutput = MomentRetrievalOutput | SegmentationOutput | CaptionOutput
"""Any of the three task outputs."""
