"""Fake comfy.utils: ProgressBar with the global hook (ComfyUI's main.py installs one that raises on Cancel), the
tiling helpers the built-in upscale node calls, and checkpoint loading."""

from __future__ import annotations

import math

import torch

PROGRESS_BAR_HOOK = None


def set_progress_bar_global_hook(function):
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total = total
        self.current = 0
        self.hook = PROGRESS_BAR_HOOK
        self.node_id = node_id

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        if self.hook is not None:
            self.hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value):
        self.update_absolute(self.current + value)


def load_torch_file(ckpt, safe_load=False, device=None):
    if str(ckpt).lower().endswith((".safetensors", ".sft")):
        import safetensors.torch

        return safetensors.torch.load_file(str(ckpt), device=str(device or "cpu"))
    return torch.load(ckpt, map_location=device or "cpu", weights_only=True)


def state_dict_prefix_replace(state_dict, replace_prefix):
    out = {}
    for key, value in state_dict.items():
        for old, new in replace_prefix.items():
            if key.startswith(old):
                key = new + key[len(old):]
        out[key] = value
    return out


def get_tiled_scale_steps(width, height, tile_x, tile_y, overlap):
    return math.ceil(height / (tile_y - overlap)) * math.ceil(width / (tile_x - overlap))


@torch.inference_mode()
def tiled_scale(samples, function, tile_x=64, tile_y=64, overlap=8, upscale_amount=4, out_channels=3,
                output_device="cpu", pbar=None):
    """Tiles of tile_x x tile_y every tile - overlap px, results averaged where they overlap, pbar.update(1) each."""
    batch, _, height, width = samples.shape
    out_h, out_w = round(height * upscale_amount), round(width * upscale_amount)
    output = torch.zeros((batch, out_channels, out_h, out_w), device=output_device)
    weight = torch.zeros_like(output)
    for b in range(batch):
        for y in range(0, height, tile_y - overlap):
            for x in range(0, width, tile_x - overlap):
                tile = samples[b : b + 1, :, y : y + tile_y, x : x + tile_x]
                result = function(tile).to(output_device)
                oy, ox = round(y * upscale_amount), round(x * upscale_amount)
                rh, rw = result.shape[-2:]
                output[b : b + 1, :, oy : oy + rh, ox : ox + rw] += result
                weight[b : b + 1, :, oy : oy + rh, ox : ox + rw] += 1
                if pbar is not None:
                    pbar.update(1)
    return output / weight
