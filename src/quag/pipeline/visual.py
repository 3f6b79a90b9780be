"""1-fps frame features with the EVA-CLIP image tower: preprocessing, batching, L2 normalisation.

Preprocessing is the reference's torchvision pipeline on PIL images (docs/pipeline.md), reimplemented with
PIL and NumPy so that torchvision is not needed:

1. ``Resize(224, BICUBIC)``: the shorter side becomes 224, the longer ``int(224 * long / short)``
   (truncated), PIL bicubic (which antialiases when shrinking); skipped when the shorter side already is 224;
2. ``CenterCrop(224)``: offsets ``int(round((size - 224) / 2))``;
3. RGB, ``ToTensor`` (``/255``), ``Normalize`` with the OpenAI-CLIP mean and std.

The official frames went through JPEG files (``cv2.imwrite``, quality 95) before step 1; ``jpeg_quality=95``
reproduces that round trip, the default (``None``) feeds the decoded frame directly.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from quag.pipeline.eva_clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, EvaClipConfig, EvaVisionTransformer
from quag.pipeline.video import iter_frames_1fps

logger = logging.getLogger(__name__)


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as e:
        raise RuntimeError("frame preprocessing needs Pillow: pip install quag[extract]") from e
    return Image


def resize_center_crop(image: Any, size: int, jpeg_quality: int | None = None) -> np.ndarray:
    """A PIL image -> (size, size, 3) uint8 RGB, as torchvision ``Resize(size, BICUBIC)`` + ``CenterCrop(size)``.

    Args:
        image: ``PIL.Image.Image``.
        size: output side.
        jpeg_quality: if given, JPEG-encode and decode the image first (the reference's frame files).
    """
    Image = _pil()
    if jpeg_quality is not None:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=jpeg_quality)
        buffer.seek(0)
        image = Image.open(buffer)
        image.load()
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    if short != size:
        new_long = int(size * long / short)
        new_size = (size, new_long) if w <= h else (new_long, size)
        image = image.resize(new_size, Image.Resampling.BICUBIC)
    w, h = image.size
    if w < size or h < size:
        raise ValueError(f"image of {w}x{h} cannot be centre-cropped to {size}")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    image = image.crop((left, top, left + size, top + size)).convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def normalize_crops(crops: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 normalised with the OpenAI-CLIP mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S)
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class VisualEncoder:
    """Frames -> (T, D) L2-normalised EVA-CLIP image embeddings.

    Args:
        model: the image tower.
        config: its configuration (``config.name`` is the feature-spec name).
        device: torch device for the forward passes.
        batch_size: frames per forward pass (the reference uses 256).
        jpeg_quality: JPEG round trip before preprocessing (``95`` mimics the reference's frame files).
    """

    def __init__(
        self,
        model: EvaVisionTransformer,
        config: EvaClipConfig,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        jpeg_quality: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device).eval()
        self.config = config
        self.name = config.name
        self.dim = config.embed_dim
        self.image_size = config.vision.image_size
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.jpeg_quality = jpeg_quality

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: EvaClipConfig | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        jpeg_quality: int | None = None,
    ) -> VisualEncoder:
        """Load the image tower strictly from an EVA-CLIP checkpoint (see :func:`quag.pipeline.weights.load_tower`)."""
        from quag.pipeline.weights import load_tower

        model, config = load_tower(path, "visual", config=config, device=device)
        vision = cast(EvaVisionTransformer, model)
        return cls(vision, config, device=device, batch_size=batch_size, jpeg_quality=jpeg_quality)

    @torch.inference_mode()
    def encode_crops(self, crops: np.ndarray) -> np.ndarray:
        """(B, S, S, 3) uint8 preprocessed crops -> (B, D) float32 unit-norm rows."""
        x = normalize_crops(crops).to(self.device)  # (B, 3, S, S)
        feats = self.model(x).float()  # (B, D)
        return F.normalize(feats, dim=-1).cpu().numpy()

    def encode_images(self, images: Iterable[Any]) -> np.ndarray:
        """PIL images (a stream; consumed batch by batch) -> (T, D) float32 unit-norm rows."""
        out: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        for image in images:
            batch.append(resize_center_crop(image, self.image_size, self.jpeg_quality))
            if len(batch) == self.batch_size:
                out.append(self.encode_crops(np.stack(batch)))
                batch = []
        if batch:
            out.append(self.encode_crops(np.stack(batch)))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out)

    def encode_video(self, path: str | Path) -> np.ndarray:
        """(T, D) features of a video at 1 fps, T given by the official frame rule (:mod:`quag.pipeline.video`)."""
        return self.encode_images(_frames_as_images(iter_frames_1fps(path)))


def _frames_as_images(frames: Iterator[tuple[int, Any]]) -> Iterator[Any]:
    for _, frame in frames:
        yield frame.to_image()  # RGB24 via libswscale
