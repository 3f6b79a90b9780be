"""Training losses, one function per task, and the per-step total of Eq. 15 (docs/training.md, docs/reference.md).

- moment retrieval: element-wise BCE-with-logits of the start and end logits against one-hot targets, summed
  over valid frames and divided by the number of valid frames in the batch; ``L = (L_start + L_end) / 2``.
  (The paper's Eq. 12 writes a softmax NLL; the reference trains with this BCE, and so do we.)
- moment segmentation: cross-entropy over frames with the next-boundary frame as the class, logits outside the
  allowed frames (``moment_mask``) set to the lowest finite value, as the reference does.
- step captioning: token cross-entropy, mean over the non-[PAD] targets (``ignore_pad=True``), or over all
  B x L positions, [PAD] targets included, as the reference (``ignore_pad=False``).
- total: ``L = L_task + lambda * L_msp`` (Eq. 15); lambda = 0.0003 on HiREST.

Losses are computed in float32 whatever the autocast dtype of the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from quag.data.collate import Batch
from quag.data.tokenizer import PAD_ID
from quag.models.outputs import CaptionOutput, MomentRetrievalOutput, SegmentationOutput, TaskOutput


def _require(value: torch.Tensor | None, name: str, task: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"the {task} loss needs batch.{name}, which is None (evaluation batches have no targets)")
    return value


def moment_retrieval_loss(output: MomentRetrievalOutput, batch: Batch, kind: str = "bce") -> torch.Tensor:
    """Start/end loss over valid frames (see the module docstring).

    Args:
        output: start/end logits.
        batch: targets and masks.
        kind: ``bce`` (the reference code: per-frame binary cross-entropy, summed over valid frames and divided by
            their number) or ``ce`` (the paper's Eq. 12: softmax over the valid frames, ``-log p_start - log p_end``
            averaged over the batch, halved like ``bce`` so both are means of the start and end terms).

    Shapes:
        - output.start_logits, output.end_logits: (B, T); batch.start_target, batch.end_target: (B,).
    """
    valid = batch.video_mask.float()  # (B, T)
    n_valid = valid.sum().clamp(min=1.0)
    losses = []
    for logits, target in (
        (output.start_logits, _require(batch.start_target, "start_target", "moment_retrieval")),
        (output.end_logits, _require(batch.end_target, "end_target", "moment_retrieval")),
    ):
        if kind == "ce":
            masked = logits.float().masked_fill(~batch.video_mask, torch.finfo(torch.float32).min)  # (B, T)
            losses.append(F.cross_entropy(masked, target))
            continue
        if kind != "bce":
            raise ValueError(f"unknown moment-retrieval loss {kind!r}; expected bce or ce")
        one_hot = F.one_hot(target, logits.shape[1]).float()  # (B, T)
        bce = F.binary_cross_entropy_with_logits(logits.float(), one_hot, reduction="none")  # (B, T)
        losses.append((bce * valid).sum() / n_valid)
    return 0.5 * (losses[0] + losses[1])


def moment_segmentation_loss(output: SegmentationOutput, batch: Batch) -> torch.Tensor:
    """Cross-entropy over the allowed frames (``moment_mask``) with the next boundary as the class.

    Shapes:
        - output.logits: (B, T); batch.segment_target: (B,).
    """
    target = _require(batch.segment_target, "segment_target", "moment_segmentation")
    allowed = batch.moment_mask & batch.video_mask  # (B, T)
    logits = output.logits.float().masked_fill(~allowed, torch.finfo(torch.float32).min)
    return F.cross_entropy(logits, target)


def step_captioning_loss(output: CaptionOutput, batch: Batch, ignore_pad: bool = True) -> torch.Tensor:
    """Token cross-entropy; ``ignore_pad=False`` also counts the [PAD] targets, as the reference.

    Shapes:
        - output.logits: (B, L, V); batch.caption_targets: (B, L).
    """
    target = _require(batch.caption_targets, "caption_targets", "step_captioning")
    logits = output.logits.float().flatten(0, 1)  # (B*L, V)
    return F.cross_entropy(logits, target.flatten(), ignore_index=PAD_ID if ignore_pad else -100)


def total_loss(
    task: str,
    output: TaskOutput,
    batch: Batch,
    msp_loss_weight: float,
    caption_ignore_pad: bool = True,
    moment_loss: str = "bce",
) -> dict[str, torch.Tensor]:
    """The training loss of one single-task step (Eq. 15).

    Args:
        task: ``moment_retrieval``, ``moment_segmentation`` or ``step_captioning``.
        output: The model output for ``batch``.
        batch: The batch, with targets.
        msp_loss_weight: lambda (0.0003 on HiREST; 0 leaves L_msp out of the gradient).
        caption_ignore_pad: See :func:`step_captioning_loss`.
        moment_loss: ``bce`` or ``ce``, see :func:`moment_retrieval_loss`.

    Returns:
        ``{"loss": backpropagate this, "task_loss": L_task}`` plus ``"msp_loss": L_msp`` when the model has MSP.
    """
    if task == "moment_retrieval" and isinstance(output, MomentRetrievalOutput):
        task_loss = moment_retrieval_loss(output, batch, moment_loss)
    elif task == "moment_segmentation" and isinstance(output, SegmentationOutput):
        task_loss = moment_segmentation_loss(output, batch)
    elif task == "step_captioning" and isinstance(output, CaptionOutput):
        task_loss = step_captioning_loss(output, batch, ignore_pad=caption_ignore_pad)
    else:
        raise ValueError(f"task {task!r} does not match the model output {type(output).__name__}")
    losses = {"loss": task_loss, "task_loss": task_loss}
    if output.msp_loss is not None:
        losses["msp_loss"] = output.msp_loss
        if msp_loss_weight:
            losses["loss"] = task_loss + msp_loss_weight * output.msp_loss
    return losses
