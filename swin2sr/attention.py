"""SwinV2 window attention: scaled cosine attention with a continuous position bias.

Official parameter names (`qkv`, `q_bias`, `v_bias`, `logit_scale`, `cpb_mlp`,
`proj`).  What the official code recomputes in every block on every call is
cached here as small tables that do not depend on the input size: the CPB-MLP
bias (input-independent in eval mode) and the four shift-mask patterns (every
shifted window is an interior, last-column, last-row or corner window), both in
float32 (float64 for a float64 model) so half precision works at every input size.  While training
the tables are rebuilt on every call so gradients reach `cpb_mlp`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import engine

# The official clamp is torch.log(torch.tensor(100.)), a float32 value; using it exactly keeps float64 parity.
LOGIT_SCALE_MAX = float(torch.tensor(100.0).log())
MASK_VALUE = -100.0  # the official shift-mask value (not -inf)
NORM_EPS = 1e-12  # F.normalize's default


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


def shift_mask_patterns(ws: int, shift: int) -> torch.Tensor:
    """The 4 distinct shift masks, [4, N, N], indexed by 2 * (last window row) + (last window column).

    Only windows touching the bottom or right edge mix wrapped-around regions,
    so a 2x2-window map already shows every pattern any map size produces.
    """
    return shift_mask(2 * ws, 2 * ws, ws, shift)


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
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self._tables: dict[tuple, tuple[tuple, torch.Tensor]] = {}

    def position_bias(self) -> torch.Tensor:
        """16 * sigmoid(CPB-MLP(coords)), [heads, N, N], in at least fp32 (the MLP sees tiny coordinate steps)."""
        w0, b0, w2 = self.cpb_mlp[0].weight, self.cpb_mlp[0].bias, self.cpb_mlp[2].weight
        dtype = torch.promote_types(w0.dtype, torch.float32)
        coords = relative_coords_table(self.window_size).to(w0.device, dtype)
        hidden = F.relu(F.linear(coords, w0.to(dtype), b0.to(dtype)))
        table = F.linear(hidden, w2.to(dtype)).view(-1, self.num_heads)
        n = self.window_size**2
        bias = table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        return 16 * torch.sigmoid(bias)

    def bias_tables(self, shift: int, dtype: torch.dtype) -> torch.Tensor:
        """Position bias plus each shift-mask pattern, [1 or 4, heads, N, N] in `dtype` (at least float32).

        Cached while autograd is off; the cache entry is keyed by the CPB
        weights' `engine.weight_version`, so loading or editing weights refreshes it.
        """
        params = (self.cpb_mlp[0].weight, self.cpb_mlp[0].bias, self.cpb_mlp[2].weight)
        key = (shift, dtype, params[0].device)
        version = tuple(engine.weight_version(p) for p in params)
        cached = self._tables.get(key)
        if cached is not None and cached[0] == version and not torch.is_grad_enabled():
            return cached[1]
        bias = self.position_bias().unsqueeze(0)
        if shift:
            bias = bias + shift_mask_patterns(self.window_size, shift).to(bias).unsqueeze(1)
        bias = bias.to(dtype).contiguous()
        if not torch.is_grad_enabled():
            self._tables[key] = (version, bias)
        return bias

    def forward(self, x: torch.Tensor, tables: torch.Tensor, runs: list[tuple[int, int, int]]) -> torch.Tensor:
        """x: [W * N, C], the tokens of W whole windows.

        For each (a, b, t) in `runs`, windows a..b-1 take the bias table `tables[t]` [heads, N, N].
        """
        tokens, c = x.shape
        n, heads = self.window_size**2, self.num_heads
        qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = engine.linear(x, self.qkv.weight, qkv_bias)
        qkv = qkv.view(tokens // n, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k = self.cosine_qk(qkv[:2]).unbind(0)
        out = engine.window_attention(q, k, qkv[2], tables, runs)
        return engine.linear(out.transpose(1, 2).reshape(tokens, c), self.proj.weight, self.proj.bias)

    def cosine_qk(self, qk: torch.Tensor) -> torch.Tensor:
        """Unit-normalise q and k [2, W, heads, N, d] in one pass, with the clamped exp(logit_scale) folded into q."""
        return engine.maybe_compiled(cosine_qk, qk.device.type)(qk, self.logit_scale)


def cosine_qk(qk: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """See `WindowAttention.cosine_qk` (a plain function, so one compiled version serves every block)."""
    inv_norm = torch.linalg.vector_norm(qk, dim=-1, keepdim=True).clamp_min(NORM_EPS).reciprocal()
    scale = torch.clamp(logit_scale, max=LOGIT_SCALE_MAX).exp().to(qk.dtype)
    factor = inv_norm * torch.stack((scale, torch.ones_like(scale)))[:, None]
    return qk * factor
