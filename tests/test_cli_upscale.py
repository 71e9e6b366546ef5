"""`swin2sr upscale INPUT -o OUTPUT`: image files in, lossless files out, never a half-written file."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict
from PIL import Image

from swin2sr import cli, upscale_files
from swin2sr.io import image_files


@pytest.fixture
def tiny_model_path(tmp_path):
    path = tmp_path / "tiny_x2.pth"
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x2"]), path)
    return path


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(path)
    return path


class FakeUpscaleFile:
    """Stands in for swin2sr.upscale_file so CLI tests stay fast: one direct forward, records what the CLI passed."""

    def __call__(self, model, src, dst, **options):
        self.options = options
        image, info = image_files.read_image(src)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
        options["progress"](1, 2)
        with torch.no_grad():
            y = model(x).clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
        options["progress"](2, 2)
        image_files.write_image(Image.fromarray(y), dst, info)
        return types.SimpleNamespace(upscale="tile 16, fake report")


@pytest.fixture
def fake_upscale(monkeypatch):
    fake = FakeUpscaleFile()
    monkeypatch.setattr(upscale_files, "upscale_file", fake)
    return fake


def test_upscale_writes_a_lossless_png_of_the_scaled_size(photo, tiny_model_path, fake_upscale, tmp_path, capsys):
    out = tmp_path / "photo_x2.png"
    assert cli.main(["upscale", str(photo), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    with Image.open(out) as result:
        assert (result.format, result.size, result.mode) == ("PNG", (20, 24), "RGB")
    assert "2/2," in capsys.readouterr().err  # the progress bar


def test_upscale_passes_the_processing_flags_to_swin2sr_upscale_file(photo, tiny_model_path, fake_upscale, tmp_path):
    args = ["upscale", str(photo), "-o", str(tmp_path / "o.webp"), "--model", str(tiny_model_path)]
    assert cli.main(args + ["--tile", "64", "--overlap", "8", "--precision", "fp32", "--device", "cpu"]) == 0
    assert fake_upscale.options | {"progress": None} == dict(
        tile=64, overlap=8, precision="fp32", max_input_size=0, device="cpu", progress=None, frames_per_batch=4
    )
    with Image.open(tmp_path / "o.webp") as result:
        assert result.format == "WEBP"


def test_png_is_the_format_when_the_output_name_has_no_suffix():
    assert image_files.output_format_for(cli.Path("upscaled")).name == "PNG"


def test_an_automatic_tile_leaves_the_input_size_limit_to_the_library():
    args = cli.build_parser().parse_args(["upscale", "in.png", "-o", "out.png"])
    assert (args.model, cli.processing_options(args)["tile"], cli.processing_options(args)["max_input_size"]) == (
        "builtin-x4", "auto", None
    )


def test_an_unknown_output_suffix_fails_before_any_work(photo, tmp_path, capsys):
    assert cli.main(["upscale", str(photo), "-o", str(tmp_path / "out.xyz"), "--model", "unused"]) == 1
    assert "cannot tell the output format" in capsys.readouterr().err


def test_a_foreign_model_error_is_one_line(photo, realesrgan_compact_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "spandrel", None)
    assert cli.main(["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--model", str(realesrgan_compact_path)])
    err = capsys.readouterr().err
    assert "pip install spandrel" in err and "Traceback" not in err


def test_ctrl_c_leaves_no_output_and_no_temporary_file(photo, tiny_model_path, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):  # Ctrl-C while the first rows are being written
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.TextProgressBar, "__call__", interrupted)
    out = tmp_path / "out" / "photo_x2.png"
    assert cli.main(["upscale", str(photo), "-o", str(out), "--model", str(tiny_model_path), "--tile", "8"]) == 130
    assert list(out.parent.iterdir()) == []
    assert "interrupted; nothing was written" in capsys.readouterr().err


def test_16_bit_grayscale_input_keeps_its_full_precision(tmp_path):
    values = np.array([[0, 300], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    image, info = image_files.read_image(tmp_path / "deep.png")
    assert (image.mode, info.bits) == ("I;16", 16) and np.array_equal(np.asarray(image), values)


def test_16_bit_output_stays_16_bit_in_png_and_becomes_8_bit_in_jpeg(tmp_path):
    values = np.array([[0, 257 * 3], [40000, 65535]], dtype=np.uint16)
    image_files.write_image(values, tmp_path / "a.png")
    image_files.write_image(values, tmp_path / "a.jpg")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), values)
    assert Image.open(tmp_path / "a.jpg").mode == "L"


def test_alpha_is_kept_where_the_format_can_store_it():
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 128))
    assert image_files.storable_image(rgba, image_files.OUTPUT_FORMATS[".webp"]).mode == "RGBA"
    assert image_files.storable_image(rgba, image_files.OUTPUT_FORMATS[".jpg"]).mode == "RGB"
    assert image_files.storable_image(Image.new("LA", (4, 4)), image_files.OUTPUT_FORMATS[".webp"]).mode == "RGBA"


def test_the_progress_bar_draws_only_for_work_in_several_steps():
    stream = io.StringIO()
    bar = cli.TextProgressBar(stream, label="x")
    bar(1, 1)
    bar.close()
    assert stream.getvalue() == ""
    bar(1, 4)
    bar(4, 4)
    bar.close()
    assert "[#######-----------------------] 1/4," in stream.getvalue()
    assert stream.getvalue().endswith("4/4, 0 s\n")


def test_upscale_end_to_end_with_the_real_tiling(photo, tiny_model_path, tmp_path):
    out = tmp_path / "photo_x2.png"
    assert cli.main(["upscale", str(photo), "-o", str(out), "--model", str(tiny_model_path), "--tile", "8"]) == 0
    assert Image.open(out).size == (20, 24)


def test_quiet_mode_draws_no_progress_bar(photo, tiny_model_path, fake_upscale, tmp_path, capsys):
    out = tmp_path / "photo_x2.png"
    assert cli.main(["-q", "upscale", str(photo), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    assert capsys.readouterr().err == ""


def test_sigterm_mid_write_ends_like_ctrl_c_and_leaves_no_partial_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "out" / "x2.png"
    command = [sys.executable, "-m", "swin2sr", "upscale", str(tmp_path / "in.png"), "-o", str(out),
               "--model", "builtin-x2", "--tile", "32", "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob("*.part")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the upscale ended before its output was being written"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert list(out.parent.iterdir()) == []
