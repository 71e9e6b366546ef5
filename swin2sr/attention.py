"""SwinV2 window attention: scaled cosine attention with a continuous position bias.

Official parameter names (`qkv`, `q_bias`, `v_bias`, `logit_scale`, `cpb_mlp`,
`proj`).  What the official code recomputes in every block on every call is
cached here: the CPB-MLP bias (input-independent in eval mode) and the shift
masks (a few patterns per padded size), both kept in the compute dtype so half
precision works at every input size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOGIT_SCALE_MAX = math.log(1.0 / 0.01)
MASK_VALUE = -100.0  # the official shift-mask value (not -inf)


def relative_coords_table(ws: int) -> torch.Tensor:
    """Log-spaced relative coordinates, [1, 2ws-1, 2ws-1, 2], fed to the CPB MLP."""
    coords = torch.arange(-(ws - 1), ws, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(coords, coords, indexing="ij")).permute(1, 2, 0).unsqueeze(0)
    table = table / (ws - 1) * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def relative_position_index(ws: int) -> torch.Tensor:
    """For each (query, key) token pair of a window, the row of the coords table, [ws*ws, ws*ws]."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """Additive mask [nW, ws*ws, ws*ws] that keeps shifted windows from mixing regions that were not adjacent."""
    region = torch.zeros(h, w)
    bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for i, hs in enumerate(bands):
        for j, wsl in enumerate(bands):
            region[hs, wsl] = i * 3 + j
    windows = region.view(h // ws, ws, w // ws, ws).transpose(1, 2).reshape(-1, ws * ws)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.where(diff != 0, MASK_VALUE, 0.0)


class WindowAttention(nn.Module):
    """Multi-head cosine self-attention inside non-overlapping windows of ws*ws tokens."""

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("relative_coords_table", relative_coords_table(window_size), persistent=False)
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self._cache: dict[tuple, torch.Tensor] = {}
        self._register_load_state_dict_pre_hook(self._drop_cache)

    def _drop_cache(self, *args, **kwargs) -> None:
        self._cache.clear()

    def train(self, mode: bool = True) -> "WindowAttention":
        self._cache.clear()
        return super().train(mode)

    def _cached(self, key: tuple, build) -> torch.Tensor:
        """Memoise input-independent tensors in eval mode; rebuild them every call while training."""
        if self.training or torch.is_grad_enabled():
            return build()
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def position_bias(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """16 * sigmoid(CPB-MLP(coords)), [heads, N, N]."""

        def build() -> torch.Tensor:
            table = self.cpb_mlp(self.relative_coords_table.to(self.cpb_mlp[0].weight.dtype))
            n = self.window_size**2
            bias = table.view(-1, self.num_heads)[self.relative_position_index.view(-1)]
            return (16 * torch.sigmoid(bias.view(n, n, -1).permute(2, 0, 1))).to(device, dtype).contiguous()

        return self._cached(("bias", dtype, device), build)

    def shift_mask(self, h: int, w: int, shift: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The shift mask for an h x w map, [nW, 1, N, N] in the compute dtype."""
        return self._cached(
            ("mask", h, w, shift, dtype, device),
            lambda: shift_mask(h, w, self.window_size, shift).unsqueeze(1).to(device, dtype),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B*nW, N, C]; mask: [nW, 1, N, N] or None."""
        bw, n, c = x.shape
        heads = self.num_heads
        qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, qkv_bias).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()
        q = F.normalize(q, dim=-1) * scale
        k = F.normalize(k, dim=-1)
        attn = q @ k.transpose(-2, -1)
        attn = attn + self.position_bias(attn.dtype, attn.device)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(-1, nw, heads, n, n) + mask).view(bw, heads, n, n)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(out)
