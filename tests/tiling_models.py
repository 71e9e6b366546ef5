"""Models for the tiling tests: seeded tiny Swin2SR networks and a fault-injecting wrapper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from swin2sr.arch import Swin2SR
from tests.checkpoints import TINY_CONFIGS, random_official_state_dict

DERIVED = ("relative_coords_table", "relative_position_index", "attn_mask")


def tiny_model(name: str = "tiny_x4", seed: int = 0) -> Swin2SR:
    """A seeded random tiny Swin2SR in eval mode (official weights format, derived buffers dropped)."""
    config = TINY_CONFIGS[name]
    model = Swin2SR(config).eval()
    state = {k: v for k, v in random_official_state_dict(config, seed).items() if not k.endswith(DERIVED)}
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
