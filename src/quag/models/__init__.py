"""QUAG and the HiREST Joint baseline: models, losses, caption decoding and reference-checkpoint loading.

Shape letters used in every docstring and shape comment of this package:

| letter | meaning |
|---|---|
| B | batch |
| T | video clips (frames at 1 fps, padded to the longest video of the batch) |
| H | ``hidden_dim``: width of the temporal encoder, the heads and the caption decoder (768) |
| E | ``joint_fusion_dim``: the Joint baseline's fusion width (512), projected to H by its encoder |
| D | width of a generic block (QUAG fuses at D = H, Joint at D = E) |
| L | caption tokens |
| V | vocabulary (30,522) |
| N | rows seen by the decoder (B, or B x beams while decoding) |
| nh, hd | attention heads, head width |
| Dv, Da, Dq | input widths of frames (1024), audio stream (HiREST: the transcript, 384) and query (1024) |

Masks are ``torch.bool`` with True = valid (a real frame, a real token); they are converted only at the
attention call. Time is in clip indices here; seconds exist only outside the model.

Entry points: :func:`build_model`, :class:`QuagModel`, :class:`JointModel`, the losses in
:mod:`quag.models.losses`, :func:`generate_beam` / :func:`generate_greedy`, and
:mod:`quag.models.reference_compat` for reference checkpoints.
"""

from __future__ import annotations

from quag.config import ModelConfig
from quag.models.decoder import DecoderCache, StepCaptionDecoder
from quag.models.generation import generate_beam, generate_greedy
from quag.models.joint import JointModel
from quag.models.outputs import (
    CaptionOutput,
    EncoderOutput,
    FrontOutput,
    MomentRetrievalOutput,
    SegmentationOutput,
    TaskOutput,
)
from quag.models.quag import QuagModel
from quag.models.summary import count_parameters

HiRESTModel = QuagModel | JointModel
"""Either model; both expose the same methods (``encode_front``, ``encode_context``, ``encode``, ``heads``,
``decoder``, ``moment_logits``, ``segment_logits``)."""


def build_model(cfg: ModelConfig) -> HiRESTModel:
    """Build :class:`QuagModel` (``cfg.arch == "quag"``) or :class:`JointModel` (``"joint"``)."""
    if cfg.arch == "quag":
        return QuagModel(cfg)
    if cfg.arch == "joint":
        return JointModel(cfg)
    raise ValueError(f"model.arch must be 'quag' or 'joint', got {cfg.arch!r}")


__all__ = [
    "CaptionOutput",
    "DecoderCache",
    "EncoderOutput",
    "HiRESTModel",
    "FrontOutput",
    "JointModel",
    "MomentRetrievalOutput",
    "QuagModel",
    "SegmentationOutput",
    "StepCaptionDecoder",
    "TaskOutput",
    "build_model",
    "count_parameters",
    "generate_beam",
    "generate_greedy",
]
