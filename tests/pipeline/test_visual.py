"""Frame preprocessing (torchvision's Resize + CenterCrop semantics on PIL) and the 1-fps visual encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from quag.pipeline.eva_clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from quag.pipeline.video import iter_frames_1fps
from quag.pipeline.visual import VisualEncoder, normalize_crops, resize_center_crop
from tests.pipeline.helpers import TINY_EVA, make_video


def gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.concatenate([x + 0 * y, 0 * x + y, (x + y) / 2], -1).astype(np.uint8))


@pytest.mark.parametrize(("w", "h"), [(640, 360), (360, 640), (300, 300), (225, 401), (224, 500)])
def test_resize_shorter_side_then_centre_crop(w: int, h: int) -> None:
    image = gradient(w, h)
    out = resize_center_crop(image, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    # torchvision: shorter side -> 224, longer -> int(224 * long / short), bicubic; crop offsets int(round(.))
    short, long = min(w, h), max(w, h)
    size = (224, int(224 * long / short)) if w <= h else (int(224 * long / short), 224)
    resized = image if short == 224 else image.resize(size, Image.Resampling.BICUBIC)
    top, left = int(round((resized.height - 224) / 2)), int(round((resized.width - 224) / 2))
    expected = np.asarray(resized.crop((left, top, left + 224, top + 224)))
    np.testing.assert_array_equal(out, expected)


def test_normalisation_uses_openai_clip_statistics() -> None:
    crops = np.zeros((2, 4, 4, 3), np.uint8)
    crops[1] = 255
    x = normalize_crops(crops)
    assert x.shape == (2, 3, 4, 4)
    mean, std = torch.tensor(OPENAI_CLIP_MEAN), torch.tensor(OPENAI_CLIP_STD)
    torch.testing.assert_close(x[0, :, 0, 0], -mean / std)
    torch.testing.assert_close(x[1, :, 0, 0], (1 - mean) / std)


def test_jpeg_round_trip_changes_pixels_slightly() -> None:
    image = gradient(300, 240)
    plain, jpeg = resize_center_crop(image, 224), resize_center_crop(image, 224, jpeg_quality=95)
    diff = np.abs(plain.astype(int) - jpeg.astype(int))
    assert 0 < diff.mean() < 3


def test_visual_encoder_one_unit_row_per_second(tiny_checkpoint: Path, tmp_path: Path) -> None:
    encoder = VisualEncoder.from_checkpoint(tiny_checkpoint, batch_size=2)  # batches of 2 over 3 frames
    path = make_video(tmp_path / "v.mp4", 23, 10, size=(80, 48))
    feats = encoder.encode_video(path)
    assert feats.shape == (3, TINY_EVA.embed_dim) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    # the same as encoding the picked frames in one batch
    crops = np.stack([resize_center_crop(f.to_image(), 28) for _, f in iter_frames_1fps(path)])
    np.testing.assert_allclose(encoder.encode_crops(crops), feats, atol=1e-5)
    assert not np.allclose(feats[0], feats[2])  # different frames, different features
