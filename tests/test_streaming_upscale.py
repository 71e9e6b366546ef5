"""`swin2sr.upscale_file`: the tiler's rows streamed into PNG / TIFF, the same pixels as the in-memory path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from tiling_models import NearestX4, tiny_model

import swin2sr
from swin2sr import tiling, upscale_files
from swin2sr.io import images, read_image, write_image

OPTIONS = dict(tile=16, overlap=4, max_input_size=0)  # a grid of several rows and columns of tiles


@pytest.fixture(scope="module")
def model_x4():
    return tiny_model("tiny_x4")


def photo(path, mode: str, size=(37, 29)):
    rng = np.random.default_rng(len(mode))
    base = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    image = Image.fromarray(base, "RGBA").resize(size, Image.BICUBIC).convert(mode)
    image.save(path)
    return path


def in_memory(model, src, dst, **options):
    """The old path: upscale the whole image, then write it (what the CLI did before streaming)."""
    image, info = read_image(src)
    write_image(swin2sr.upscale(model, image, **options), dst, info)
    return np.asarray(Image.open(dst))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
def test_the_streamed_file_has_the_pixels_of_the_in_memory_path(model_x4, tmp_path, mode, suffix):
    src = photo(tmp_path / "in.png", mode)
    report = swin2sr.upscale_file(model_x4, src, tmp_path / f"streamed{suffix}", **OPTIONS)
    expected = in_memory(model_x4, src, tmp_path / f"memory{suffix}", **OPTIONS)
    with Image.open(tmp_path / f"streamed{suffix}") as streamed:
        assert (report.streamed, streamed.mode, streamed.size) == (True, mode, (37 * 4, 29 * 4))
        assert np.array_equal(np.asarray(streamed), expected)


def test_16_bit_colour_streams_at_16_bits_with_the_in_memory_pixels(model_x4, tmp_path):
    rng = np.random.default_rng(0)
    deep = np.asarray(Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).resize((30, 22), Image.BICUBIC))
    deep = deep.astype(np.uint16) * 257 + rng.integers(0, 257, deep.shape).astype(np.uint16)
    write_image(deep, tmp_path / "deep.png")
    swin2sr.upscale_file(model_x4, tmp_path / "deep.png", tmp_path / "streamed.png", **OPTIONS)
    image, _ = read_image(tmp_path / "deep.png")
    expected = swin2sr.upscale(model_x4, image, **OPTIONS)
    streamed, _ = read_image(tmp_path / "streamed.png")
    assert streamed.dtype == np.uint16 and np.array_equal(streamed, expected)


def test_x2_and_a_pre_scaled_input_keep_their_alpha_identical(tmp_path):
    src = photo(tmp_path / "in.png", "RGBA", size=(41, 23))
    model = tiny_model("tiny_x2")
    for options in (OPTIONS, dict(tile=16, overlap=4, max_input_size=32)):  # 41x23 -> 32x18 first, then x2
        swin2sr.upscale_file(model, src, tmp_path / "streamed.png", **options)
        expected = in_memory(model, src, tmp_path / "memory.png", **options)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "streamed.png")), expected)


def test_formats_that_cannot_stream_are_written_from_memory(model_x4, tmp_path):
    src = photo(tmp_path / "in.png", "RGB")
    report = swin2sr.upscale_file(model_x4, src, tmp_path / "out.webp", **OPTIONS)
    assert not report.streamed and report.upscale.tile == 16
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.webp")), in_memory(model_x4, src, tmp_path / "m.webp",
                                                                                     **OPTIONS))  # fmt: skip


def test_the_report_says_what_was_written(model_x4, tmp_path):
    report = swin2sr.upscale_file(model_x4, photo(tmp_path / "in.png", "RGB"), tmp_path / "out.png", **OPTIONS)
    assert (report.size, report.streamed, report.file_bytes) == ((148, 116), True, (tmp_path / "out.png").stat().st_size)
    assert report.upscale.tiles_per_batch >= 1 and report.peak_rss_bytes > 0
    assert str(report).startswith(f"streamed {tmp_path / 'out.png'} (148x116")


def test_icc_profile_and_dpi_travel_with_the_streamed_file(model_x4, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(tmp_path / "in.png", icc_profile=icc, dpi=(72, 72))
    swin2sr.upscale_file(model_x4, tmp_path / "in.png", tmp_path / "out.png", **OPTIONS)
    with Image.open(tmp_path / "out.png") as out:
        assert out.info["icc_profile"] == icc and [round(d) for d in out.info["dpi"]] == [288, 288]


@pytest.mark.parametrize("stop", ["ctrl-c", "cancel"])
def test_stopping_mid_stream_leaves_no_partial_file(model_x4, tmp_path, stop):
    src = photo(tmp_path / "in.png", "RGB", size=(90, 70))  # 30 tiles: two batches at most 16 tiles each
    (tmp_path / "out.png").write_bytes(b"the previous output")

    def progress(done, total):
        if stop == "ctrl-c":
            raise KeyboardInterrupt

    expected = KeyboardInterrupt if stop == "ctrl-c" else swin2sr.UpscaleCancelled
    calls = iter(range(100))
    with pytest.raises(expected):
        swin2sr.upscale_file(model_x4, src, tmp_path / "out.png", progress=progress,
                             cancel=lambda: next(calls) > 0 and stop == "cancel", **OPTIONS)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"the previous output"


def float_held_by_the_canvas(monkeypatch) -> list[int]:
    """Records the float32 elements the strip canvas holds after every tile."""
    held: list[int] = []
    add = tiling.StripCanvas.add

    def recording(self, y, x, values):
        add(self, y, x, values)
        held.append(sum(block.numel() for block in self.blocks))

    monkeypatch.setattr(tiling.StripCanvas, "add", recording)
    return held


def test_the_blending_memory_does_not_grow_with_the_image_height(monkeypatch):
    runner = tiling.TileRunner(NearestX4(), 4, 8, 32, 2, 8)
    peaks, band_rows = [], []
    for height in (96, 384):
        held = float_held_by_the_canvas(monkeypatch)
        bands = list(runner.rows(torch.rand(1, 3, height, 160), torch.uint8))
        assert sum(b.shape[1] for b in bands) == height * 4 and {b.dtype for b in bands} == {torch.uint8}
        peaks.append(max(held))
        band_rows.append(max(b.shape[1] for b in bands))
    assert peaks[0] == peaks[1] and band_rows[0] == band_rows[1] <= 32 * 4
    assert peaks[1] < 0.25 * 3 * (384 * 4) * (160 * 4)  # far below one float copy of the output


def test_8_bit_input_kept_as_uint8_gives_the_float_inputs_tiles():
    pixels = torch.randint(0, 256, (1, 3, 40, 48), dtype=torch.uint8)
    runner = tiling.TileRunner(tiny_model("tiny_x4"), 4, 8, 16, 3, 4)
    from_uint8 = torch.cat(list(runner.rows(pixels, torch.uint8)), dim=1)
    from_float = torch.cat(list(runner.rows(pixels.float() / 255.0, torch.uint8)), dim=1)
    assert torch.equal(from_uint8, from_float)


@pytest.mark.parametrize("scale", [2, 4])
def test_alpha_rows_of_a_band_equal_the_full_resize(scale):
    alpha = torch.rand(1, 1, 23, 17)
    full = images.resize_alpha(alpha, 23 * scale, 17 * scale)
    rows = upscale_files.AlphaRows(alpha, 23 * scale, 17 * scale)
    bands = [rows.rows(top, min(top + 13, 23 * scale)) for top in range(0, 23 * scale, 13)]
    assert torch.equal(torch.cat(bands, dim=-2), full)


def test_without_tifffile_tiff_is_written_from_memory_with_the_same_pixels(model_x4, tmp_path, monkeypatch):
    from swin2sr.io import streaming

    src = photo(tmp_path / "in.png", "RGB")
    monkeypatch.setitem(__import__("sys").modules, "tifffile", None)  # as if the tiff extra were not installed
    streaming._has_tifffile.cache_clear()
    try:
        report = swin2sr.upscale_file(model_x4, src, tmp_path / "out.tif", **OPTIONS)
    finally:
        streaming._has_tifffile.cache_clear()
    assert not report.streamed
    with Image.open(tmp_path / "out.tif") as out:
        assert np.array_equal(np.asarray(out), in_memory(model_x4, src, tmp_path / "m.png", **OPTIONS))
