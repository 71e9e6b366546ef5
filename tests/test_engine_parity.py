"""The fast network computes what the official Swin2SR computes.

Reference: spandrel's Swin2SR (line-for-line the official code), on seeded
random checkpoints in the official key format.  Random weights amplify
rounding (spandrel's own float32 and float64 outputs differ by ~1e-4 on
ClassicalSR and ~2e-3 on Lightweight), so:

* float64: both implementations agree to 1e-6;
* float32: our error against spandrel's float32 output is at most 4x
  spandrel's own float32-vs-float64 difference on the same input.

Sizes cover inputs that need padding (37x53, 12x20), inputs that do not
(64x64 is exactly img_size**2, where spandrel uses its stored mask; 80x48; 16x16),
and the window-7 JPEG model.
"""

from __future__ import annotations

import functools

import pytest
import torch

from tests.checkpoints import JPEG_CONFIGS, OFFICIAL_CONFIGS, model_from_official, random_official_state_dict

spandrel = pytest.importorskip("spandrel", reason="spandrel is the reference implementation (test-only dependency)")

ALL_CONFIGS = {**OFFICIAL_CONFIGS, **JPEG_CONFIGS}
FP64_TOLERANCE = 1e-6
FP32_ERROR_FACTOR = 4.0

# The 180-channel models run at small sizes to keep the suite fast: a 2x3-window map already holds every
# shift-mask pattern (interior, last row, last column, corner).
CASES = [
    ("classical_x4", 12, 20),
    ("classical_x2", 16, 16),
    ("compressed_x4_48", 12, 20),
    ("realworld_x4", 16, 24),
    ("lightweight_x2", 37, 53),
    ("lightweight_x2", 64, 64),
    ("lightweight_x2", 80, 48),
    ("jpeg_car_gray", 12, 17),
]


@functools.cache
def state_dict(name: str) -> dict[str, torch.Tensor]:
    return random_official_state_dict(ALL_CONFIGS[name], seed=0)


@functools.cache
def reference_model(name: str) -> torch.nn.Module:
    """spandrel's network module itself: its descriptor's __call__ would clamp the output."""
    return spandrel.ModelLoader().load_from_state_dict(state_dict(name)).model.eval()


def test_spandrel_reads_the_test_checkpoints_as_we_configure_them():
    for name, config in ALL_CONFIGS.items():
        net = reference_model(name)
        assert (net.embed_dim, net.window_size, net.upscale, net.upsampler, net.img_range) == (
            config.embed_dim,
            config.window_size,
            config.scale,
            config.upsampler,
            config.img_range,
        ), name


def test_every_released_configuration_is_covered():
    assert {name for name, _, _ in CASES} == set(ALL_CONFIGS)


@pytest.mark.parametrize(("name", "height", "width"), CASES)
def test_matches_spandrel_in_float64_and_float32(name, height, width):
    config = ALL_CONFIGS[name]
    ours, ref = model_from_official(config, state_dict(name)), reference_model(name)
    x = torch.rand(1, config.in_chans, height, width, generator=torch.Generator().manual_seed(height * width))
    outputs = {}
    with torch.no_grad():
        for dtype in (torch.float64, torch.float32):
            outputs["ours", dtype] = ours.to(dtype)(x.to(dtype)).double()
            outputs["ref", dtype] = ref.to(dtype)(x.to(dtype)).double()

    assert outputs["ours", torch.float64].shape == (1, config.in_chans, height * config.scale, width * config.scale)
    fp64_diff = (outputs["ours", torch.float64] - outputs["ref", torch.float64]).abs().max().item()
    assert fp64_diff <= FP64_TOLERANCE
    ref_rounding = (outputs["ref", torch.float32] - outputs["ref", torch.float64]).abs().max().item()
    fp32_diff = (outputs["ours", torch.float32] - outputs["ref", torch.float32]).abs().max().item()
    assert fp32_diff <= FP32_ERROR_FACTOR * ref_rounding, (fp32_diff, ref_rounding)
