"""Every CLI failure is one line on stderr and exit code 1, found before the model loads where it can be.

`--debug` (or SWIN2SR_DEBUG=1) gives the traceback instead.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from input_fixtures import pil_image
from PIL import Image

import swin2sr
from swin2sr import cli


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    pil_image("RGB").save(path)
    return path


@pytest.fixture
def no_model(monkeypatch):
    """The failure must come before the model is loaded: loading it fails the test."""
    monkeypatch.setattr(swin2sr, "load_any_model", lambda *a, **k: pytest.fail("the model was loaded"))


def one_line_error(capsys, argv: list[str]) -> str:
    assert cli.main(["-q", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("swin2sr ")
    return err


def _bomb_png(path):
    """A valid PNG header claiming 30000 x 30000 pixels (900 MP, past Pillow's bomb limit)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.png", ["no such file"]),
    # a folder is a folder run: -o must name a folder; the message names the input folder and the fix
    "folder": (lambda d: d, ["input ", "in is a folder", "out.png looks like a file name", "give a folder such as -o ",
                             "/out"]),
    "text": (lambda d: (d / "notes.png").write_text("hello") and d / "notes.png", ["not a readable image"]),
    "empty": (lambda d: (d / "empty.png").write_bytes(b"") or d / "empty.png", ["not a readable image"]),
    "truncated": (lambda d: _truncated(d), ["not a readable image"]),
    "bomb": (lambda d: _bomb_png(d / "bomb.png"), ["too large to open safely", "shrink"]),
}


def _truncated(folder):
    pil_image("RGB", (64, 64)).save(folder / "full.png")
    data = (folder / "full.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    return folder / "cut.png"


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_a_bad_input_file_is_one_line(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(swin2sr, "load_any_model", lambda *a, **k: pytest.fail("the model was loaded"))
    folder = tmp_path / "in"
    folder.mkdir()
    source = BAD_INPUTS[name][0](folder)
    err = one_line_error(capsys, ["upscale", str(source), "-o", str(tmp_path / "out.png")])
    assert all(word in err for word in BAD_INPUTS[name][1]), err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "output,words",
    [("out.xyz", ["cannot tell the output format", ".png"]),
     ("photo.png/x.png", ["is a file, not a folder"]), ("photo.png/sub/x.png", ["is a file, not a folder"])],
    ids=["unknown-suffix", "under-a-file", "deep-under-a-file"],  # an existing folder: see test_jobs_folders
)  # fmt: skip
def test_a_bad_output_path_is_found_before_the_model_loads(output, words, photo, tmp_path, capsys, no_model):
    (tmp_path / "outdir").mkdir()
    err = one_line_error(capsys, ["upscale", str(photo), "-o", str(tmp_path / output)])
    assert all(word in err for word in words), err


def test_an_unwritable_output_folder_is_found_before_the_model_loads(photo, tmp_path, capsys, no_model, monkeypatch):
    import os

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # tests run as root, where chmod does not bite
    err = one_line_error(capsys, ["upscale", str(photo), "-o", str(tmp_path / "out.png")])
    assert "permission denied" in err


DEVICES = [("gpu", ["--device", "not a device name"]), ("cuda:x", ["not a device name"])]
if not torch.cuda.is_available():
    DEVICES += [("cuda", ["'cuda' is not available", "cpu"]), ("cuda:3", ["'cuda:3' is not available"])]
if not torch.backends.mps.is_available():
    DEVICES.append(("mps", ["'mps' is not available"]))


@pytest.mark.parametrize("device,words", DEVICES, ids=[d for d, _ in DEVICES])
def test_a_device_that_does_not_exist_is_found_before_the_model_loads(device, words, photo, tmp_path, capsys, no_model):
    err = one_line_error(capsys, ["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--device", device])
    assert all(word in err for word in words), err


@pytest.mark.parametrize(
    "flags,words",
    [(["--overlap", "-1"], ["--overlap", "0 or more"]), (["--tile", "big"], ["--tile", "'big'"]),
     (["--tile", "0"], ["--tile", "positive"]), (["--max-input-size", "-5"], ["--max-input-size", "0 or more"]),
     (["--precision", "fp64"], ["--precision", "invalid choice"]), (["--overlap", "2.5"], ["--overlap", "whole number"])],
    ids=["overlap", "tile-word", "tile-zero", "max-input", "precision", "overlap-fraction"],
)  # fmt: skip
def test_a_bad_number_is_refused_by_the_argument_parser(flags, words, photo, tmp_path, capsys, no_model):
    with pytest.raises(SystemExit) as exited:
        cli.main(["upscale", str(photo), "-o", str(tmp_path / "o.png"), *flags])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and all(word in err for word in words) and "Traceback" not in err


@pytest.mark.parametrize(
    "model,words",
    [("missing.pth", ["no such file"]), ("builtin-x9", ["unknown embedded model", "builtin-x4"]),
     ("notes.pth", ["text file"])],
)  # fmt: skip
def test_a_bad_model_is_one_line(model, words, photo, tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("not weights")
    err = one_line_error(capsys, ["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--model", str(tmp_path / model)
                                  if model.endswith(".pth") else model])  # fmt: skip
    assert all(word in err for word in words), err


@pytest.mark.parametrize(
    "extra,words",
    [(["--boxes", "1,2,3"], ["--boxes", "x0,y0,x1,y1"]), (["--boxes", "a,b,c,d"], ["--boxes"])],
    ids=["three-numbers", "not-numbers"],
)  # fmt: skip
def test_faces_boxes_that_cannot_be_parsed_are_refused(extra, words, photo, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["faces", str(photo), "-o", str(tmp_path / "o.png"), *extra])
    err = capsys.readouterr().err
    assert all(word in err for word in words) and "Traceback" not in err


def test_faces_with_a_box_outside_the_image_is_one_line(photo, tmp_path, capsys, nearest_model):
    err = one_line_error(capsys, ["faces", str(photo), "-o", str(tmp_path / "o.png"), "--boxes", "100,100,120,120"])
    assert "outside the 10x8 image" in err


def test_faces_with_a_base_of_the_wrong_size_is_one_line_and_writes_nothing(photo, tmp_path, capsys, nearest_model):
    Image.fromarray(np.zeros((40, 10, 3), np.uint8)).save(tmp_path / "base.png")
    err = one_line_error(capsys, ["faces", str(photo), "-o", str(tmp_path / "o.png"), "--base", str(tmp_path / "base.png"),
                                  "--boxes", "1,1,5,5"])  # fmt: skip
    assert "base is 10x40 but the input is 10x8" in err and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command", ["faces", "two-stage"])
def test_pipeline_commands_check_the_output_before_loading_models(command, photo, tmp_path, capsys, no_model):
    extra = ["--stage1", "x.pth"] if command == "two-stage" else []
    err = one_line_error(capsys, [command, str(photo), "-o", str(tmp_path / "o.webm"), *extra])
    assert "cannot tell the output format" in err


def test_an_unexpected_error_is_still_one_line_naming_its_kind(photo, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("kernel exploded\nwith details")

    monkeypatch.setattr(swin2sr, "load_any_model", broken)
    err = one_line_error(capsys, ["upscale", str(photo), "-o", str(tmp_path / "o.png")])
    assert "unexpected RuntimeError: kernel exploded with details" in err and "--debug" in err


def test_debug_gives_the_traceback(photo, tmp_path, no_model):
    with pytest.raises(ValueError, match="cannot tell the output format"):
        cli.main(["--debug", "upscale", str(photo), "-o", str(tmp_path / "o.xyz")])


def test_the_debug_environment_variable_gives_the_traceback(photo, tmp_path, no_model, monkeypatch):
    monkeypatch.setenv("SWIN2SR_DEBUG", "1")
    with pytest.raises(ValueError, match="cannot tell the output format"):
        cli.main(["upscale", str(photo), "-o", str(tmp_path / "o.xyz")])


def test_a_model_that_gives_nan_is_reported_and_nothing_is_written(photo, tmp_path, capsys, monkeypatch):
    from input_fixtures import NearestX2

    class Broken(NearestX2):
        def forward(self, x):
            return torch.full_like(torch.nn.functional.interpolate(x, scale_factor=2), float("nan"))

    monkeypatch.setattr(swin2sr, "load_any_model", lambda *a, **k: Broken())
    err = one_line_error(capsys, ["upscale", str(photo), "-o", str(tmp_path / "o.png")])
    assert "NaN or infinite" in err and "nothing was written" in err and not (tmp_path / "o.png").exists()


def test_faces_checks_the_mask_output_path_before_loading_models(photo, tmp_path, capsys, no_model):
    err = one_line_error(capsys, ["faces", str(photo), "-o", str(tmp_path / "o.png"), "--mask-output", str(tmp_path / "m.xyz")])
    assert "cannot tell the output format from 'm.xyz'" in err
