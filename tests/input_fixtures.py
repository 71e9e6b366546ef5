"""Generated inputs for the bad-input suite (tests/test_inputs_*.py): no stored files.

`NearestX2` is an exact, purely local stand-in for a model, so a test can state the exact expected
output (nearest-neighbour x2 of what the model was given).  The image builders make deterministic
pixels in every Pillow mode, 16-bit colour PNGs (through pypng, as Pillow cannot write them) and
animations with chosen durations, loop and disposal.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from swin2sr import cli

SIZE = (10, 8)  # (width, height) of the generated stills


class NearestX2(nn.Module):
    """Nearest-neighbour x2 as a model: the exact output of every input is known."""

    scale = 2
    tile_multiple = 8
    config = None
    variant = "nearest-neighbour x2 (test stand-in)"

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return F.interpolate(x, scale_factor=2, mode="nearest")


def nearest2(array: np.ndarray) -> np.ndarray:
    """The expected NearestX2 result of an HW or HWC array."""
    return array.repeat(2, axis=0).repeat(2, axis=1)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def pil_image(mode: str, size: tuple[int, int] = SIZE, seed: int = 0) -> Image.Image:
    """Deterministic random pixels in any Pillow mode (floats in 0..1, 16-bit over the whole range)."""
    w, h = size
    r = rng(seed)
    if mode.startswith("I;16"):
        order = {"I;16B": ">u2"}.get(mode, "<u2")
        return Image.frombytes(mode, size, r.integers(0, 65536, (h, w)).astype(order).tobytes())
    if mode == "I":
        return Image.fromarray(r.integers(0, 65536, (h, w)).astype(np.int32))
    if mode == "F":
        return Image.fromarray(r.random((h, w)).astype(np.float32))
    if mode == "1":
        return Image.fromarray(r.integers(0, 2, (h, w)).astype(bool))
    if mode == "P":
        image = Image.fromarray(r.integers(0, 16, (h, w)).astype(np.uint8), "L").convert("P")
        image.putpalette(r.integers(0, 256, 16 * 3).astype(np.uint8).tobytes())
        return image
    if mode == "PA":
        return Image.merge("PA", (pil_image("P", size, seed), Image.fromarray(r.integers(0, 256, (h, w)).astype(np.uint8))))
    bands = Image.getmodebands(mode)
    return Image.frombytes(mode, size, r.integers(0, 256, (h, w, bands)).astype(np.uint8).tobytes())


def transparent_palette_image(size: tuple[int, int] = SIZE) -> Image.Image:
    """A P image whose index 0 is transparent (a GIF or PNG with tRNS)."""
    image = pil_image("P", size)
    image.info["transparency"] = 0
    return image


def write_png16(path: Path, array: np.ndarray) -> Path:
    """A 16-bit PNG of a uint16 [H, W, C] array (C = 2, 3 or 4), written by pypng."""
    import png

    h, w, c = array.shape
    writer = png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=16)
    with open(path, "wb") as f:
        writer.write(f, array.reshape(h, w * c))
    return path


def write_tiff16(path: Path, array: np.ndarray) -> Path:
    """An uncompressed 16-bit colour TIFF of a uint16 [H, W, C] array, written by hand (Pillow cannot)."""
    h, w, c = array.shape
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, c, 0), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0),
            (277, 3, 1, c), (278, 3, 1, h), (279, 4, 1, array.nbytes), (284, 3, 1, 1)]  # fmt: skip
    bits_at = 8 + 2 + 12 * len(tags) + 4
    values = {258: bits_at, 273: bits_at + 2 * c}  # offsets of the bits-per-sample list and of the pixels
    entries = b"".join(
        struct.pack("<HHII", tag, kind, count, values.get(tag, value)) if kind == 4 or count > 1
        else struct.pack("<HHIHxx", tag, kind, count, value)
        for tag, kind, count, value in tags
    )  # fmt: skip
    ifd = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    Path(path).write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack(f"<{c}H", *[16] * c)
                           + array.astype("<u2").tobytes())  # fmt: skip
    return path


def deep_rgb(channels: int = 3, size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """uint16 [H, W, C] values that are not multiples of 257 (so an 8-bit detour shows)."""
    w, h = size
    values = rng(seed).integers(0, 65536, (h, w, channels)).astype(np.uint16)
    values[values % 257 == 0] += 1
    return values


def frames(count: int = 3, size: tuple[int, int] = (16, 12), alpha: bool = False) -> list[Image.Image]:
    """Frames of a square moving over a flat background (transparent when `alpha`)."""
    w, h = size
    out = []
    for i in range(count):
        canvas = np.zeros((h, w, 4), np.uint8)
        canvas[...] = (0, 0, 0, 0) if alpha else (20, 40, 200, 255)
        canvas[2:6, 2 + 3 * i : 6 + 3 * i] = (250, 200, 10, 255)
        out.append(Image.fromarray(canvas if alpha else np.ascontiguousarray(canvas[..., :3])))
    return out


def write_animation(path: Path, images: list[Image.Image], **options) -> Path:
    """An animation through Pillow's own writer (the format from the suffix)."""
    images[0].save(path, save_all=True, append_images=images[1:], **options)
    return path


def gif_local_palettes(path: Path) -> list[bool]:
    """For each frame of a GIF file, whether it brings its own (local) colour table: read from the blocks."""
    data = Path(path).read_bytes()
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # header, screen descriptor, global table
    local = []

    def skip_sub_blocks(at: int) -> int:
        while data[at]:
            at += data[at] + 1
        return at + 1

    while data[pos] != 0x3B:  # trailer
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif data[pos] == 0x2C:  # image descriptor, optional local table, LZW code size, image data
            packed = data[pos + 9]
            local.append(bool(packed & 0x80))
            pos += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
        else:
            raise ValueError(f"unexpected GIF block 0x{data[pos]:02x} at {pos}")
    return local


def upscale_file(source, output, *extra) -> int:
    """`swin2sr upscale SOURCE -o OUTPUT` with the stand-in model; the exit code."""
    return cli.main(["-q", "upscale", str(source), "-o", str(output), "--model", "stand-in", *extra])

