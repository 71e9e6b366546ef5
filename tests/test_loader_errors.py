"""Foreign or broken files give a CheckpointError that says what the file is and what to do."""

from __future__ import annotations

import os

import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict
from safetensors.torch import save_file

import swin2sr
from swin2sr import CheckpointError

STATE = random_official_state_dict(TINY_CONFIGS["tiny_x4"])


def _error(source) -> str:
    with pytest.raises(CheckpointError) as caught:
        swin2sr.load_model(source)
    return str(caught.value)


def test_checkpoint_errors_are_value_errors():
    assert issubclass(CheckpointError, ValueError)


def test_a_real_esrgan_compact_file_is_named_and_pointed_to_load_any_model(realesrgan_compact_path):
    message = _error(realesrgan_compact_path)
    assert "Real-ESRGAN Compact" in message and "load_any_model" in message


def test_an_rrdbnet_state_dict_is_named():
    state = {"conv_first.weight": torch.zeros(64, 3, 3, 3), "body.0.rdb1.conv1.weight": torch.zeros(32, 64, 3, 3)}
    assert "RRDBNet" in _error(state)


def test_swinir_and_other_spandrel_architectures_are_named_by_spandrel():
    from spandrel.architectures.HAT import HAT
    from spandrel.architectures.SwinIR import SwinIR

    small = dict(embed_dim=12, depths=(2,), num_heads=(2,), upscale=2, window_size=8, img_size=16)
    assert "is a SwinIR (detected by spandrel) model" in _error(SwinIR(**small, upsampler="pixelshuffle").state_dict())
    assert "is a HAT (detected by spandrel) model" in _error(HAT(**small, squeeze_factor=4).state_dict())


def test_an_unrecognisable_state_dict_lists_its_first_keys():
    assert "first keys: encoder.weight" in _error({"encoder.weight": torch.zeros(2, 2)})


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "HTML page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", "Git LFS pointer"),
        (b'{"model_type": "swin2sr"}', "JSON text"),
        (b"just some notes\n", "text file"),
        (b"\x01\x02\x03\x00binary", "unknown binary format"),
        (b"", "empty"),
    ],
    ids=["html", "lfs-pointer", "json", "text", "binary", "empty"],
)
def test_non_checkpoint_files_are_described(tmp_path, content, expected):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    assert expected in _error(path)


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_truncated_files_are_reported_as_truncated(tmp_path, kind):
    path = tmp_path / "model.bin"
    if kind == "safetensors":
        save_file({k: v.contiguous() for k, v in STATE.items()}, path)
    else:
        torch.save(STATE, path, _use_new_zipfile_serialization=kind == "zip")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupted" in _error(path)


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"params": STATE, "payload": _RunsCode(str(marker))}, path)
    message = _error(path)
    assert "not loaded, for safety" in message and "posix.mkdir" in message and "safetensors" in message
    assert not marker.exists()


def test_an_empty_state_dict_is_reported():
    assert "contains no tensors" in _error({})
    assert "contains no tensors" in _error({"params": {}, "epoch": 3})


def test_a_partial_state_dict_lists_the_missing_keys():
    partial = {k: v for k, v in STATE.items() if not k.startswith("conv_last")}
    message = _error(partial)
    assert "2 missing (conv_last.weight, conv_last.bias)" in message


def test_a_state_dict_missing_a_key_needed_for_the_configuration_says_so():
    partial = {k: v for k, v in STATE.items() if "mlp.fc1" not in k}
    assert "lacks 'layers.0.residual_group.blocks.0.mlp.fc1.weight'" in _error(partial)


def test_mismatched_shapes_are_reported_by_name():
    state = dict(STATE, **{"conv_last.weight": torch.zeros(3, 64, 1, 1)})
    assert "1 wrong shape (conv_last.weight)" in _error(state)


def test_a_missing_path_is_reported():
    assert "no such file" in _error("/nonexistent/model.pth")
