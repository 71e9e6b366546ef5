"""Image files through `swin2sr upscale`: every mode and depth comes back in the closest one the output format
stores, upright, with its ICC profile, EXIF and DPI (scaled, so the print size stays the same).

The CLI's model is replaced by NearestX2, so the expected pixels are exact.
"""

from __future__ import annotations

import numpy as np
import png
import pytest
from input_fixtures import (
    upscale_file,
    deep_rgb,
    nearest2,
    pil_image,
    transparent_palette_image,
    write_png16,
    write_tiff16,
)
from PIL import Image, ImageCms

import swin2sr
from swin2sr.io import read_image, write_image


# (input mode, input suffix) -> (output mode, bits per channel as stored by the output file)
STILLS = {
    ("1", ".png"): ("1", 1),
    ("L", ".png"): ("L", 8),
    ("LA", ".png"): ("LA", 8),
    ("P", ".png"): ("RGB", 8),
    ("RGB", ".png"): ("RGB", 8),
    ("RGBA", ".png"): ("RGBA", 8),
    ("I;16", ".png"): ("I;16", 16),
    ("1", ".tif"): ("1", 1),
    ("L", ".tif"): ("L", 8),
    ("CMYK", ".tif"): ("CMYK", 8),
    ("RGBA", ".tif"): ("RGBA", 8),
    ("I;16", ".tif"): ("I;16", 16),
    ("F", ".tif"): ("F", 32),
    ("L", ".jpg"): ("L", 8),
    ("RGB", ".jpg"): ("RGB", 8),
    ("CMYK", ".jpg"): ("CMYK", 8),
    ("RGB", ".webp"): ("RGB", 8),
    ("RGBA", ".webp"): ("RGBA", 8),
    ("RGB", ".bmp"): ("RGB", 8),
    ("P", ".gif"): ("P", 8),
    ("L", ".gif"): ("P", 8),  # Pillow reads a gray GIF as a palette image
}


@pytest.mark.parametrize("mode,suffix", sorted(STILLS), ids=[f"{m}{s}" for m, s in sorted(STILLS)])
def test_a_still_file_comes_back_in_the_same_format_mode_and_depth(mode, suffix, nearest_model, tmp_path):
    source = tmp_path / f"in{suffix}"
    save = {"lossless": True} if suffix == ".webp" else {"quality": 100} if suffix == ".jpg" else {}
    pil_image(mode).save(source, **save)
    assert upscale_file(source, tmp_path / f"out{suffix}") == 0
    with Image.open(tmp_path / f"out{suffix}") as out:
        assert (out.mode, out.size) == (STILLS[mode, suffix][0], (20, 16))
    assert read_image(tmp_path / f"out{suffix}")[1].bits == STILLS[mode, suffix][1]


def test_a_float_tiff_keeps_its_values_instead_of_turning_black(nearest_model, tmp_path):
    image = pil_image("F")
    image.save(tmp_path / "in.tif")
    assert upscale_file(tmp_path / "in.tif", tmp_path / "out.tif") == 0
    out = np.asarray(Image.open(tmp_path / "out.tif"))
    np.testing.assert_allclose(out, nearest2(np.asarray(image)), atol=1e-6)


@pytest.mark.parametrize("channels", [3, 4, 2], ids=["rgb16", "rgba16", "la16"])
def test_16_bit_colour_png_keeps_all_16_bits(channels, nearest_model, tmp_path):
    values = deep_rgb(channels)
    write_png16(tmp_path / "in.png", values)
    assert upscale_file(tmp_path / "in.png", tmp_path / "out.png") == 0
    width, height, rows, meta = png.Reader(filename=str(tmp_path / "out.png")).asDirect()
    out = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, meta["planes"])
    assert (meta["bitdepth"], (width, height)) == (16, (20, 16))
    color = values[..., :1].repeat(3, axis=2) if channels == 2 else values[..., :3]
    assert np.array_equal(out[..., :3], nearest2(color))
    assert meta["alpha"] == (channels != 3)


def test_16_bit_gray_png_keeps_its_exact_values(nearest_model, tmp_path):
    image = pil_image("I;16")
    image.save(tmp_path / "in.png")
    assert upscale_file(tmp_path / "in.png", tmp_path / "out.png") == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), nearest2(np.asarray(image)))


@pytest.mark.parametrize(
    "source_kind,suffix,mode",
    [("rgb16", ".jpg", "RGB"), ("rgb16", ".webp", "RGB"), ("rgb16", ".tif", "RGB"), ("I;16", ".jpg", "L"),
     ("RGBA", ".jpg", "RGB"), ("LA", ".webp", "RGBA"), ("F", ".png", "I;16"), ("CMYK", ".png", "RGB")],
)  # fmt: skip
def test_a_format_that_cannot_store_the_depth_or_mode_gets_the_closest_one(source_kind, suffix, mode, tmp_path):
    if source_kind == "rgb16":
        source = write_png16(tmp_path / "in.png", deep_rgb(3))
    else:
        source = tmp_path / "in.tif"
        pil_image(source_kind).save(source)
    image, info = read_image(source)
    write_image(image, tmp_path / f"out{suffix}", info)
    assert Image.open(tmp_path / f"out{suffix}").mode == mode


def test_8_bit_output_of_16_bit_data_is_rounded_not_truncated(tmp_path):
    values = np.array([[0, 128, 65535, 32896]], np.uint16)  # 128/257 rounds to 0, 32896/257 = 128
    write_image(np.dstack([values] * 3), tmp_path / "o.jpg")
    image = Image.fromarray(values)
    write_image(image, tmp_path / "o.bmp")
    assert np.asarray(Image.open(tmp_path / "o.bmp")).tolist() == [[0, 0, 255, 128]]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_the_output_is_stored_upright(orientation, nearest_model, tmp_path):
    image = pil_image("RGB", (10, 6))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(tmp_path / "in.jpg", exif=exif.tobytes(), quality=100)
    upright = np.asarray(read_image(tmp_path / "in.jpg")[0])
    assert upscale_file(tmp_path / "in.jpg", tmp_path / "out.png") == 0
    with Image.open(tmp_path / "out.png") as out:
        assert out.getexif().get(0x0112, 1) == 1  # nothing left to rotate: the pixels are upright
        assert out.size == (upright.shape[1] * 2, upright.shape[0] * 2)
        assert out.size == ((12, 20) if orientation >= 5 else (20, 12))
        assert np.array_equal(np.asarray(out), nearest2(upright))


def test_a_rotated_16_bit_colour_png_is_turned_upright_too(tmp_path):
    values = deep_rgb(3, (6, 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    source = write_png16(tmp_path / "in.png", values)
    with_exif = tmp_path / "rotated.png"
    write_image(values, with_exif, swin2sr.io.ImageFileInfo("PNG", "RGB;16", (6, 4), exif=exif.tobytes()))
    image, info = read_image(with_exif)
    assert image.shape == (6, 4, 3) and np.array_equal(image, np.rot90(values, -1))
    assert read_image(source)[0].shape == (4, 6, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_the_icc_profile_is_kept(suffix, nearest_model, tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pil_image("RGB").save(tmp_path / f"in{suffix}", icc_profile=profile)
    assert upscale_file(tmp_path / f"in{suffix}", tmp_path / f"out{suffix}") == 0
    assert Image.open(tmp_path / f"out{suffix}").info.get("icc_profile") == profile


def test_the_icc_profile_of_a_16_bit_colour_png_is_kept(tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    write_image(deep_rgb(3), tmp_path / "o.png", swin2sr.io.ImageFileInfo("PNG", "RGB;16", (10, 8), icc_profile=profile))
    assert Image.open(tmp_path / "o.png").info["icc_profile"] == profile


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_dpi_is_scaled_with_the_image_so_the_print_size_stays(suffix, nearest_model, tmp_path):
    pil_image("RGB").save(tmp_path / f"in{suffix}", dpi=(300, 150))
    assert upscale_file(tmp_path / f"in{suffix}", tmp_path / f"out{suffix}") == 0
    assert tuple(round(d) for d in Image.open(tmp_path / f"out{suffix}").info["dpi"]) == (600, 300)


def test_dpi_of_a_16_bit_colour_png_is_scaled_too(tmp_path):
    write_image(deep_rgb(3), tmp_path / "o.png", swin2sr.io.ImageFileInfo("PNG", "RGB;16", (5, 4), dpi=(72, 72)))
    assert tuple(round(d) for d in Image.open(tmp_path / "o.png").info["dpi"]) == (144, 144)


def test_other_exif_tags_are_kept(nearest_model, tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    pil_image("RGB").save(tmp_path / "in.jpg", exif=exif.tobytes())
    assert upscale_file(tmp_path / "in.jpg", tmp_path / "out.jpg") == 0
    assert Image.open(tmp_path / "out.jpg").getexif()[0x010F] == "CameraMaker"


def test_a_transparent_palette_png_becomes_rgba_with_the_same_transparency(nearest_model, tmp_path):
    transparent_palette_image().save(tmp_path / "in.png")
    assert upscale_file(tmp_path / "in.png", tmp_path / "out.png") == 0
    assert Image.open(tmp_path / "out.png").mode == "RGBA"


def test_a_multi_page_tiff_warns_that_only_the_first_page_is_upscaled(tmp_path, caplog):
    first, second = pil_image("RGB"), pil_image("RGB", seed=1)
    first.save(tmp_path / "pages.tif", save_all=True, append_images=[second])
    image, _ = read_image(tmp_path / "pages.tif")
    assert np.array_equal(np.asarray(image), np.asarray(first))
    assert "holds 2 pages; only the first is upscaled" in caplog.text


def test_a_16_bit_colour_tiff_is_read_at_8_bits_with_a_warning_naming_the_fix(tmp_path, caplog):
    values = deep_rgb(3)
    image, _ = read_image(write_tiff16(tmp_path / "deep.tif", values))
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), (values >> 8).astype(np.uint8))
    assert "16-bit colour TIFF" in caplog.text and "16-bit PNG" in caplog.text


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_a_transparent_still_written_as_gif_keeps_on_off_transparency(mode, tmp_path):
    image = pil_image(mode)
    write_image(image, tmp_path / "o.gif")
    with Image.open(tmp_path / "o.gif") as gif:
        alpha = np.asarray(gif.convert("RGBA"))[..., 3]
    assert np.array_equal(alpha > 127, np.asarray(image)[..., -1] > 127)
