"""Seeded random Swin2SR checkpoints in the official key format, for tests and benchmarks.

Official weights cannot be downloaded here, so every test that needs "a real
checkpoint" builds one with the recipe of shared/research/benchmark-data.md §6:
the released configurations, all official buffers included, values drawn from
one seeded generator (byte-identical on regeneration).
"""

from __future__ import annotations

import math

import torch

from swin2sr.arch import Swin2SR, Swin2SRConfig
from swin2sr.attention import relative_coords_table, relative_position_index, shift_mask

_BIG = dict(embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6)

OFFICIAL_CONFIGS: dict[str, Swin2SRConfig] = {
    "classical_x2": Swin2SRConfig(**_BIG, upsampler="pixelshuffle", scale=2),
    "classical_x4": Swin2SRConfig(**_BIG, upsampler="pixelshuffle", scale=4),
    "compressed_x4_48": Swin2SRConfig(**_BIG, upsampler="pixelshuffle_aux", scale=4, img_size=48),
    "realworld_x4": Swin2SRConfig(**_BIG, upsampler="nearest+conv", scale=4),
    "lightweight_x2": Swin2SRConfig(
        embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4, upsampler="pixelshuffledirect", scale=2
    ),
}

# The grayscale JPEG-artifact-removal release (Swin2SR_Jpeg_dynamic.pth): window 7, pixel range 0..255, no upsampler.
JPEG_CONFIGS: dict[str, Swin2SRConfig] = {
    "jpeg_car_gray": Swin2SRConfig(
        **_BIG, window_size=7, img_size=126, in_chans=1, img_range=255.0, upsampler="", scale=1
    ),
}

# Small configurations with the same structure, for tests that need many forwards.
TINY_CONFIGS: dict[str, Swin2SRConfig] = {
    "tiny_x4": Swin2SRConfig(embed_dim=12, depths=(2,), num_heads=(2,), upsampler="pixelshuffle", scale=4),
    "tiny_x2": Swin2SRConfig(embed_dim=12, depths=(2,), num_heads=(2,), upsampler="pixelshuffledirect", scale=2),
}


# Official checkpoint entries the network derives itself (Swin2SR registers them non-persistent or not at all).
DERIVED_BUFFERS = ("relative_coords_table", "relative_position_index", "attn_mask")


def model_from_official(config: Swin2SRConfig, state: dict[str, torch.Tensor]) -> Swin2SR:
    """Our network with an official-format state dict loaded (strictly, derived buffers dropped), in eval mode."""
    model = Swin2SR(config)
    model.load_state_dict({k: v for k, v in state.items() if not k.endswith(DERIVED_BUFFERS)})
    return model.eval()


def random_official_state_dict(config: Swin2SRConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights for `config`, keyed and shaped exactly like the released .pth files (buffers included)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in Swin2SR(config).state_dict().items():
        state[name] = _random_like(name, tensor, gen)
    state.update(official_buffers(config))
    return state


def _random_like(name: str, tensor: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    shape = tensor.shape
    if name.endswith("logit_scale"):
        return torch.empty(shape).uniform_(math.log(5), math.log(150), generator=gen)
    if name.endswith(("q_bias", "v_bias")):
        return torch.randn(shape, generator=gen) * 0.1
    if tensor.ndim == 1 and _is_layernorm(name):
        if name.endswith("weight"):
            return 1 + (torch.rand(shape, generator=gen) * 0.2 - 0.1)
        return torch.randn(shape, generator=gen) * 0.02
    if tensor.ndim == 1:
        return torch.randn(shape, generator=gen) * 0.02
    fan_in = tensor[0].numel()
    return torch.randn(shape, generator=gen) / math.sqrt(fan_in)


def _is_layernorm(name: str) -> bool:
    return any(part in name for part in ("norm1.", "norm2.", "patch_embed.norm.")) or name.startswith("norm.")


def official_buffers(config: Swin2SRConfig) -> dict[str, torch.Tensor]:
    """The deterministic buffers the official code stores in every checkpoint."""
    ws = config.window_size
    buffers = {}
    for i, depth in enumerate(config.depths):
        for j in range(depth):
            prefix = f"layers.{i}.residual_group.blocks.{j}."
            buffers[prefix + "attn.relative_coords_table"] = relative_coords_table(ws)
            buffers[prefix + "attn.relative_position_index"] = relative_position_index(ws)
            if j % 2 == 1:
                buffers[prefix + "attn_mask"] = shift_mask(config.img_size, config.img_size, ws, ws // 2)
    return buffers
