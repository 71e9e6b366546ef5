"""upscale() accepts PIL, numpy and tensors and gives back the same kind; alpha, gray and range are handled."""

import numpy as np
import pytest
import torch
from PIL import Image

import swin2sr
from swin2sr.io.images import guess_layout
from tests.tiling_models import NearestX4

H, W = 20, 28


def nearest(x, s=4):
    return torch.nn.functional.interpolate(x, scale_factor=s, mode="nearest")


def test_comfy_bhwc_tensor_in_bhwc_out_with_values_clamped():
    x = torch.rand(2, H, W, 3) * 1.4 - 0.2  # ComfyUI can hand values outside 0..1
    out = swin2sr.upscale(NearestX4(), x, max_input_size=0)
    assert out.shape == (2, H * 4, W * 4, 3) and out.dtype == torch.float32
    expected = nearest(x.clamp(0, 1).movedim(-1, 1)).movedim(1, -1)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_bchw_tensor_in_bchw_out():
    x = torch.rand(1, 3, H, W)
    out = swin2sr.upscale(NearestX4(), x)
    assert out.shape == (1, 3, H * 4, W * 4)


@pytest.mark.parametrize(
    "shape,layout", [((1, 3, 64, 64), "BCHW"), ((1, 64, 64, 3), "BHWC"), ((2, 5, 4, 3), "BHWC"), ((2, 3, 5, 5), "BCHW")]
)
def test_layout_rule(shape, layout):
    assert guess_layout(torch.zeros(shape)) == layout


@pytest.mark.parametrize("shape", [(2, 4, 5, 3), (1, 3, 4, 4)])
def test_a_shape_both_layouts_fit_is_refused_by_the_rule(shape):
    with pytest.raises(ValueError, match="ambiguous"):
        guess_layout(torch.zeros(shape))


def test_explicit_layout_wins():
    x = torch.rand(1, 3, 4, 3)  # ambiguous: refused unless layout= says which
    assert swin2sr.upscale(NearestX4(), x, layout="BHWC").shape == (1, 12, 16, 3)


def test_numpy_uint8_uint16_and_float_keep_their_dtype():
    rgb = np.random.default_rng(0).random((H, W, 3))
    for array in ((rgb * 255).astype(np.uint8), (rgb * 65535).astype(np.uint16), rgb.astype(np.float32)):
        out = swin2sr.upscale(NearestX4(), array)
        assert out.shape == (H * 4, W * 4, 3) and out.dtype == array.dtype
        np.testing.assert_array_equal(out[::4, ::4], array)


def test_pil_rgba_keeps_alpha_resized_separately():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # top half transparent
    out = swin2sr.upscale(NearestX4(), Image.fromarray(rgba, "RGBA"))
    assert out.mode == "RGBA" and out.size == (W * 4, H * 4)
    alpha = np.asarray(out)[..., 3]
    assert alpha[:30].max() == 0 and alpha[50:].min() == 255  # a plain filter: edges blend, no overshoot
    np.testing.assert_array_equal(np.asarray(out)[::4, ::4, :3], rgba[..., :3])


def test_gray_goes_through_as_rgb_and_comes_back_gray():
    gray = np.random.default_rng(2).integers(0, 256, (H, W), dtype=np.uint8)
    out = swin2sr.upscale(NearestX4(), Image.fromarray(gray, "L"))
    assert out.mode == "L" and out.size == (W * 4, H * 4)
    np.testing.assert_array_equal(np.asarray(out)[::4, ::4], gray)
    assert swin2sr.upscale(NearestX4(), gray).shape == (H * 4, W * 4)


def test_batches_go_image_by_image_into_one_output():
    x = torch.rand(3, 3, H, W)
    out, report = swin2sr.upscale(NearestX4(), x, tile=16, overlap=4, return_report=True)
    torch.testing.assert_close(out, nearest(x), atol=1e-6, rtol=0)
    assert report.plan.batch == 3 and report.plan.total_tiles == 3 * report.plan.tiles_per_image


def test_unsupported_input_is_a_clear_error():
    with pytest.raises(TypeError, match="PIL image"):
        swin2sr.upscale(NearestX4(), [[0.5]])
    with pytest.raises(ValueError, match="channels"):
        swin2sr.upscale(NearestX4(), torch.rand(1, 7, 9, 9))


def test_an_empty_batch_is_a_clear_error_not_a_crash():
    with pytest.raises(ValueError, match="empty"):
        swin2sr.upscale(NearestX4(), torch.zeros(0, H, W, 3))


@pytest.mark.parametrize("image", [torch.full((1, H, W, 3), float("nan")), np.full((H, W, 3), np.nan, np.float32)])
def test_nan_pixels_are_refused_with_the_likely_cause(image):
    with pytest.raises(ValueError, match="NaN.*fp32"):
        swin2sr.upscale(NearestX4(), image)


def test_infinities_are_clamped_like_any_out_of_range_value():
    x = torch.rand(1, H, W, 3)
    x[0, 0, 0] = float("inf")
    out = swin2sr.upscale(NearestX4(), x, max_input_size=0)
    assert torch.isfinite(out).all() and out.max() == 1.0


def test_a_one_pixel_image_upscales():
    assert swin2sr.upscale(NearestX4(), Image.new("RGB", (1, 1))).size == (4, 4)
