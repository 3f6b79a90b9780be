"""Saliency losses for TVSum: QD-DETR's, on the mean of the 20 annotators' scores.

The paper gives no saliency loss for TVSum. Its TVSum setting (batch 4, lr 1e-3, I3D + PANN + CLIP title) is
QD-DETR's TVSum script, and the rows it compares with (QD-DETR, TR-DETR, UVCOM) all train with QD-DETR's
saliency criterion, so we use it (``qd_detr/model.py`` ``SetCriterion.loss_saliency``, TVSum branch). With
``y`` the clip target in [0, 1] (mean annotator score rescaled, = QD-DETR's label / 12) and ``s`` the logits:

- rank-contrastive: for each level ``j = 1 .. K-1`` (K = 12), the clips with ``y >= j / K`` are positives; the
  loss is the mean negative log-softmax (temperature 0.5, over every real clip of the video, plus the same
  clips under a wrong title when the negative pass is on) of the positives, averaged over videos that have a
  positive, summed over levels and divided by K. It makes the ranking of the logits follow the annotators';
- margin ranking: ``2 * max(0, m + s[argmin y] - s[argmax y])`` with m = 0.2, mean over videos;
- negative pair: ``sum_t -log(1 - sigmoid(s_neg[t]))`` over the real clips of each video scored under another
  video's title (the batch rolled by one), mean over videos. It makes the score query-dependent; our default
  leaves it out (weight 0, see ``TVSumTrainConfig.negative_query_weight``): every TVSum title is unique, the
  test title is never seen, and leave-one-training-video-out validation showed no gain for 40% more compute.

UMT trains TVSum instead with a per-clip BCE on ``(sum - 20) / 80``; the ranking losses above match the
rank-based metric more closely. The total of Eq. 15 is ``L = L_sal + lambda * L_msp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_MASKED = -1e4  # logit given to padded clips before a softmax: exp underflows to 0 in float32


def rank_contrastive_loss(
    scores: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    negative_scores: torch.Tensor | None = None,
    temperature: float = 0.5,
    levels: int = 12,
) -> torch.Tensor:
    """QD-DETR's rank-contrastive saliency loss (module docstring).

    Args:
        scores: (B, T) logits.
        target: (B, T) targets in [0, 1].
        mask: (B, T) bool, True on real clips.
        negative_scores: Optional (B, T) logits under a wrong title, added to each softmax as negatives.
        temperature: Softmax temperature.
        levels: K; thresholds are j / K for j = 1 .. K - 1.

    Returns:
        Scalar loss.
    """
    logits = scores.float().masked_fill(~mask, _MASKED)  # (B, T)
    valid, labels = mask, target.float()
    if negative_scores is not None:
        logits = torch.cat([logits, negative_scores.float().masked_fill(~mask, _MASKED)], dim=1)  # (B, 2T)
        valid = torch.cat([mask, mask], dim=1)
        labels = torch.cat([labels, torch.zeros_like(labels)], dim=1)
    log_prob = F.log_softmax(logits / temperature, dim=1)  # (B, T')
    total = logits.new_zeros(())
    for j in range(1, levels):
        # A tiny tolerance keeps targets that equal j / K up to rounding (QD-DETR compares exact integers).
        positive = (labels >= j / levels - 1e-6) & valid  # (B, T')
        n_pos = positive.sum(1)  # (B,)
        if not bool(n_pos.any()):
            continue
        mean_log_prob = (log_prob * positive).sum(1) / n_pos.clamp(min=1)  # (B,)
        total = total + (-mean_log_prob * (n_pos > 0)).mean()
    return total / levels


def margin_ranking_loss(
    scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """Hinge between each video's highest- and lowest-scored clip by the annotators (module docstring).

    Args:
        scores: (B, T) logits.
        target: (B, T) targets.
        mask: (B, T) bool.
        margin: Hinge margin.

    Returns:
        Scalar loss.
    """
    t = target.float()
    best = t.masked_fill(~mask, -float("inf")).argmax(1)  # (B,)
    worst = t.masked_fill(~mask, float("inf")).argmin(1)  # (B,)
    rows = torch.arange(scores.shape[0], device=scores.device)
    pos, neg = scores[rows, best].float(), scores[rows, worst].float()  # (B,) each
    return 2.0 * torch.clamp(margin + neg - pos, min=0).mean()


def negative_query_loss(negative_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_t -log(1 - sigmoid(s_neg))`` (= softplus) over the real clips, mean over videos.

    Shapes:
        - negative_scores: (B, T); mask: (B, T) bool.
    """
    return (F.softplus(negative_scores.float()) * mask).sum(1).mean()


@dataclass
class SaliencyLossWeights:
    """Weights of the terms of :func:`saliency_loss` and their hyper-parameters."""

    rank_contrastive: float = 1.0
    margin: float = 1.0
    negative_query: float = 1.0
    msp: float = 0.3
    ranking_margin: float = 0.2
    temperature: float = 0.5
    levels: int = 12


def saliency_loss(
    scores: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weights: SaliencyLossWeights,
    msp_loss: torch.Tensor | None = None,
    negative_scores: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Every term and the total ``L = w_rc L_rc + w_m L_margin + w_neg L_neg + lambda L_msp``.

    Returns:
        ``{"total", "rank_contrastive", "margin", "negative_query", "msp"}`` scalars (absent terms are 0).
    """
    zero = scores.new_zeros((), dtype=torch.float32)
    terms = {
        "rank_contrastive": rank_contrastive_loss(
            scores, target, mask, negative_scores, weights.temperature, weights.levels
        ),
        "margin": margin_ranking_loss(scores, target, mask, weights.ranking_margin),
        "negative_query": zero if negative_scores is None else negative_query_loss(negative_scores, mask),
        "msp": zero if msp_loss is None else msp_loss.float(),
    }
    terms["total"] = (
        weights.rank_contrastive * terms["rank_contrastive"]
        + weights.margin * terms["margin"]
        + weights.negative_query * terms["negative_query"]
        + weights.msp * terms["msp"]
    )
    return terms
