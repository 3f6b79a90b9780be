import pytest
import torch
import torch.nn.functional as F

from quag.models.layers import Dropout, dropout, dropout_keep_mask, scaled_dot_product_attention


def test_drop_rate_scale_and_gradient() -> None:
    torch.manual_seed(0)
    x = torch.ones(400_000, requires_grad=True)
    y = dropout(x, 0.1)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.003  # p = 0.1 up to 1/65536 rounding and sampling
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)  # gradient flows only through kept elements, scaled like the values
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.9))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mask_as_a_factor_equals_where(dtype: torch.dtype) -> None:
    """``x * keep * scale`` gives exactly ``where(keep, x * scale, 0)`` (the same draws, values and gradient)."""
    x = torch.randn(3, 7, 65, dtype=dtype, requires_grad=True)
    torch.manual_seed(3)
    y = dropout(x, 0.1)
    torch.manual_seed(3)
    keep = dropout_keep_mask(x.shape, 0.1)
    want = torch.where(keep, x * (1.0 / 0.9), 0.0)
    assert y.dtype == dtype and torch.equal(y, want)
    g = torch.randn_like(y)
    (gy,) = torch.autograd.grad(y, x, g)
    (gw,) = torch.autograd.grad(want, x, g)
    assert torch.equal(gy, gw)


def test_eval_mode_and_edge_probabilities() -> None:
    x = torch.randn(3, 5)
    assert torch.equal(dropout(x, 0.1, training=False), x)
    assert torch.equal(dropout(x, 0.0), x)
    assert torch.count_nonzero(dropout(x, 1.0)) == 0
    m = Dropout(0.3).eval()
    assert torch.equal(m(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


def test_masks_follow_the_global_seed() -> None:
    x = torch.ones(64, 64)
    torch.manual_seed(5)
    a = dropout(x, 0.5)
    torch.manual_seed(5)
    b = dropout(x, 0.5)
    assert torch.equal(a, b) and not torch.equal(a, dropout(x, 0.5))


def test_attention_dropout_is_unbiased_and_off_means_sdpa() -> None:
    """p = 0 is PyTorch's SDPA; with p > 0 (the CPU path through :func:`dropout`) the mean output is SDPA's."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 4, 8, generator=g) for _ in range(3))
    mask = torch.tensor([True, True, True, False]).expand(2, 1, 1, 4)  # the last key is padding
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(scaled_dot_product_attention(q, k, v, mask), want)
    torch.manual_seed(0)
    mean = torch.stack([scaled_dot_product_attention(q, k, v, mask, 0.1) for _ in range(2000)]).mean(0)
    torch.testing.assert_close(mean, want, rtol=0, atol=0.05)
