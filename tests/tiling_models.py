"""Models for the tiling tests: seeded tiny Swin2SR networks and a fault-injecting wrapper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swin2sr.arch import Swin2SR
from tests.checkpoints import TINY_CONFIGS, random_official_state_dict

DERIVED = ("relative_coords_table", "relative_position_index", "attn_mask")


# Weight-matrix gain of a "modest" random model.  Random weights amplify the difference a missing
# context makes far beyond a trained network: on Set5 (tile 64, overlap 16) the full-gain tiny model's
# tiled output is ~40 dB from its untiled output, the 0.7-gain one ~55 dB, the builtin-x4 checkpoint
# (mid-training) 80-95 dB.  Seam tests use 0.7: still harsher than a trained model.
MODEST_GAIN = 0.7


def tiny_model(name: str = "tiny_x4", seed: int = 0, gain: float = 1.0) -> Swin2SR:
    """A seeded random tiny Swin2SR in eval mode (official weights format, derived buffers dropped).

    `gain` scales every weight matrix (not the position-bias MLP), shortening the network's reach.
    """
    config = TINY_CONFIGS[name]
    model = Swin2SR(config).eval()
    state = {k: v for k, v in random_official_state_dict(config, seed).items() if not k.endswith(DERIVED)}
    for key, value in state.items():
        if value.ndim >= 2 and "cpb_mlp" not in key:
            state[key] = value * gain
    model.load_state_dict(state)
    return model.requires_grad_(False)


class NearestX4(nn.Module):
    """A purely local 'model' (nearest-neighbour x4): tiling must reproduce it exactly."""

    scale = 4
    tile_multiple = 8
    config = None

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="nearest")


class FaultyModel(nn.Module):
    """Wraps a model; raises torch.OutOfMemoryError on the chosen call numbers (1-based) or above a batch size.

    Records the input of every successful call, so tests can check that nothing was computed twice.
    """

    def __init__(self, model: nn.Module, fail_calls=(), max_batch: int | None = None, max_side: int | None = None):
        super().__init__()
        self.model = model
        self.scale, self.config = model.scale, getattr(model, "config", None)
        self.tile_multiple = getattr(model, "tile_multiple", None) or self.config.window_size
        self.fail_calls, self.max_batch, self.max_side = set(fail_calls), max_batch, max_side
        self.calls = 0
        self.done: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        too_big = (self.max_batch and x.shape[0] > self.max_batch) or (self.max_side and max(x.shape[-2:]) > self.max_side)
        if self.calls in self.fail_calls or too_big:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        self.done.extend(x.detach().clone())
        return self.model(x)


def seam_stats(model, image: torch.Tensor, tile: int = 64, overlap: int = 16) -> dict:
    """Tiled vs untiled output of one [1, 3, H, W] image: PSNR overall, in the blend zones and elsewhere.

    Blend zones are the output rows/columns within half a ramp of each ramp centre between neighbouring tiles.
    """
    import math

    import swin2sr
    from swin2sr.tiling import Grid, padded

    with torch.inference_mode():
        reference = model(image).clamp(0, 1)
    tiled = swin2sr.upscale(model, image, tile=tile, overlap=overlap, max_input_size=0)
    s, m = model.scale, model.config.window_size
    grid = Grid(padded(image.shape[-2], m), padded(image.shape[-1], m), tile, tile, min(overlap, tile // 3), s, m)
    zone = torch.zeros(reference.shape[-2:], dtype=torch.bool)
    half = grid.overlap * s / 2
    for starts, size, axis in ((grid.ys, grid.tile_h, 0), (grid.xs, grid.tile_w, 1)):
        coords = torch.arange(reference.shape[-2 + axis]) + 0.5
        for a, b in zip(starts, starts[1:]):
            near = (coords - (b + a + size) / 2 * s).abs() < half
            zone |= near[:, None] if axis == 0 else near[None, :]
    err = (tiled - reference) ** 2

    def psnr(mse: float) -> float:
        return 10 * math.log10(1 / mse) if mse > 0 else float("inf")

    border = err[..., zone].mean().item() if zone.any() else 0.0
    inner = err[..., ~zone].mean().item()
    return {"tiles": len(grid), "psnr": psnr(err.mean().item()), "border": psnr(border), "interior": psnr(inner)}
