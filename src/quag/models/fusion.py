"""QUAG's two fusion modules, MSP (modality-synergistic perception) and QC2 (query-centric cognition), and the
two steps of the QUAG trunk that run them or their ablations (:func:`fuse_audio_visual`, :func:`fuse_query`).

Paper: Tu et al., "Query-centric Audio-Visual Cognition Network for Moment Retrieval, Segmentation and
Step-Captioning", AAAI 2025 (https://arxiv.org/abs/2412.13543), section "Query-centric Audio-visual Cognition",
Eq. 1-8. Reference code: QUAG ``modeling_quag.py`` (``Align``, ``VAL``, ``foward_moment_shared``), described in
docs/models.md.

The trunk, shared by :class:`~quag.models.quag.QuagModel` (HiREST) and :class:`~quag.tvsum.model.TVSumQuag`:
input embedding (:class:`~quag.models.encoders.InputEmbedding`) -> :func:`fuse_audio_visual` (MSP, or the sum of
V and A) -> :func:`fuse_query` (QC2, or element-wise query gating). The audio stream A is the paper's R_a: the
speech transcript's MiniLM embeddings on HiREST, PANN audio on TVSum.

``mask_padding=True`` (our default) excludes padded frames from every mean and every attention;
``mask_padding=False`` reproduces the reference exactly: the MSP global mean sums all T rows (padding included)
and divides by the number of valid frames, the QC2 channel mean is a plain mean over all T, and no attention
gets a key-padding mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from quag.models.layers import Dropout, Linear, MultiHeadAttention, linear, masked_mean


def info_nce(video_global: torch.Tensor, audio_global: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between paired global features (Eq. 2), with in-batch negatives.

    ``L = 1/2 [CE(S, I) + CE(S^T, I)]`` with ``S = norm(v) norm(a)^T / tau``. A batch of one gives 0.

    Args:
        video_global: (B, D) pooled visual features (normalised here).
        audio_global: (B, D) pooled audio features (normalised here).
        temperature: Scalar tau > 0.

    Returns:
        Scalar loss.
    """
    v = F.normalize(video_global.float(), dim=-1)
    a = F.normalize(audio_global.float(), dim=-1)
    logits = v @ a.t() / temperature  # (B, B)
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class CrossAttentionBlock(nn.Module):
    """The reference's ``Align``: ``LN(x + Drop(MHCA(x, context, context)))``, no feed-forward block.

    Args:
        dim: Width.
        num_heads: Heads.
        dropout: Attention-probability and residual dropout.

    Shapes:
        - x: (B, T, D) queries; context: (B, T, D); key_mask: (B, T) bool or None; output: (B, T, D).
    """

    def __init__(self, dim: int, num_heads: int, dropout: float, attn_dropout: float | None = None) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(dim, num_heads, dropout=dropout if attn_dropout is None else attn_dropout)
        self.norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        return self.norm(x + self.dropout(self.attn(x, context, key_mask=key_mask)))


class MSP(nn.Module):
    """Modality-synergistic perception (paper Eq. 1-4) between the visual stream V and the audio stream A.

    A is the paper's audio representation R_a: on HiREST the speech transcript's per-second MiniLM embeddings,
    on TVSum PANN audio embeddings.

    1. Global contrastive alignment: masked mean pooling of V and A (Eq. 1) and symmetric InfoNCE (Eq. 2) with
       a learnable temperature tau, initialised at ``temperature_init`` and clamped in place to
       [``temperature_min``, ``temperature_max``] at every forward (as the reference does, so the parameter
       never leaves the range and keeps receiving gradients at the bounds).
    2. Local interaction (Eq. 3): ``V' = MHCA(V, A, A)``, ``A' = MHCA(A, V, V)``, both from the pre-update
       tensors. The reference shares one layer between the two directions (default); ``separate=True`` builds
       one per direction, as the paper's Eq. 3 draws it.
    3. Fusion (Eq. 4): ``Linear(2D -> D)([V'; A'])``, no activation.

    Args:
        dim: D, the fusion width (QUAG fuses at H, ``hidden_dim``).
        num_heads: Cross-attention heads (12).
        dropout: Cross-attention dropout (0.1).
        attn_dropout: Attention-probability dropout (default: ``dropout``).
        separate: One cross-attention layer per direction instead of a shared one.
        temperature_init: Initial tau (0.07).
        temperature_min: Lower clamp of tau (0.001).
        temperature_max: Upper clamp of tau (0.5).
        mask_padding: Exclude padded frames (False: the reference's unmasked behaviour).

    Shapes:
        - video, audio: (B, T, D); video_mask: (B, T) bool.
        - output: fused (B, T, D) and the scalar contrastive loss L_msp.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dropout: float,
        separate: bool = False,
        temperature_init: float = 0.07,
        temperature_min: float = 0.001,
        temperature_max: float = 0.5,
        mask_padding: bool = True,
        attn_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.tensor(float(temperature_init)))
        self.temperature_min = temperature_min
        self.temperature_max = temperature_max
        self.mask_padding = mask_padding
        self.cross_attn = CrossAttentionBlock(dim, num_heads, dropout, attn_dropout)
        self.cross_attn_a2v = CrossAttentionBlock(dim, num_heads, dropout, attn_dropout) if separate else None
        self.fuse = Linear(2 * dim, dim)

    def global_features(self, x: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 1: (B, T, D) -> (B, D). The reference sums all T rows but divides by the valid count."""
        if self.mask_padding:
            return masked_mean(x, video_mask)
        return x.sum(1) / video_mask.sum(1, keepdim=True).clamp(min=1).to(x.dtype)

    def forward(
        self, video: torch.Tensor, audio: torch.Tensor, video_mask: torch.Tensor, with_loss: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fused features and L_msp; ``with_loss=False`` skips the global step and returns None for the loss
        (decoding needs only the features, which do not depend on it)."""
        loss = None
        if with_loss:
            with torch.no_grad():
                self.temperature.clamp_(self.temperature_min, self.temperature_max)
            loss = info_nce(
                self.global_features(video, video_mask), self.global_features(audio, video_mask), self.temperature
            )
        key_mask = video_mask if self.mask_padding else None
        a2v = self.cross_attn if self.cross_attn_a2v is None else self.cross_attn_a2v
        v_hat = self.cross_attn(video, audio, key_mask)  # (B, T, D): visual queries over audio
        a_hat = a2v(audio, video, key_mask)  # (B, T, D): audio queries over video
        return self.fuse(torch.cat([v_hat, a_hat], dim=-1)), loss  # (B, T, D)


class QC2(nn.Module):
    """Query-centric cognition (paper Eq. 5-8; the reference's class ``VAL``).

    - ``R_c = Linear(2D -> D)([R_v~; R_t])`` with the query broadcast over time (Eq. 5, first line);
    - temporal gate ``A_te = sigmoid(F_te(mean over channels of R_c))``, F_te a 1x1 linear map: (B, T, 1);
    - channel gate ``A_ch = sigmoid(F_ch(mean over time of R_c))``, F_ch D x D: (B, 1, D);
    - ``A_tc = A_te * A_ch`` (Eq. 6) gates the MSP output R_v~ (Eq. 7), not R_c;
    - ``R_m = A_tc * R_v~ + phi(R_c)`` (Eq. 8) with ``phi(x) = Linear(LN(x + Drop(MHSA(x))))``, the MHSA bias-free
      as in the reference, with no attention-probability dropout (``nn.MultiheadAttention``'s default; the
      reference's state dict cannot show it, and its code applies only the residual dropout).

    ``gates`` selects the ablations of the paper's Table 7: ``both``; ``temporal`` (A_tc = A_te, "w/o A_ch");
    ``channel`` (A_tc = A_ch, "w/o A_te"); ``none`` ("Base": A_te and A_ch are replaced by the mean-pooling
    operation itself, i.e. A_tc = mean_channels(R_c) * mean_time(R_c) with no learned map and no sigmoid; this
    is our reading of the supplementary's one-line description). Gates that are not used are not built.

    Args:
        dim: D.
        num_heads: Self-attention heads (12).
        dropout: Residual dropout of the self-attention branch.
        gates: ``both``, ``temporal``, ``channel`` or ``none``.
        mask_padding: Mask padded frames in the time mean and the self-attention.

    Shapes:
        - av: (B, T, D) MSP output; query: (B, D); video_mask: (B, T) bool.
        - output: (B, T, D).
    """

    def __init__(
        self, dim: int, num_heads: int, dropout: float, gates: str = "both", mask_padding: bool = True
    ) -> None:
        super().__init__()
        if gates not in ("both", "temporal", "channel", "none"):
            raise ValueError(f"gates must be both, temporal, channel or none, got {gates!r}")
        self.gates = gates
        self.mask_padding = mask_padding
        self.query_fuse = Linear(2 * dim, dim)
        self.channel_gate = Linear(dim, dim) if gates in ("both", "channel") else None
        self.temporal_gate = Linear(1, 1) if gates in ("both", "temporal") else None
        self.self_attn = MultiHeadAttention(dim, num_heads, bias=False)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        self.out_proj = Linear(dim, dim)

    def forward(self, av: torch.Tensor, query: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        mask = video_mask if self.mask_padding else None
        # Linear([R_v; R_t]) without materialising the broadcast query: the query half of the weight is applied
        # once per video instead of once per frame (same result, half the FLOPs of this layer)
        d = av.shape[-1]
        w = self.query_fuse.weight  # (D, 2D)
        r_c = linear(av, w[:, :d], self.query_fuse.bias) + linear(query, w[:, d:])[:, None, :]  # (B, T, D)
        channel_mean = r_c.mean(-1, keepdim=True)  # (B, T, 1): per-frame, padding-free by construction
        time_mean = masked_mean(r_c, mask).unsqueeze(1)  # (B, 1, D)
        if self.gates == "none":
            gate = channel_mean * time_mean  # (B, T, D)
        else:
            gate = torch.ones_like(channel_mean)
            if self.temporal_gate is not None:
                gate = gate * torch.sigmoid(self.temporal_gate(channel_mean))  # (B, T, 1)
            if self.channel_gate is not None:
                gate = gate * torch.sigmoid(self.channel_gate(time_mean))  # (B, T, D)
        phi = self.out_proj(self.norm(r_c + self.dropout(self.self_attn(r_c, key_mask=mask))))  # (B, T, D)
        return gate * av + phi


def fuse_audio_visual(
    msp: MSP | None, video: torch.Tensor, audio: torch.Tensor, video_mask: torch.Tensor, with_loss: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """MSP (Eq. 1-4), or with ``msp=None`` the paper's "w/o MSP" ablation (Table 4): V + A and no L_msp.

    Args:
        msp: The MSP module, or None when the model is built without it.
        video: V, embedded frames.
        audio: A, the embedded audio stream R_a (HiREST: transcript; TVSum: PANN audio).
        video_mask: True on real frames.
        with_loss: Compute L_msp (False when only the features are needed, as in decoding).

    Returns:
        The audio-visual features and L_msp (None without MSP or with ``with_loss=False``).

    Shapes:
        - video, audio: (B, T, D); video_mask: (B, T) bool; output: (B, T, D) and a scalar.
    """
    if msp is None:
        return video + audio, None
    return msp(video, audio, video_mask, with_loss)


def fuse_query(qc2: QC2 | None, av: torch.Tensor, query: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
    """QC2 (Eq. 5-8), or with ``qc2=None`` the paper's "w/o QC2" ablation (Table 4): the query gates the
    audio-visual features element-wise, as in the Joint baseline.

    Args:
        qc2: The QC2 module, or None when the model is built without it.
        av: Audio-visual features (the output of :func:`fuse_audio_visual`).
        query: The embedded query.
        video_mask: True on real frames.

    Returns:
        The query-conditioned features.

    Shapes:
        - av: (B, T, D); query: (B, D); video_mask: (B, T) bool; output: (B, T, D).
    """
    if qc2 is None:
        return av * query[:, None, :]
    return qc2(av, query, video_mask)
