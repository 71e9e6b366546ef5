"""The tile grid, the blend weights and the out-of-memory-splitting tile runner.

Grid: the image is reflect-padded to the window multiple once (as the untiled
network does), then covered by tiles of one shape (so several fit one forward
pass) whose corners lie on the window grid -- each tile computes exactly what the
untiled forward computes, except near its edges.  As few tiles as the maximum
tile side needs, shrunk to share the image evenly (`balanced_tile`), so every
overlap is at least, and close to, the requested one.

Blending: along each axis, two neighbouring tiles share a raised-cosine ramp
of `overlap` input pixels (times the scale), centred in their overlap; the
weights of all tiles sum to exactly one everywhere, so tiles are simply added
into the output -- no weight buffer, no hard cut.  Pixels right at a tile's
edge (the least context) get weight zero when the overlap is wider than the ramp.

Runner: tiles go through the model in batches, row by row, into a `StripCanvas`
that holds only the output rows still being blended; `TileRunner.rows` yields
each band of rows as soon as every tile touching it is added, so the caller
decides where rows go (`fill` a preallocated buffer, or a streaming file
writer: swin2sr.upscale_files); one runner serves both.  When a batch runs out
of memory it is split (fewer tiles per batch); at one tile per batch the tile side is halved
and each remaining tile is computed as a tiled image of its own with the smaller
tiles -- finished tiles are kept, later tiles use the size that worked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from .io import images
from .memory import padded

MIN_TILE = 32  # below this, Swin2SR's windows see too little context to be worth tiling further


class UpscaleCancelled(RuntimeError):
    """The caller's cancel() returned True; nothing was returned or written."""


def is_oom(exc: BaseException) -> bool:
    """Whether an exception means the device ran out of memory (CUDA, MPS, XPU, CPU allocator)."""
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def align_down(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


def axis_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start of each tile along one axis: first at 0, last ending at `length`, overlaps >= `overlap`.

    Starts are multiples of `multiple` (the window), so every tile sees the same
    window grid as the untiled forward would; `length` and `tile` must be multiples too.
    """
    if tile >= length:
        return [0]
    stride = align_down(tile - overlap, multiple)
    count = math.ceil((length - tile) / stride) + 1
    step = (length - tile) / (count - 1)
    return [round(i * step / multiple) * multiple for i in range(count)]


def balanced_tile(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest window-aligned tile side <= `tile` that covers `length` with as few tiles as `tile` needs.

    Spreading the tiles of the largest size evenly would leave huge overlaps when
    the image is a little larger than a multiple of the tile (256 px in tiles of
    128 -> three tiles overlapping by 64); shrinking all tiles to fit instead keeps
    every overlap near the requested one, so no pixels are computed needlessly.
    """
    if tile >= length:
        return length
    needed = len(axis_starts(length, tile, overlap, multiple))
    for count in range(2, needed + 1):
        side = padded(math.ceil((length + (count - 1) * overlap) / count), multiple)
        if side <= tile and len(axis_starts(length, side, overlap, multiple)) <= count:
            return side
    return tile


def ramp(length: int, center: float, width: float) -> torch.Tensor:
    """Raised cosine rising from 0 to 1 over `width` pixels centred at `center`, sampled at pixel centres."""
    x = torch.arange(length, dtype=torch.float64) + 0.5
    if width <= 0:
        return (x >= center).double()
    t = ((x - (center - width / 2)) / width).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def axis_weights(starts: list[int], tile: int, overlap: int, scale: int) -> list[torch.Tensor]:
    """Per-tile output weights along one axis; they sum to one at every output pixel."""
    out_len = (starts[-1] + tile) * scale
    weights = [torch.ones(out_len, dtype=torch.float64) for _ in starts]
    for i in range(len(starts) - 1):
        lo, hi = starts[i + 1], starts[i] + tile  # the shared input pixels
        rise = ramp(out_len, (lo + hi) / 2 * scale, min(overlap, hi - lo) * scale)
        weights[i + 1] *= rise
        weights[i] *= 1 - rise
    return [w[s * scale : (s + tile) * scale].float() for w, s in zip(weights, starts)]


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    y: int  # input coordinates of the top-left corner
    x: int
    last_in_row: bool


@dataclass
class Grid:
    """Equal tiles covering an h x w image, with their blend weights."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    overlap: int
    scale: int
    multiple: int = 1
    ys: list[int] = field(init=False)
    xs: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.tile_h = balanced_tile(self.height, self.tile_h, self.overlap, self.multiple)
        self.tile_w = balanced_tile(self.width, self.tile_w, self.overlap, self.multiple)
        self.ys = axis_starts(self.height, self.tile_h, self.overlap, self.multiple)
        self.xs = axis_starts(self.width, self.tile_w, self.overlap, self.multiple)
        self._wy = axis_weights(self.ys, self.tile_h, self.overlap, self.scale)
        self._wx = axis_weights(self.xs, self.tile_w, self.overlap, self.scale)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def tiles(self) -> list[Tile]:
        last = len(self.xs) - 1
        return [Tile(r, c, y, x, c == last) for r, y in enumerate(self.ys) for c, x in enumerate(self.xs)]

    def weight(self, tile: Tile) -> torch.Tensor:
        return self._wy[tile.row][:, None] * self._wx[tile.col][None, :]

    def next_row_top(self, tile: Tile) -> int:
        """First output row that tiles after `tile`'s row still touch (the image height after the last row)."""
        nxt = tile.row + 1
        return (self.ys[nxt] if nxt < len(self.ys) else self.height) * self.scale


def tile_grid(height: int, width: int, tile: int, overlap: int, scale: int = 1, multiple: int = 1) -> Grid:
    """The grid the runner will cut for an image of height x width (padded to `multiple` first)."""
    overlap = min(overlap, tile // 3)
    return Grid(padded(height, multiple), padded(width, multiple), tile, tile, overlap, scale, multiple)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad bottom/right to the window multiple, like the network's own forward."""
    pad_h, pad_w = (-image.shape[-2]) % multiple, (-image.shape[-1]) % multiple
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < image.shape[-2] and pad_w < image.shape[-1] else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


class StripCanvas:
    """Blends one row of tiles at a time and hands out its finished rows in the output's dtype.

    Float32 sums are kept per column block (from one tile column's left edge to the next one's),
    for the rows from the first unfinished row down to the bottom of the tiles added so far.
    Tiles arrive left to right, so once the tile starting a block is added, the block's rows
    above the next tile row are final: they are stored right away (clamped and rounded when
    `final`, raw otherwise) into the band handed out at the end of the row.  What stays in
    float32 is the overlap with the next tile row plus about one tile, not a band of the width.
    """

    def __init__(self, height: int, width: int, starts: list[int], dtype: torch.dtype, final: bool = True) -> None:
        self.height, self.width, self.dtype, self.final = height, width, dtype, final
        rights = [min(x, width) for x in starts[1:]] + [width]
        self.edges = list(zip([0, *rights[:-1]], rights))  # [left, right) of each block
        self.blocks = [torch.zeros((3, 0, right - left)) for left, right in self.edges]
        self.top = self.until = 0
        self.band: torch.Tensor | None = None

    def add(self, y: int, x: int, values: torch.Tensor) -> None:
        """Add weighted tile output `values` [3, h, w] at output position (y, x); what falls outside is dropped."""
        values = values[:, : self.height - y, : self.width - x]
        bottom = y + values.shape[1]
        for c, (left, right) in enumerate(self.edges):
            lo, hi = max(left, x), min(right, x + values.shape[2])
            if lo < hi:
                block = self._reach(c, bottom)
                block[:, y - self.top : bottom - self.top, lo - left : hi - left] += values[:, :, lo - x : hi - x]

    def _reach(self, c: int, bottom: int) -> torch.Tensor:
        """Block `c`, grown with zero rows down to output row `bottom`."""
        block = self.blocks[c]
        if bottom > self.top + block.shape[1]:
            grown = block.new_zeros((3, bottom - self.top, block.shape[2]))
            grown[:, : block.shape[1]] = block
            self.blocks[c] = block = grown
        return block

    def finish_block(self, c: int, until: int) -> None:
        """Rows above `until` of block `c` are final: store them into the band and drop them from the block."""
        self.until = min(until, self.height)
        n = self.until - self.top
        if self.band is None:
            self.band = torch.empty((3, n, self.width), dtype=self.dtype)
        left, right = self.edges[c]
        done, self.blocks[c] = self._reach(c, self.until)[:, :n], self.blocks[c][:, n:].clone()
        if self.final:
            images.store(self.band[:, :, left:right], done)
        else:
            self.band[:, :, left:right] = done

    def take(self) -> torch.Tensor:
        """The finished rows of this tile row ([3, n, width] in the output dtype); the next row starts below."""
        band, self.band, self.top = self.band, None, self.until
        return band


def fill(out: torch.Tensor, bands: Iterable[torch.Tensor]) -> None:
    """Copy row bands (top to bottom) into `out` [C, H, W]."""
    top = 0
    for band in bands:
        out[:, top : top + band.shape[1]] = band
        top += band.shape[1]


@dataclass
class RunStats:
    """What the runner did, for the report."""

    tiles_done: int = 0
    forwards: int = 0
    batch_splits: int = 0
    tile_shrinks: int = 0


class TileRunner:
    """Runs images through `forward` tile by tile, splitting batches and tiles on out-of-memory.

    forward: float32 CPU [k, 3, th, tw] -> float32 CPU [k, 3, th*s, tw*s] (device, precision and
    clamping are the caller's business).  `tile` and `batch` are the planned values; after an
    out-of-memory they hold the values that worked, for the rest of the job.
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        scale: int,
        multiple: int,
        tile: int,
        batch: int,
        overlap: int,
        *,
        oom: Callable[[BaseException], bool] = is_oom,
        on_oom: Callable[[], None] = lambda: None,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        total_tiles: int = 0,
    ) -> None:
        self.forward, self.scale, self.multiple = forward, scale, multiple
        self.tile, self.batch, self.overlap = tile, batch, overlap
        self.oom, self.on_oom = oom, on_oom
        self.progress, self.cancel = progress, cancel
        self.total_tiles = total_tiles
        self.stats = RunStats()
        self.min_tile = max(MIN_TILE, multiple)

    def rows(self, image: torch.Tensor, dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Upscale one image [1, 3, H, W]; yields its output rows top to bottom, as soon as they are blended.

        image: float 0..1, or uint8 (converted a batch of tiles at a time, so no float copy of a
        large 8-bit input is needed).  Each band is [3, n, W*s] in `dtype`, clamped to 0..1 and,
        for uint8, scaled to 0..255 and rounded (`images.store`); together they cover the H*s rows once.
        """
        return self._rows(image, self.tile, dtype, top_level=True)

    def run(self, image: torch.Tensor, out: torch.Tensor) -> None:
        """Upscale one image [1, 3, H, W] into `out` [3, H*s, W*s] (any dtype; values stored clamped)."""
        fill(out, self.rows(image, out.dtype))

    def _rows(self, image: torch.Tensor, tile: int, dtype: torch.dtype, top_level: bool) -> Iterator[torch.Tensor]:
        height, width = image.shape[-2] * self.scale, image.shape[-1] * self.scale
        image = pad_to_multiple(image, self.multiple)
        grid = tile_grid(image.shape[-2], image.shape[-1], tile, self.overlap, self.scale, self.multiple)
        canvas = StripCanvas(height, width, [x * self.scale for x in grid.xs], dtype, final=top_level)
        pending = grid.tiles()
        i = 0
        while i < len(pending):
            self._check_cancel()
            if max(grid.tile_h, grid.tile_w) > self.tile:  # shrunk after an OOM: tile this tile
                results = [self._subtiled(image, grid, pending[i])]
            else:
                results = self._try_batch(image, grid, pending[i : i + self.batch])
                if results is None:
                    continue
            for tile_, values in zip(pending[i : i + len(results)], results):
                canvas.add(tile_.y * self.scale, tile_.x * self.scale, values * grid.weight(tile_))
                canvas.finish_block(tile_.col, grid.next_row_top(tile_))
                if tile_.last_in_row:
                    yield canvas.take()
            i += len(results)
            if top_level:
                self.stats.tiles_done += len(results)
                if self.progress is not None:
                    self.progress(self.stats.tiles_done, self.total_tiles)

    def _crop(self, image: torch.Tensor, grid: Grid, tile: Tile) -> torch.Tensor:
        return image[..., tile.y : tile.y + grid.tile_h, tile.x : tile.x + grid.tile_w]

    def _try_batch(self, image: torch.Tensor, grid: Grid, chunk: list[Tile]) -> torch.Tensor | None:
        """The model's output for `chunk`, or None after an out-of-memory (batch or tile reduced: retry)."""
        try:
            result = self.forward(images.to_unit_float(torch.cat([self._crop(image, grid, t) for t in chunk])))
            self.stats.forwards += 1
            return result
        except Exception as exc:  # noqa: BLE001 - anything that is not an OOM is re-raised untouched
            if not self.oom(exc):
                raise
            message = str(exc)
        self.on_oom()
        self._reduce(len(chunk), max(grid.tile_h, grid.tile_w), message)
        return None

    def _reduce(self, failed_batch: int, failed_side: int, message: str) -> None:
        """Fewer tiles per batch; at one per batch, half the side of the tile that failed."""
        if failed_batch > 1:
            self.batch = (failed_batch + 1) // 2
            self.stats.batch_splits += 1
            return
        if failed_side <= self.min_tile:
            raise MemoryError(
                f"out of memory even at the smallest tile ({failed_side} px, 1 per batch): free device memory, "
                f"use a smaller model or run on the CPU (device='cpu'). Original error: {message}"
            )
        self.tile = max(self.min_tile, align_down(failed_side // 2, self.multiple))
        self.batch = 1
        self.stats.tile_shrinks += 1

    def _subtiled(self, image: torch.Tensor, grid: Grid, tile: Tile) -> torch.Tensor:
        """One tile of `grid` computed as an image of its own with the current (smaller) tile."""
        crop = self._crop(image, grid, tile)
        values = torch.zeros((3, grid.tile_h * self.scale, grid.tile_w * self.scale))
        fill(values, self._rows(crop, self.tile, torch.float32, top_level=False))
        return values

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise UpscaleCancelled("upscale cancelled; no output was produced")
