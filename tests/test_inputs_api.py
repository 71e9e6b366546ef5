"""`swin2sr.upscale` with every kind of image a caller may hand it: the exact result, or one clear error.

The model is NearestX2 (nearest-neighbour x2), so every expected output is known exactly: the model
sees the input converted to colour at full precision, and the result comes back in the closest mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from input_fixtures import NearestX2, nearest2, pil_image, transparent_palette_image
from PIL import Image

import swin2sr

# input mode -> (mode of the result, what the model saw, as a Pillow mode)
PIL_MODES = {
    "1": ("1", "L"),
    "L": ("L", "L"),
    "LA": ("LA", "LA"),
    "La": ("LA", "LA"),
    "P": ("RGB", "RGB"),
    "PA": ("RGBA", "RGBA"),
    "RGB": ("RGB", "RGB"),
    "RGBA": ("RGBA", "RGBA"),
    "RGBa": ("RGBA", "RGBA"),
    "RGBX": ("RGB", "RGB"),
    "CMYK": ("CMYK", "RGB"),
    "YCbCr": ("YCbCr", "RGB"),
    "HSV": ("HSV", "RGB"),
    "LAB": ("LAB", "RGB"),
}
DEEP_MODES = {"I;16": "I;16", "I;16B": "I;16", "I;16L": "I;16", "I": "I", "F": "F"}


def run(image, **options):
    return swin2sr.upscale(NearestX2(), image, max_input_size=0, **options)


@pytest.mark.parametrize("mode", sorted(PIL_MODES))
def test_every_8_bit_pillow_mode_comes_back_in_its_closest_mode(mode):
    image = pil_image(mode)
    back_as, seen_as = PIL_MODES[mode]
    out = run(image)
    assert (out.mode, out.size) == (back_as, (20, 16))
    seen = np.asarray(image.convert(seen_as))
    expected = Image.fromarray(nearest2(seen))
    if back_as != expected.mode:
        expected = expected.convert(back_as)
    if seen_as in ("LA", "RGBA"):  # alpha is resized bilinearly, not by the model: compare the colour
        assert np.array_equal(np.asarray(out)[..., :-1], np.asarray(expected)[..., :-1])
    else:
        assert np.array_equal(np.asarray(out), np.asarray(expected))


@pytest.mark.parametrize("mode", sorted(DEEP_MODES))
def test_16_bit_32_bit_and_float_pillow_images_keep_their_precision(mode):
    image = pil_image(mode)
    out = run(image)
    assert (out.mode, out.size) == (DEEP_MODES[mode], (20, 16))
    given = np.asarray(image).astype(np.float64)
    np.testing.assert_allclose(np.asarray(out).astype(np.float64), nearest2(given), atol=1e-6 if mode == "F" else 0)


def test_a_palette_image_with_transparency_keeps_the_transparent_pixels():
    image = transparent_palette_image()
    indices = np.asarray(image).copy()
    indices[:, :5] = 0  # the left half is transparent
    indices[:, 5:] = np.maximum(indices[:, 5:], 1)
    image = Image.fromarray(indices, "P")
    image.putpalette(transparent_palette_image().getpalette())
    image.info["transparency"] = 0
    out = run(image)
    alpha = np.asarray(out)[..., 3]
    assert out.mode == "RGBA"  # alpha is resized bilinearly: only the columns next to the edge blend
    assert (alpha[:, :9] == 0).all() and (alpha[:, 11:] == 255).all()


@pytest.mark.parametrize(
    "dtype,shape",
    [(np.uint8, (8, 10)), (np.uint8, (8, 10, 1)), (np.uint8, (8, 10, 3)), (np.uint8, (8, 10, 4)),
     (np.uint16, (8, 10)), (np.uint16, (8, 10, 3)), (np.uint16, (8, 10, 4)),
     (np.float32, (8, 10, 3)), (np.float64, (8, 10, 3)), (np.float16, (8, 10)), (np.float32, (8, 10, 2))],
)  # fmt: skip
def test_numpy_arrays_come_back_with_their_dtype_shape_and_values(dtype, shape):
    if np.issubdtype(dtype, np.floating):
        array = np.random.default_rng(0).random(shape).astype(dtype)
    else:
        array = np.random.default_rng(0).integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    out = run(array)
    assert out.dtype == dtype and out.shape == (16, 20, *shape[2:])
    color = slice(None) if len(shape) == 2 or shape[-1] in (1, 3) else slice(0, -1)  # alpha is filtered, not copied
    expected = nearest2(array)
    tolerance = 1e-3 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(out[..., color].astype(np.float64), expected[..., color].astype(np.float64), atol=tolerance)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_tensors_come_back_with_their_dtype_and_layout(dtype):
    x = (torch.rand(2, 8, 10, 3) * (255 if dtype == torch.uint8 else 1)).to(dtype)
    out = run(x)
    assert out.dtype == dtype and out.shape == (2, 16, 20, 3)


def test_a_float_image_slightly_out_of_range_is_clamped_like_another_model_output():
    array = np.full((8, 10, 3), 1.2, np.float32)
    array[0, 0] = -0.1
    out = run(array)
    assert out.max() == 1.0 and out.min() == 0.0


@pytest.mark.parametrize(
    "image,words",
    [
        (np.full((8, 10, 3), 200.0, np.float32), ["0..1", "reach 200", "divide by 255"]),
        (np.full((8, 10, 3), 40000.0), ["0..1", "divide by 65535"]),
        (np.full((8, 10), -5.0, np.float32), ["0..1", "down to -5"]),
        (torch.full((1, 8, 10, 3), 255.0), ["0..1", "divide by 255"]),
        (np.zeros((8, 10, 3), np.int32), ["dtype int32", "uint8"]),
        (np.zeros((8, 10, 3), bool), ["dtype bool", "uint8"]),
        (torch.zeros((1, 3, 8, 10), dtype=torch.int64), ["dtype torch.int64", "uint8"]),
        (np.zeros((8, 10, 5), np.uint8), ["HW or HWC", "1-4 channels"]),
        (np.zeros((2, 8, 10, 3), np.uint8), ["HW or HWC", "tensor [B,H,W,C]"]),
        (np.zeros((0, 10, 3), np.uint8), ["empty", "nothing to upscale"]),
        (np.full((8, 10, 3), np.nan, np.float32), ["NaN", "fp32"]),
        (torch.zeros(1, 5, 8, 10, 6), ["[B,C,H,W]"]),
    ],
    ids=["float255", "float65535", "negative", "tensor255", "int32", "bool", "int64tensor", "5channels", "4d-numpy",
         "empty", "nan", "5d-tensor"],
)  # fmt: skip
def test_a_probably_mistaken_array_is_refused_with_the_fix(image, words):
    with pytest.raises(ValueError) as caught:
        run(image)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("image", ["photo.png", [[0, 1], [2, 3]], None, b"\x89PNG"], ids=["path", "list", "none", "bytes"])
def test_a_value_that_is_not_an_image_is_a_type_error_naming_what_is_accepted(image):
    with pytest.raises(TypeError, match="PIL image, a numpy HWC array or a tensor"):
        run(image)


@pytest.mark.parametrize("image", [np.full((8, 10), 200, np.uint16), Image.fromarray(np.full((8, 10), 200, np.int32))],
                         ids=["uint16", "mode-I"])  # fmt: skip
def test_8_bit_values_in_a_16_bit_image_get_a_warning_naming_the_fix(image, caplog):
    out = run(image)
    assert np.array_equal(np.asarray(out), np.full((16, 20), 200))  # still exact: nothing is guessed
    assert "nearly black" in caplog.text and "uint8" in caplog.text


# [B, H, W, C] 1-4 pixels high has the shape of [B, C, H, W] 1-4 pixels wide: refused unless layout= says which.
@pytest.mark.parametrize("shape", [(1, 3, 9, 3), (2, 1, 7, 4), (1, 4, 4, 4), (3, 9, 3)], ids=str)
def test_a_tensor_whose_layout_is_ambiguous_is_refused_naming_both_readings(shape):
    with pytest.raises(ValueError) as caught:
        run(torch.rand(shape))
    message = str(caught.value)
    assert "ambiguous" in message and "layout='BHWC'" in message and "layout='BCHW'" in message
    assert "\n" not in message


@pytest.mark.parametrize("layout", ["BHWC", "BCHW"])
def test_an_ambiguous_shape_is_read_as_the_layout_given(layout):
    image = torch.rand(1, 3, 9, 3)  # BHWC: 3 rows of 9 RGB pixels; BCHW: 3 channels of 9 rows, 3 wide
    out = run(image, layout=layout)
    rows, cols = (1, 2) if layout == "BHWC" else (2, 3)
    expected = image.repeat_interleave(2, rows).repeat_interleave(2, cols)
    assert out.shape == expected.shape and torch.allclose(out, expected, atol=1e-6)


def test_a_comfyui_image_one_pixel_high_keeps_its_shape_when_said_so():
    image = torch.rand(1, 1, 16, 3)  # ComfyUI IMAGE [B, H, W, C], 1 px high
    assert run(image, layout="BHWC").shape == (1, 2, 32, 3)
