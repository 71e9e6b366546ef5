"""Streaming writers (swin2sr.io.streaming): rows in, a PNG or TIFF file out, all or nothing."""

from __future__ import annotations

import os
import numpy as np
import png
import pytest
from PIL import Image, ImageCms

from swin2sr.io import streaming
from swin2sr.io.streaming import RasterSpec, write_rows

tifffile = pytest.importorskip("tifffile")

CHANNELS = (1, 2, 3, 4)


def photo_like(height: int, width: int, channels: int, dtype=np.uint8) -> np.ndarray:
    """Smooth ramps plus noise: filters matter, and every byte is checked."""
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    y, x = np.mgrid[:height, :width]
    ramp = (x * 7 + y * 3)[..., None] * (np.arange(channels) + 1)
    return ((ramp + rng.integers(0, 40, (height, width, channels))) % (top + 1)).astype(dtype)


def bands_of(image: np.ndarray, heights=(5, 1, 17)):
    """The image cut into bands of uneven heights, as the tiler hands them over."""
    top, i = 0, 0
    while top < image.shape[0]:
        yield image[top : top + heights[i % len(heights)]]
        top += heights[i % len(heights)]
        i += 1


def read_png(path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    return np.vstack([np.asarray(r) for r in rows]).reshape(height, width, info["planes"])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", CHANNELS)
def test_png_holds_exactly_the_rows_given(tmp_path, channels, dtype):
    image = photo_like(45, 37, channels, dtype)
    write_rows(tmp_path / "o.png", RasterSpec(37, 45, channels, dtype), bands_of(image))
    assert np.array_equal(read_png(tmp_path / "o.png"), image)


@pytest.mark.parametrize("channels", CHANNELS)
def test_8_bit_png_opens_in_pillow_as_the_matching_mode(tmp_path, channels):
    image = photo_like(20, 30, channels)
    write_rows(tmp_path / "o.png", RasterSpec(30, 20, channels, np.uint8), bands_of(image))
    with Image.open(tmp_path / "o.png") as back:
        assert back.mode == ("L", "LA", "RGB", "RGBA")[channels - 1]
        assert np.array_equal(np.asarray(back).reshape(image.shape), image)


def test_png_is_compressed_about_as_well_as_pillow_does(tmp_path):
    image = np.asarray(Image.fromarray(photo_like(16, 16, 3)).resize((256, 256), Image.BICUBIC))
    write_rows(tmp_path / "ours.png", RasterSpec(256, 256, 3, np.uint8), [image])
    Image.fromarray(image).save(tmp_path / "pillow.png", compress_level=6)
    assert (tmp_path / "ours.png").stat().st_size < 1.15 * (tmp_path / "pillow.png").stat().st_size


@pytest.mark.parametrize("tile", [16, None], ids=["tiled", "striped"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", CHANNELS)
def test_tiff_tiled_or_striped_holds_exactly_the_rows_given(tmp_path, channels, dtype, tile):
    image = photo_like(45, 37, channels, dtype)
    write_rows(tmp_path / "o.tif", RasterSpec(37, 45, channels, dtype), bands_of(image), tiff_tile=tile,
               tiff_rows_per_strip=8)  # fmt: skip
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        page = tif.pages[0]
        assert page.is_tiled == (tile is not None) and page.compression == 8  # deflate
        assert np.array_equal(page.asarray().reshape(image.shape), image)


def test_tiff_switches_to_bigtiff_beyond_the_classic_size_limit(tmp_path, monkeypatch):
    image = photo_like(8, 8, 3)
    write_rows(tmp_path / "small.tif", RasterSpec(8, 8, 3, np.uint8), [image])
    monkeypatch.setattr(streaming, "BIGTIFF_ABOVE", image.nbytes - 1)  # as if this image were over 4 GB
    write_rows(tmp_path / "big.tif", RasterSpec(8, 8, 3, np.uint8), [image])
    assert (tmp_path / "small.tif").read_bytes()[:4] == b"II*\x00"
    assert (tmp_path / "big.tif").read_bytes()[:4] == b"II+\x00"  # BigTIFF
    assert np.array_equal(tifffile.imread(tmp_path / "big.tif"), image)


def test_metadata_goes_into_the_png(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010E] = "a test image"  # ImageDescription
    spec = RasterSpec(4, 4, 3, np.uint8, dpi=(300.0, 300.0), icc_profile=icc, exif=exif.tobytes())
    write_rows(tmp_path / "o.png", spec, [photo_like(4, 4, 3)])
    with Image.open(tmp_path / "o.png") as back:
        assert back.info["icc_profile"] == icc
        assert [round(d) for d in back.info["dpi"]] == [300, 300]
        assert back.getexif()[0x010E] == "a test image"


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
@pytest.mark.parametrize("name", ["o.png", "o.tif"])
def test_an_error_inside_the_row_stream_leaves_no_file_and_keeps_the_old_one(tmp_path, name, error):
    (tmp_path / name).write_bytes(b"the previous output")

    def rows():
        yield photo_like(4, 8, 3)
        raise error("stopped while writing")

    with pytest.raises(error):
        write_rows(tmp_path / name, RasterSpec(8, 8, 3, np.uint8), rows())
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_bytes() == b"the previous output"


@pytest.mark.parametrize("rows", [7, 9])
def test_too_few_or_too_many_rows_are_an_error_and_no_file(tmp_path, rows):
    with pytest.raises(ValueError, match="rows"):
        write_rows(tmp_path / "o.png", RasterSpec(8, 8, 3, np.uint8), [photo_like(rows, 8, 3)])
    assert list(tmp_path.iterdir()) == []


def test_bands_of_the_wrong_shape_or_type_are_refused(tmp_path):
    with pytest.raises(ValueError, match="does not match"):
        write_rows(tmp_path / "o.png", RasterSpec(8, 8, 3, np.uint8), [photo_like(8, 8, 4)])
    with pytest.raises(ValueError, match="does not match"):
        write_rows(tmp_path / "o.png", RasterSpec(8, 8, 3, np.uint8), [photo_like(8, 8, 3, np.uint16)])


def test_only_png_and_tiff_stream():
    assert [streaming.streaming_format(n) for n in ("a.PNG", "a.tif", "a.tiff", "a.jpg", "a.webp")] == [
        "PNG", "TIFF", "TIFF", None, None
    ]  # fmt: skip


def test_a_finished_file_has_the_permissions_of_a_plainly_written_one(tmp_path):
    old = os.umask(0o027)
    try:
        with streaming.atomic_file(tmp_path / "out.bin") as f:
            f.write(b"done")
        (tmp_path / "plain.bin").write_bytes(b"done")
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "out.bin").stat().st_mode == (tmp_path / "plain.bin").stat().st_mode
