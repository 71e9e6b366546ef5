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
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """SwinV2 block with residual post-norm: x + norm1(attn(x)), then x + norm2(mlp(x)).

    Works on a [B, H, W, C] feature map; `shift` is 0 or window_size // 2.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws, s = self.window_size, self.shift
        shifted = torch.roll(x, (-s, -s), dims=(1, 2)) if s else x
        windows = window_partition(shifted, ws)
        mask = self.attn.shift_mask(h, w, s, x.dtype, x.device) if s else None
        attended = window_reverse(self.attn(windows, mask), ws, h, w)
        if s:
            attended = torch.roll(attended, (s, s), dims=(1, 2))
        x = x + self.norm1(attended)
        return x + self.norm2(self.mlp(x))


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, ws * ws, C], windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).transpose(2, 3)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`."""
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).transpose(2, 3)
    return x.reshape(-1, h, w, c)


class ResidualGroup(nn.Module):
    """The blocks of one stage; the official name is BasicLayer, its key prefix `residual_group`."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Proj1x1(nn.Module):
    """Holds the 1x1 `proj` convolution the official PatchEmbed applies (key `*.patch_embed.proj`)."""

    def __init__(self, dim: int, with_norm: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 1)
        self.norm = nn.LayerNorm(dim) if with_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, H, W, C]."""
        x = self.proj(x).permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a stage of blocks, a conv, a 1x1 projection, a skip."""

    def __init__(self, config: Swin2SRConfig, depth: int, num_heads: int) -> None:
        super().__init__()
        dim = config.embed_dim
        self.residual_group = ResidualGroup(dim, depth, num_heads, config.window_size, config.mlp_ratio)
        self.conv = residual_conv(dim, config.resi_connection)
        self.patch_embed = Proj1x1(dim, with_norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, H, W, C] -> [B, H, W, C]."""
        y = self.residual_group(x).permute(0, 3, 1, 2)
        return self.patch_embed(self.conv(y)) + x


class Swin2SR(nn.Module):
    """Swin2SR for super-resolution and compressed-input restoration; see the module docstring."""

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
        """Shallow features [B, C, H, W] -> deep features [B, C, H, W]."""
        y = self.patch_embed(x)
        for layer in self.layers:
            y = layer(y)
        return self.norm(y).permute(0, 3, 1, 2)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """conv_first, the Swin stages and the long skip."""
        x = self.conv_first(x)
        return self.conv_after_body(self.forward_features(x)) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in 0..1 -> [B, C, H*s, W*s], raw (unclamped)."""
        h, w = x.shape[-2:]
        ws = self.config.window_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        x = (x - self.mean) * self.config.img_range
        out = self.head(x, h, w)
        s = self.config.scale
        return out[..., : h * s, : w * s] / self.config.img_range + self.mean

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
