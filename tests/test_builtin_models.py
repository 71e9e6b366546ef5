"""The embedded models load by name, keep the sizes right, and really upscale: they beat bicubic on a held-out photo.

The held-out image (tests/data/chelsea_crop.png, CC0) was used neither for training nor for checkpoint selection.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import swin2sr
from swin2sr.loader import spandrel_buffers
from swin2sr.metrics import psnr_y

HELD_OUT = Path(__file__).parent / "data" / "chelsea_crop.png"


@pytest.fixture(scope="module", params=[4, 2], ids=["x4", "x2"])
def builtin(request):
    torch.set_num_threads(1)
    return swin2sr.load_model(f"builtin-x{request.param}"), request.param


def to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def test_loads_with_the_promised_scale_in_eval_mode(builtin):
    model, scale = builtin
    assert model.scale == scale
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_output_is_input_times_scale_also_for_sizes_off_the_window_grid(builtin):
    model, scale = builtin
    with torch.no_grad():
        out = model(torch.rand(1, 3, 13, 21))
    assert out.shape == (1, 3, 13 * scale, 21 * scale)


def test_beats_bicubic_on_a_held_out_photo(builtin):
    model, scale = builtin
    hr = Image.open(HELD_OUT).convert("RGB")
    lr = hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
    bicubic = np.asarray(lr.resize(hr.size, Image.BICUBIC))
    x = torch.from_numpy(np.array(lr)).permute(2, 0, 1).unsqueeze(0).float() / 255
    with torch.no_grad():
        ours = to_uint8(model(x))
    gain = psnr_y(ours, np.asarray(hr), scale) - psnr_y(bicubic, np.asarray(hr), scale)
    # The shipped weights gain +0.72 dB (x4) and +0.88 dB (x2) here; fur is hard, so the bar is 0.5 dB.
    assert gain > 0.5, f"builtin-x{scale} gains only {gain:.2f} dB over bicubic"


@pytest.mark.parametrize("name", ["builtin-x4", "builtin-x2"])
def test_weights_file_records_its_recipe_and_is_small(name):
    path = swin2sr.builtin_model_files()[name]
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert path.stat().st_size < 1_300_000
    assert {"config", "recipe", "train_images", "validation_images", "seed", "steps", "validation_psnr_y"} <= set(meta)
    assert json.loads(meta["config"])["scale"] == int(name[-1])
    assert "layers.0.residual_group.blocks.0.attn.qkv.weight" in keys  # official key names
    model = swin2sr.load_model(name)
    assert keys == set(model.state_dict()) | set(spandrel_buffers(model.config))  # weights + what spandrel needs
    assert model.config.img_size == 48  # the training patch, from the metadata (the stored mask is smaller)


def test_spandrel_opens_the_embedded_files_as_the_same_network(builtin):
    """What ComfyUI's built-in Load Upscale Model does with a file in models/upscale_models."""
    spandrel = pytest.importorskip("spandrel")
    model, scale = builtin
    descriptor = spandrel.ModelLoader().load_from_file(swin2sr.builtin_model_files()[f"builtin-x{scale}"]).eval()
    assert (descriptor.architecture.id, descriptor.scale, descriptor.purpose) == ("Swin2SR", scale, "SR")
    for size in ((27, 35), (16, 16)):  # any size, and the one the stored shift mask was made for
        x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(descriptor.model(x), model(x), atol=2e-5, rtol=0)


def test_the_embedded_files_sit_alone_in_a_folder_a_host_can_list():
    files = swin2sr.builtin_model_files()
    folder = files["builtin-x4"].parent
    assert set(folder.iterdir()) == set(files.values())
