"""Streaming image writers: finished output rows in, a PNG or TIFF file out, never the whole image in memory.

`write_rows(path, spec, bands)` consumes an iterator of row bands (numpy
[n, W, C] uint8 or uint16, top to bottom) and encodes them as they arrive, so
the caller can produce the rows lazily (the tiler does: see
`swin2sr.upscale_files.upscale_file`).  The file appears only when the last row is
written: everything goes to a temporary file in the destination folder that is
renamed on success and deleted on any exception, Ctrl-C included.

Encoders (measured in benchmarks/README.md, "bench_streaming.py"):
- PNG: our own ~60 lines on the standard library's zlib, with the Paeth filter
  computed by numpy per band.  pypng streams too but writes every row unfiltered
  (files 2-2.5x larger than Pillow's), Pillow cannot encode incrementally, and
  pyvips would pull rows through C callbacks (no clean Ctrl-C, a native wheel).
- TIFF: tifffile (optional extra `tiff`), tiled (default 256x256) or striped,
  deflate with the horizontal predictor, BigTIFF when the pixels pass 4 GB.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

log = logging.getLogger("swin2sr")

STREAMING_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF"}
PNG_BAND_ROWS = 32  # rows filtered and compressed at a time: a few MB of temporaries even at 16000 px wide
BIGTIFF_ABOVE = 2**32 - 2**25  # tifffile's own margin below the 4 GiB offset limit of classic TIFF
TIFF_EXTRA = "pip install swin2sr-upscaler[tiff]"


@dataclass(frozen=True)
class RasterSpec:
    """What the file will hold: its size, channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) and sample type."""

    width: int
    height: int
    channels: int
    dtype: np.dtype  # uint8 or uint16
    dpi: tuple[float, float] | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None  # PNG only (an eXIf chunk); TIFF keeps the ICC profile and DPI

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"streamed images are 8- or 16-bit, not {self.dtype}")
        if not 1 <= self.channels <= 4:
            raise ValueError(f"streamed images have 1-4 channels, not {self.channels}")

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels * self.dtype.itemsize


def streaming_format(path: str | os.PathLike) -> str | None:
    """'PNG' or 'TIFF' when the suffix names a format we can stream here, else None.

    TIFF needs tifffile (the `tiff` extra); without it TIFF is not streamed, said once in the log.
    """
    kind = STREAMING_FORMATS.get(Path(path).suffix.lower())
    if kind == "TIFF" and not _has_tifffile():
        return None
    return kind


@functools.cache
def _has_tifffile() -> bool:
    try:
        import tifffile  # noqa: F401
    except ImportError:
        log.warning("TIFF outputs are written in memory, not streamed: %s to stream them", TIFF_EXTRA)
        return False
    return True


def write_rows(
    path: str | os.PathLike,
    spec: RasterSpec,
    bands: Iterable[np.ndarray],
    *,
    compress_level: int = 6,
    tiff_tile: int | None = 256,
    tiff_rows_per_strip: int = 64,
) -> int:
    """Encode `bands` ([n, W, C] or [n, W] arrays, top to bottom) into `path` atomically; returns the file size.

    The format follows the suffix (.png, .tif, .tiff).  tiff_tile: tile side for TIFF, or None for strips
    of `tiff_rows_per_strip` rows.  Any exception from the bands (an error, UpscaleCancelled,
    KeyboardInterrupt) propagates and leaves no file behind.
    """
    kind = STREAMING_FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise ValueError(f"cannot stream {Path(path).name!r}: streamed outputs are {', '.join(STREAMING_FORMATS)}")
    bands = _checked(bands, spec)
    with atomic_file(path) as f:
        if kind == "PNG":
            _write_png(f, spec, bands, compress_level)
        else:
            _write_tiff(f, spec, bands, compress_level, tiff_tile, tiff_rows_per_strip)
        return f.tell()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` only if the block finishes; on any exception it is deleted.

    The finished file gets the permissions a plain `open(path, "w")` would give (mkstemp makes it 0600,
    which would hide a user's outputs from the rest of their group or web server).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)  # reopened by name: tifffile wants a file object with a real name
    try:
        with open(tmp, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _checked(bands: Iterable[np.ndarray], spec: RasterSpec) -> Iterator[np.ndarray]:
    """The bands as [n, W, C] arrays of the spec's type; raises if their shapes or total height are wrong."""
    rows = 0
    for band in bands:
        band = band.reshape(band.shape[0], band.shape[1], -1) if band.ndim == 2 else band
        if band.shape[1:] != (spec.width, spec.channels) or band.dtype != spec.dtype:
            raise ValueError(f"row band {band.shape} {band.dtype} does not match {spec}")
        rows += band.shape[0]
        if rows > spec.height:
            raise ValueError(f"more than the {spec.height} rows announced")
        yield band
    if rows != spec.height:
        raise ValueError(f"got {rows} rows, {spec.height} announced")


def rebanded(bands: Iterable[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """The same rows regrouped into bands of exactly `rows` rows (the last may be shorter)."""
    pending: list[np.ndarray] = []
    count = 0
    for band in bands:
        while band.shape[0]:
            take = band[: rows - count]
            pending.append(take)
            count += take.shape[0]
            band = band[take.shape[0] :]
            if count == rows:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending)
                pending, count = [], 0
    if pending:
        yield np.concatenate(pending)


# --- PNG ---------------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA
PAETH = 4


def _write_png(f: BinaryIO, spec: RasterSpec, bands: Iterable[np.ndarray], level: int) -> None:
    bits = 8 * spec.dtype.itemsize
    f.write(PNG_SIGNATURE)
    _chunk(f, b"IHDR", struct.pack(">IIBBBBB", spec.width, spec.height, bits, PNG_COLOR_TYPES[spec.channels], 0, 0, 0))
    if spec.icc_profile:
        _chunk(f, b"iCCP", b"icc\x00\x00" + zlib.compress(spec.icc_profile))
    if spec.dpi:
        per_meter = [round(d / 0.0254) for d in spec.dpi]
        _chunk(f, b"pHYs", struct.pack(">IIB", *per_meter, 1))
    if spec.exif:
        _chunk(f, b"eXIf", spec.exif.removeprefix(b"Exif\x00\x00"))
    compressor = zlib.compressobj(level)
    previous = np.zeros(spec.width * spec.channels * spec.dtype.itemsize, np.uint8)
    for band in rebanded(bands, PNG_BAND_ROWS):
        scanlines = band.astype(">u2" if bits == 16 else np.uint8, copy=False).view(np.uint8)
        scanlines = scanlines.reshape(band.shape[0], -1)
        data = compressor.compress(paeth_filtered(scanlines, previous, spec.channels * spec.dtype.itemsize))
        if data:
            _chunk(f, b"IDAT", data)
        previous = scanlines[-1]
    _chunk(f, b"IDAT", compressor.flush())
    _chunk(f, b"IEND", b"")


def paeth_filtered(scanlines: np.ndarray, previous: np.ndarray, bpp: int) -> bytes:
    """PNG scanlines [n, bytes] with the Paeth filter applied, each prefixed by its filter byte.

    Encoding uses only raw neighbour bytes (left, up, upper-left), so a whole band is one numpy
    expression; `previous` is the raw row above the band (zeros for the first).
    """
    x = scanlines.astype(np.int16)
    up = np.vstack((previous[None].astype(np.int16), x[:-1]))
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upper_left = np.zeros_like(x)
    upper_left[:, bpp:] = up[:, :-bpp]
    estimate = left + up - upper_left
    pa, pb, pc = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - upper_left)
    predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upper_left))
    filtered = np.empty((x.shape[0], x.shape[1] + 1), np.uint8)
    filtered[:, 0] = PAETH
    filtered[:, 1:] = (x - predictor).astype(np.uint8)  # modulo 256, as PNG defines it
    return filtered.tobytes()


def _chunk(f: BinaryIO, tag: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data)))


# --- TIFF --------------------------------------------------------------------------------------------


def _write_tiff(
    f: BinaryIO, spec: RasterSpec, bands: Iterable[np.ndarray], level: int, tile: int | None, rows_per_strip: int
) -> None:
    try:
        import tifffile
    except ImportError:
        raise ValueError(f"streaming TIFF output needs tifffile: {TIFF_EXTRA} (or write a .png)") from None
    options = dict(
        shape=(spec.height, spec.width) if spec.channels == 1 else (spec.height, spec.width, spec.channels),
        dtype=spec.dtype,
        photometric="minisblack" if spec.channels <= 2 else "rgb",
        extrasamples=("unassalpha",) if spec.channels in (2, 4) else None,
        compression="zlib",
        compressionargs={"level": level},
        predictor=True,
        bigtiff=spec.nbytes > BIGTIFF_ABOVE,
        resolution=spec.dpi,
        resolutionunit="INCH" if spec.dpi else None,
        iccprofile=spec.icc_profile,
        metadata=None,
    )
    if tile:
        tifffile.imwrite(f, data=_tiles(bands, tile), tile=(tile, tile), **options)
    else:
        strips = (_deflated_strip(s, level) for s in rebanded(bands, rows_per_strip))
        tifffile.imwrite(f, data=strips, rowsperstrip=rows_per_strip, **options)


def _tiles(bands: Iterable[np.ndarray], side: int) -> Iterator[np.ndarray]:
    """Tiles of side x side, row by row (tifffile zero-pads the ones cut by the image edge)."""
    for band in rebanded(bands, side):
        for x in range(0, band.shape[1], side):
            tile = band[:, x : x + side]
            yield tile[..., 0] if tile.shape[-1] == 1 else tile


def _deflated_strip(strip: np.ndarray, level: int) -> bytes:
    """One strip encoded as TIFF stores it with predictor 2 (horizontal differencing) and deflate."""
    delta = strip.copy()
    delta[:, 1:] -= strip[:, :-1]  # unsigned wrap-around is what the predictor specifies
    return zlib.compress(delta.tobytes(), level)
