"""The configuration and the variant name come from tensor shapes and key names, never from file names."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from checkpoints import OFFICIAL_CONFIGS, TINY_CONFIGS, random_official_state_dict

import swin2sr
from swin2sr.arch import Swin2SRConfig
from swin2sr.loader import read_checkpoint, save_model
from swin2sr.variants import infer_config

RELEASE_NAMES = {
    "classical_x2": "ClassicalSR x2",
    "classical_x4": "ClassicalSR x4",
    "compressed_x4_48": "CompressedSR x4",
    "realworld_x4": "RealworldSR x4",
    "lightweight_x2": "Lightweight x2",
}
JPEG_CONFIG = Swin2SRConfig(
    embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=7, img_size=126,
    upsampler="", img_range=255.0, in_chans=1, scale=1,
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(OFFICIAL_CONFIGS))
def test_each_released_configuration_is_recognised_from_its_shapes(name):
    checkpoint = read_checkpoint(random_official_state_dict(OFFICIAL_CONFIGS[name]))
    assert checkpoint.config == OFFICIAL_CONFIGS[name]
    assert checkpoint.variant == RELEASE_NAMES[name]


def test_compressed_sr_training_size_comes_from_the_stored_shift_mask():
    checkpoint = read_checkpoint(random_official_state_dict(OFFICIAL_CONFIGS["compressed_x4_48"]))
    assert checkpoint.config.img_size == 48
    assert checkpoint.config.upsampler == "pixelshuffle_aux"


def test_window_7_models_are_jpeg_artifact_removal_with_img_range_255():
    checkpoint = read_checkpoint(random_official_state_dict(JPEG_CONFIG))
    assert checkpoint.config == JPEG_CONFIG
    assert checkpoint.variant == "JPEG CAR (grayscale)"


def test_the_file_name_does_not_influence_detection(tmp_path):
    path = tmp_path / "Swin2SR_ClassicalSR_X4_64.pth"  # a misleading name for lightweight x2 weights
    torch.save(random_official_state_dict(OFFICIAL_CONFIGS["lightweight_x2"]), path)
    model = swin2sr.load_model(path)
    assert model.variant == "Lightweight x2"
    assert model.scale == 2


def test_custom_shapes_get_an_honest_description_instead_of_a_release_name():
    assert read_checkpoint(random_official_state_dict(TINY_CONFIGS["tiny_x4"])).variant == (
        "Swin2SR x4 (custom: embed 12, 1x2 blocks)"
    )
    uneven = Swin2SRConfig(embed_dim=12, depths=(2, 4), num_heads=(2, 3), upsampler="pixelshuffle", scale=2)
    assert read_checkpoint(random_official_state_dict(uneven)).variant == "Swin2SR x2 (custom: embed 12, 2+4 blocks)"


@pytest.mark.parametrize(
    "changes",
    [
        dict(upsampler="pixelshuffle", scale=3),
        dict(upsampler="pixelshuffle", scale=8),
        dict(upsampler="pixelshuffledirect", scale=3),
        dict(upsampler="nearest+conv", scale=4, resi_connection="3conv"),
        dict(upsampler="pixelshuffle_aux", scale=2, mlp_ratio=4.0),
        dict(upsampler="", scale=1, in_chans=1, patch_norm=False),
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_every_structural_option_is_inferred(changes):
    config = dataclasses.replace(TINY_CONFIGS["tiny_x4"], **changes)
    assert read_checkpoint(random_official_state_dict(config)).config == config


def test_files_without_buffers_use_the_release_window_and_training_size():
    state = {k: v for k, v in random_official_state_dict(TINY_CONFIGS["tiny_x2"]).items() if "attn_mask" not in k}
    state = {k: v for k, v in state.items() if not k.endswith(("relative_position_index", "relative_coords_table"))}
    config = infer_config(state)
    assert (config.window_size, config.img_size, config.img_range) == (8, 64, 1.0)


def test_save_model_records_what_the_weights_cannot_tell(tmp_path):
    config = dataclasses.replace(TINY_CONFIGS["tiny_x2"], window_size=7, img_size=28, upsampler="", scale=1)
    model = swin2sr.load_model(random_official_state_dict(config))
    save_model(model, tmp_path / "jpeg.safetensors")
    reloaded = read_checkpoint(tmp_path / "jpeg.safetensors")
    assert reloaded.config == dataclasses.replace(config, img_range=255.0)


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_files_we_save_are_read_by_spandrel_as_the_same_network(name, tmp_path):
    spandrel = pytest.importorskip("spandrel")
    model = swin2sr.load_model(random_official_state_dict(TINY_CONFIGS[name]))
    save_model(model, tmp_path / "model.safetensors")
    descriptor = spandrel.ModelLoader().load_from_file(tmp_path / "model.safetensors").eval()
    x = torch.rand(1, 3, 19, 26, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(descriptor.model(x), model(x), atol=1e-5, rtol=0)
    assert read_checkpoint(tmp_path / "model.safetensors").config == model.config
