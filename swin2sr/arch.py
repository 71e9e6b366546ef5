"""The Swin2SR network (Conde et al., 2022), with the official parameter names.

Every released checkpoint (ClassicalSR x2/x4, CompressedSR x4, RealworldSR x4,
Lightweight x2 and the window-7 JPEG models) loads into `Swin2SR` with
`strict=True` once the deterministic buffers are dropped (see
`loader.DERIVED_BUFFER_SUFFIXES`).  The configuration lives in a small frozen
dataclass so the loader can infer it from state-dict shapes and the memory
planner can reason about it without building a module.

`Swin2SR.forward` is the exact untiled network: reflect-pad to the window
multiple, run, crop back.  It returns the raw network output (no clamping) so
it can be compared with reference implementations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import engine, tuning
from .attention import WindowAttention

NUM_FEAT = 64  # width of every upsampler head, hard-coded in the official code
RGB_MEAN = (0.4488, 0.4371, 0.4040)
UPSAMPLERS = ("pixelshuffle", "pixelshuffle_aux", "pixelshuffledirect", "nearest+conv", "")


@dataclass(frozen=True)
class Swin2SRConfig:
    """Hyper-parameters of one Swin2SR network, as the official constructor takes them."""

    embed_dim: int = 180
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    window_size: int = 8
    img_size: int = 64
    mlp_ratio: float = 2.0
    upsampler: str = "pixelshuffle"
    img_range: float = 1.0
    in_chans: int = 3
    resi_connection: str = "1conv"
    scale: int = 4
    patch_norm: bool = True

    def __post_init__(self) -> None:
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"unknown Swin2SR upsampler {self.upsampler!r}; expected one of {UPSAMPLERS}")
        if len(self.depths) != len(self.num_heads):
            raise ValueError("depths and num_heads must have one entry per stage")
        if self.resi_connection not in ("1conv", "3conv"):
            raise ValueError(f"unknown resi_connection {self.resi_connection!r}")
        if self.upsampler == "nearest+conv" and self.scale != 4:
            raise ValueError("the nearest+conv (RealworldSR) head exists only for x4")


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1)


def residual_conv(dim: int, kind: str) -> nn.Module:
    """The convolution closing each stage and the body: one 3x3 ('1conv') or a bottleneck ('3conv')."""
    if kind == "1conv":
        return conv3x3(dim, dim)
    return nn.Sequential(
        conv3x3(dim, dim // 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
        nn.LeakyReLU(0.2, inplace=True),
        conv3x3(dim // 4, dim),
    )


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # kept for the module tree; `forward` fuses the (exact) GELU into fc1
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = engine.linear(x, self.fc1.weight, self.fc1.bias, gelu=True)
        return engine.linear(hidden, self.fc2.weight, self.fc2.bias)


class WindowLayout:
    """Where each token of a batch of H x W maps sits in the residual stream, per window shift.

    The reference implementation rolls, partitions and reverses the whole map
    in every block.  Here the stream is a [B*H*W, C] token matrix kept in
    *window order* -- the tokens of each window contiguous -- so attention,
    norms and MLP all run on plain row ranges, and moving from an unshifted to a
    shifted block is a single row gather.  Shifted windows are sorted by which
    of the four shift-mask patterns they need, so every chunk of windows shares
    one [heads, N, N] bias table and no per-window mask is ever materialised.
    """

    def __init__(self, batch: int, height: int, width: int, window_size: int, chunk_tokens: int, device) -> None:
        self.window_tokens = window_size**2
        self.chunk_windows = max(1, chunk_tokens // self.window_tokens)
        self._orders: dict[int, torch.Tensor] = {}
        self._segments: dict[int, list[tuple[int, int, int]]] = {}
        self._gathers: dict[tuple, torch.Tensor] = {}
        for shift in {0, window_size // 2}:
            order, counts = _window_order(batch, height, width, window_size, shift)
            self._orders[shift] = order.to(device)
            bounds = torch.cumsum(torch.tensor([0] + counts), 0).tolist()
            self._segments[shift] = [(bounds[i], bounds[i + 1], i) for i in range(len(counts)) if counts[i]]

    def gather_index(self, src: int | None, dst: int | None) -> torch.Tensor:
        """Rows to take from a stream in `src` order to get `dst` order (None = row-major map order)."""
        if (src, dst) not in self._gathers:
            dst_order = self._orders[dst] if dst is not None else None
            if src is None:
                index = dst_order
            else:
                inverse = torch.empty_like(self._orders[src])
                inverse[self._orders[src]] = torch.arange(len(inverse), device=inverse.device)
                index = inverse if dst_order is None else inverse[dst_order]
            self._gathers[(src, dst)] = index
        return self._gathers[(src, dst)]

    def chunks(self, shift: int) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
        """Chunks of at most `chunk_tokens` tokens: (first token, end token, runs).

        `runs` lists (first window, end window, bias-table index) inside the
        chunk; only shifted chunks that cross a mask-pattern boundary have more
        than one run, so a chunk is one pass of big kernels whatever the shift.
        """
        n, step = self.window_tokens, self.chunk_windows
        segments = self._segments[shift]
        chunks = []
        for start in range(0, segments[-1][1], step):
            stop = min(start + step, segments[-1][1])
            runs = [(max(a, start) - start, min(b, stop) - start, t) for a, b, t in segments if a < stop and b > start]
            chunks.append((start * n, stop * n, runs))
        return chunks


def _window_order(batch: int, h: int, w: int, ws: int, shift: int) -> tuple[torch.Tensor, list[int]]:
    """Map-order token indices listed window by window (after a cyclic shift), windows grouped by mask pattern.

    Returns the order and the number of windows per pattern (`shift_mask_patterns` numbering).
    """
    grid = torch.arange(batch * h * w).view(batch, h, w)
    if shift:
        grid = torch.roll(grid, (-shift, -shift), dims=(1, 2))
    windows = grid.view(batch, h // ws, ws, w // ws, ws).transpose(2, 3).reshape(batch, h // ws, w // ws, -1)
    if not shift:
        return windows.reshape(-1), [windows.shape[0] * windows.shape[1] * windows.shape[2]]
    last_row = (torch.arange(h // ws) == h // ws - 1).view(-1, 1)
    last_col = (torch.arange(w // ws) == w // ws - 1).view(1, -1)
    pattern = (2 * last_row + last_col).expand(batch, -1, -1).reshape(-1)
    by_pattern = torch.argsort(pattern, stable=True)
    counts = torch.bincount(pattern, minlength=4).tolist()
    return windows.reshape(-1, ws * ws)[by_pattern].reshape(-1), counts


class SwinTransformerBlock(nn.Module):
    """SwinV2 block with residual post-norm: x + norm1(attn(x)), then x + norm2(mlp(x)).

    Works on the residual stream [tokens, C] in this block's window order (see
    `WindowLayout`), one chunk of whole windows at a time: the chunk's
    intermediates (qkv, scores, MLP hidden) stay a few MB however large the
    image, and without autograd the chunk is updated in place.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, layout: WindowLayout) -> torch.Tensor:
        tables = self.attn.bias_tables(self.shift, torch.promote_types(x.dtype, torch.float32))
        chunks = [self._update(x[a:b], tables, runs) for a, b, runs in layout.chunks(self.shift)]
        return torch.cat(chunks) if torch.is_grad_enabled() else x

    def _update(self, x: torch.Tensor, tables: torch.Tensor, runs: list[tuple[int, int, int]]) -> torch.Tensor:
        x = engine.add_(x, self.norm1(self.attn(x, tables, runs)))
        return engine.add_(x, self.norm2(self.mlp(x)))


class ResidualGroup(nn.Module):
    """The blocks of one stage; the official name is BasicLayer, its key prefix `residual_group`."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor, layout: WindowLayout) -> torch.Tensor:
        """[B, H, W, C] -> [B, H, W, C]; one row gather between blocks instead of roll + partition + reverse."""
        shape = x.shape
        stream, order = x.reshape(-1, shape[-1]), None
        for block in self.blocks:
            stream = torch.index_select(stream, 0, layout.gather_index(order, block.shift))
            stream, order = block(stream, layout), block.shift
        return torch.index_select(stream, 0, layout.gather_index(order, None)).view(shape)


class Proj1x1(nn.Module):
    """Holds the 1x1 `proj` convolution the official PatchEmbed applies (key `*.patch_embed.proj`).

    On a channels-last map a 1x1 convolution is a linear layer over the tokens, so it runs as one.
    """

    def __init__(self, dim: int, with_norm: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 1)
        self.norm = nn.LayerNorm(dim) if with_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, H, W, C] -> [B, H, W, C]."""
        x = engine.linear(x.contiguous(), self.proj.weight, self.proj.bias)
        return self.norm(x) if self.norm is not None else x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a stage of blocks, a conv, a 1x1 projection, a skip."""

    def __init__(self, config: Swin2SRConfig, depth: int, num_heads: int) -> None:
        super().__init__()
        dim = config.embed_dim
        self.residual_group = ResidualGroup(dim, depth, num_heads, config.window_size, config.mlp_ratio)
        self.conv = residual_conv(dim, config.resi_connection)
        self.patch_embed = Proj1x1(dim, with_norm=False)

    def forward(self, x: torch.Tensor, layout: WindowLayout) -> torch.Tensor:
        """[B, H, W, C] -> [B, H, W, C]."""
        y = self.conv(engine.conv_layout(self.residual_group(x, layout).permute(0, 3, 1, 2)))
        return engine.add_(self.patch_embed(y.permute(0, 2, 3, 1)), x)


class Swin2SR(nn.Module):
    """Swin2SR for super-resolution and compressed-input restoration; see the module docstring.

    Between convolutions the feature map is a [B, H, W, C] tensor (token
    rows); its NCHW view (`permute(0, 3, 1, 2)`) is a channels-last tensor,
    which half-precision convolutions take as is (`engine.conv_layout`).
    """

    # Tokens per attention/MLP chunk; None: the device's choice (`swin2sr.tuning`, 8192 on the CPU).  Chunks
    # bound the intermediates while keeping the number of kernel launches per block low.  The planner sets it
    # for a run on CUDA (bounded by its memory budget); tests set it to exercise chunk boundaries.
    chunk_tokens: int | None = None

    def __init__(self, config: Swin2SRConfig) -> None:
        super().__init__()
        self.config = config
        self.variant = "Swin2SR"
        c, in_ch = config.embed_dim, config.in_chans
        mean = RGB_MEAN if in_ch == 3 else (0.0,) * in_ch
        self.register_buffer("mean", torch.tensor(mean).view(1, in_ch, 1, 1), persistent=False)

        self.conv_first = conv3x3(in_ch, c)
        self.patch_embed = Proj1x1(c, with_norm=config.patch_norm)
        self.layers = nn.ModuleList(RSTB(config, d, h) for d, h in zip(config.depths, config.num_heads))
        self.norm = nn.LayerNorm(c)
        self.conv_after_body = residual_conv(c, config.resi_connection)
        self._build_head(config)

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def tile_multiple(self) -> int:
        """Tile sides that are multiples of this need no padding inside the network."""
        return self.config.window_size

    def _build_head(self, config: Swin2SRConfig) -> None:
        c, s, out_ch = config.embed_dim, config.scale, config.in_chans
        if config.upsampler in ("pixelshuffle", "pixelshuffle_aux"):
            self.conv_before_upsample = nn.Sequential(conv3x3(c, NUM_FEAT), nn.LeakyReLU(inplace=True))
            self.upsample = pixelshuffle_stack(s, NUM_FEAT)
            self.conv_last = conv3x3(NUM_FEAT, out_ch)
            if config.upsampler == "pixelshuffle_aux":
                self.conv_bicubic = conv3x3(out_ch, NUM_FEAT)
                self.conv_aux = conv3x3(NUM_FEAT, out_ch)
                self.conv_after_aux = nn.Sequential(conv3x3(out_ch, NUM_FEAT), nn.LeakyReLU(inplace=True))
        elif config.upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(conv3x3(c, out_ch * s * s), nn.PixelShuffle(s))
        elif config.upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(conv3x3(c, NUM_FEAT), nn.LeakyReLU(inplace=True))
            self.conv_up1 = conv3x3(NUM_FEAT, NUM_FEAT)
            self.conv_up2 = conv3x3(NUM_FEAT, NUM_FEAT)
            self.conv_hr = conv3x3(NUM_FEAT, NUM_FEAT)
            self.conv_last = conv3x3(NUM_FEAT, out_ch)
        else:
            self.conv_last = conv3x3(c, out_ch)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Shallow features [B, C, H, W] (channels-last) -> deep features [B, C, H, W] (channels-last)."""
        b, _, h, w = x.shape
        chunk = self.chunk_tokens or tuning.chunk_tokens(x.device.type)
        layout = WindowLayout(b, h, w, self.config.window_size, chunk, x.device)
        y = self.patch_embed(x.permute(0, 2, 3, 1))
        for layer in self.layers:
            y = layer(y, layout)
        return self.norm(y).permute(0, 3, 1, 2)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """conv_first, the Swin stages and the long skip."""
        x = self.conv_first(engine.conv_layout(x))
        return engine.add_(self.conv_after_body(engine.conv_layout(self.forward_features(x))), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in 0..1 -> [B, C, H*s, W*s], raw (unclamped), in the model's dtype."""
        engine.begin_forward_pass()
        x = x.to(self.mean.dtype)
        h, w = x.shape[-2:]
        ws = self.config.window_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        x = (x - self.mean) * self.config.img_range
        out = self.head(x, h, w)
        s = self.config.scale
        out = out[..., : h * s, : w * s] / self.config.img_range + self.mean
        return out.contiguous()

    def head(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Normalised padded input -> normalised output of the configured upsampler."""
        up = self.config.upsampler
        s = self.config.scale
        if up == "pixelshuffle":
            return self.conv_last(self.upsample(self.conv_before_upsample(self.body(x))))
        if up == "pixelshuffle_aux":
            bicubic = F.interpolate(x, size=(h * s, w * s), mode="bicubic", align_corners=False)
            bicubic = self.conv_bicubic(bicubic)
            aux = self.conv_aux(self.conv_before_upsample(self.body(x)))
            y = self.upsample(self.conv_after_aux(aux))[..., : h * s, : w * s]
            return self.conv_last(y + bicubic)
        if up == "pixelshuffledirect":
            return self.upsample(self.body(x))
        if up == "nearest+conv":
            y = self.conv_before_upsample(self.body(x))
            y = F.leaky_relu(self.conv_up1(F.interpolate(y, scale_factor=2, mode="nearest")), 0.2)
            y = F.leaky_relu(self.conv_up2(F.interpolate(y, scale_factor=2, mode="nearest")), 0.2)
            return self.conv_last(F.leaky_relu(self.conv_hr(y), 0.2))
        return x + self.conv_last(self.body(x))


def pixelshuffle_stack(scale: int, num_feat: int) -> nn.Sequential:
    """Conv + PixelShuffle(2) per factor of two, or one Conv + PixelShuffle(3) (official `Upsample`)."""
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            layers += [conv3x3(num_feat, 4 * num_feat), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [conv3x3(num_feat, 9 * num_feat), nn.PixelShuffle(3)]
    else:
        raise ValueError(f"scale {scale} is not supported by the pixelshuffle head (use 2^n or 3)")
    return nn.Sequential(*layers)
