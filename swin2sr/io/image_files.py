"""Image files in and out: every mode Pillow opens, 16-bit colour PNG, EXIF orientation, ICC profile and DPI.

`read_image(path)` gives pixels that `swin2sr.upscale` takes without losing precision (a PIL image, or a
uint16 numpy array [H, W, 3|4] for 16-bit colour PNG, which Pillow would cut to 8 bits) and an
`ImageFileInfo` with what the file carried besides its pixels.  `write_image(image, path, info)` writes
atomically in the format the suffix names, in the closest mode that format stores, with the ICC
profile, the EXIF block (orientation removed: the pixels are stored upright) and the DPI scaled with
the image, so the print size stays the same.  `check_output_path(path)` finds a bad output path
before any work is done.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .streaming import RasterSpec, atomic_file, write_rows

log = logging.getLogger("swin2sr")

ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")  # what Pillow reads and writes as animations

DEEP_COLOR = "RGB;16"  # ImageFileInfo.mode of 16-bit colour PNG (held as a uint16 numpy array)
_BITS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32, DEEP_COLOR: 16}


@dataclass(frozen=True)
class OutputFormat:
    """How Pillow writes one output format: its name, save options and the modes it stores as they are."""

    name: str
    options: dict
    modes: tuple[str, ...]
    deep_color: bool = False  # stores 16-bit RGB/RGBA (through pypng)


_PNG = OutputFormat("PNG", {"compress_level": 6}, ("1", "L", "LA", "RGB", "RGBA", "I;16", "P"), deep_color=True)
_JPEG = OutputFormat("JPEG", {"quality": 95}, ("L", "RGB", "CMYK"))
_TIFF = OutputFormat("TIFF", {"compression": "tiff_deflate"}, ("1", "L", "LA", "RGB", "RGBA", "CMYK", "I;16", "F"))
_GIF = OutputFormat("GIF", {}, ("P", "L"))
OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".png": _PNG,
    ".apng": _PNG,
    ".jpg": _JPEG,
    ".jpeg": _JPEG,
    ".webp": OutputFormat("WEBP", {"lossless": True}, ("RGB", "RGBA")),
    ".tif": _TIFF,
    ".tiff": _TIFF,
    ".gif": _GIF,
    ".bmp": OutputFormat("BMP", {}, ("1", "L", "RGB")),
}


@dataclass(frozen=True)
class ImageFileInfo:
    """What an image file carried besides its pixels, so the output file can carry it too."""

    format: str  # Pillow's name of the input format ("PNG", "JPEG", ...)
    mode: str  # the input's mode ("RGB;16" for 16-bit colour PNG)
    size: tuple[int, int]  # (width, height), upright
    icc_profile: bytes | None = None
    exif: bytes | None = None  # orientation removed: the pixels are upright
    dpi: tuple[float, float] | None = None

    @property
    def bits(self) -> int:
        """Bits per channel of the input (1, 8, 16 or 32)."""
        return _BITS.get(self.mode, 8)


def output_format_for(path: Path) -> OutputFormat:
    """The format named by the suffix; lossless PNG when the name has none."""
    path = Path(path)
    try:
        return OUTPUT_FORMATS[path.suffix.lower() or ".png"]
    except KeyError:
        known = ", ".join(OUTPUT_FORMATS)
        raise ValueError(f"cannot tell the output format from {path.name!r}; use one of {known}") from None


def check_output_path(path: Path) -> OutputFormat:
    """The output's format, after checking that a file can be written there: raises a one-line ValueError."""
    path = Path(path)
    output_format = output_format_for(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name such as {path / ('out' + (path.suffix or '.png'))}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: {folder} is a file, not a folder; choose another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write to the folder {folder} (permission denied); choose another output path")
    return output_format


# --- reading ---------------------------------------------------------------------------------------


def open_image(path: Path) -> Image.Image:
    """Image.open with every failure a user can cause turned into a one-line ValueError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"input {path} is a folder, not an image file")
    with _user_errors(path):
        image = Image.open(path)
        image.load()
    return image


@contextmanager
def _user_errors(path: Path):
    """Pillow's errors about a file, as one-line ValueErrors naming it; oversized images count as errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"{path} is too large to open safely ({exc}); shrink it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable image ({exc})") from None


def check_image_file(path: Path) -> None:
    """Find an unreadable, truncated or oversized image file without decoding it (before a model loads)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    with _user_errors(path):
        with Image.open(path) as image:
            image.verify()


def read_image(path: Path) -> tuple[Image.Image | np.ndarray, ImageFileInfo]:
    """(pixels upright, at full precision, ImageFileInfo): see the module docstring."""
    image = open_image(path)
    if getattr(image, "n_frames", 1) > 1 and image.format not in ANIMATED_FORMATS:
        log.warning("%s holds %d pages; only the first is upscaled (split the pages to upscale them all)",
                    path, image.n_frames)  # fmt: skip
    if _is_deep_color_tiff(image):
        log.warning("%s is a 16-bit colour TIFF, which Pillow reads at 8 bits per channel: the result has 8 bits; "
                    "save it as a 16-bit PNG first to keep the depth", path)  # fmt: skip
    orientation = image.getexif().get(0x0112, 1)
    upright = ImageOps.exif_transpose(image)
    exif = upright.getexif()
    info = ImageFileInfo(
        format=image.format or "",
        mode=DEEP_COLOR if _is_deep_color_png(path, image) else image.mode,
        size=upright.size,
        icc_profile=image.info.get("icc_profile") or None,
        exif=exif.tobytes() if len(exif) else None,
        dpi=_upright_dpi(image.info.get("dpi"), orientation),
    )
    if info.mode == DEEP_COLOR:
        return _orient_array(_read_deep_png(path), orientation), info
    return upright, info


def _is_deep_color_png(path: Path, image: Image.Image) -> bool:
    """A 16-bit PNG with colour or alpha (Pillow opens those as 8-bit; 16-bit gray it keeps as I;16)."""
    if image.format != "PNG" or image.mode == "I;16":
        return False
    with open(path, "rb") as f:
        header = f.read(26)
    return len(header) == 26 and header[24] == 16 and header[25] in (2, 4, 6)


def _is_deep_color_tiff(image: Image.Image) -> bool:
    bits = image.tag_v2.get(258, 8) if image.format == "TIFF" else 8
    return image.mode in ("RGB", "RGBA", "CMYK") and max(bits if isinstance(bits, tuple) else (bits,)) > 8


def _read_deep_png(path: Path) -> np.ndarray:
    """16-bit RGB / RGBA / gray+alpha PNG -> uint16 [H, W, 3|4] (gray+alpha widened to RGBA)."""
    png = _pypng()
    width, height, rows, meta = png.Reader(filename=str(path)).asDirect()
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, meta["planes"])
    if meta["planes"] == 2:  # gray+alpha: the model sees colour anyway, and RGBA is what PNG stores back
        array = np.concatenate([array[..., :1].repeat(3, axis=2), array[..., 1:]], axis=2)
    return array


def _pypng():
    try:
        import png
    except ImportError:
        raise ValueError("16-bit colour PNG needs the pypng package, a dependency of swin2sr-upscaler: "
                         "pip install pypng") from None  # fmt: skip
    return png


def _orient_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """The numpy twin of ImageOps.exif_transpose for arrays Pillow cannot hold."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
             8: lambda a: np.rot90(a, 1)}  # fmt: skip
    turn = turns.get(orientation)
    return np.ascontiguousarray(turn(array)) if turn else array


def _upright_dpi(dpi, orientation: int) -> tuple[float, float] | None:
    if not dpi:
        return None
    x, y = (float(v) for v in dpi)
    return (y, x) if orientation in (5, 6, 7, 8) else (x, y)


# --- writing ---------------------------------------------------------------------------------------


def write_image(image, path: Path, info: ImageFileInfo | None = None) -> None:
    """Write `image` (PIL, or numpy as `swin2sr.upscale` returns it) atomically, carrying `info`'s metadata."""
    path = Path(path)
    output_format = output_format_for(path)
    image = storable_image(image, output_format)
    metadata = output_metadata(info, _size(image))
    if isinstance(image, np.ndarray):
        height, width, channels = image.shape  # 16-bit colour: the streaming PNG writer, in one band
        write_rows(path, RasterSpec(width, height, channels, np.uint16, **metadata), [image])
    else:
        atomic_write(path, lambda f: image.save(f, format=output_format.name, **output_format.options, **metadata))


def output_metadata(info: ImageFileInfo | None, size: tuple[int, int]) -> dict:
    """Pillow save options carrying the input's ICC profile, EXIF and DPI (scaled by the size change)."""
    if info is None:
        return {}
    metadata = {"icc_profile": info.icc_profile, "exif": info.exif}
    if info.dpi:
        metadata["dpi"] = tuple(d * new / old for d, new, old in zip(info.dpi, size, info.size))
    return {key: value for key, value in metadata.items() if value}


def atomic_write(path: Path, write: Callable) -> None:
    """Write to a temporary file next to `path`, then rename: no half-written output on errors or Ctrl-C."""
    with atomic_file(path) as f:
        write(f)


def _size(image) -> tuple[int, int]:
    return (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else image.size


_FALLBACKS = {  # the next closest modes, best first, when a format cannot store a mode as it is
    "1": ("L", "RGB"),
    "L": ("RGB",),
    "LA": ("RGBA", "P", "L", "RGB"),
    "P": ("RGBA", "RGB"),
    "PA": ("RGBA", "RGB"),
    "RGB": ("P",),
    "RGBA": ("P", "RGB"),
    "CMYK": ("RGB",),
    "I;16": ("L", "RGB"),
    "F": ("I;16", "L", "RGB"),
}


def storable_image(image, output_format: OutputFormat):
    """The closest thing the format stores: a PIL image, or a uint16 array where 16-bit colour is kept."""
    if isinstance(image, np.ndarray):
        image = _from_array(image)
    if isinstance(image, np.ndarray):
        if output_format.deep_color:
            return image
        log.warning("%s stores 8 bits per channel: the 16-bit colour result is written at 8 bits; "
                    "use .png to keep 16 bits", output_format.name)  # fmt: skip
        image = Image.fromarray(to_8_bit(image))
    if image.mode in ("I;16B", "I;16L", "I;16N", "I"):
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int64), 0, 65535).astype(np.uint16))
    for mode in (image.mode, *_FALLBACKS.get(image.mode, ("RGB",))):
        if mode in output_format.modes:
            return image if mode == image.mode else _convert(image, mode, output_format)
    return _convert(image, "RGB", output_format)


def _from_array(array: np.ndarray) -> Image.Image | np.ndarray:
    """numpy HW / HWC (uint8, uint16, float 0..1) -> a PIL image, or uint16 [H, W, 3|4] for deep colour."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if np.issubdtype(array.dtype, np.floating):
        if array.ndim == 2:
            return Image.fromarray(array.astype(np.float32), mode="F")
        array = (np.clip(array, 0, 1) * 65535).round().astype(np.uint16)
    if array.dtype == np.uint16 and array.ndim == 3:
        return array
    return Image.fromarray(array)


def _convert(image: Image.Image, mode: str, output_format: OutputFormat) -> Image.Image:
    """Pillow's convert, except for depth changes it gets wrong (16-bit and float to 8 bits clip)."""
    if image.mode in ("LA", "RGBA", "PA") and "A" not in mode and mode != "P":
        log.warning("%s has no alpha channel: transparency is dropped; use .png, .webp or .tif to keep it",
                    output_format.name)  # fmt: skip
    if image.mode == "F" and mode == "I;16":
        return Image.fromarray((np.clip(np.asarray(image), 0, 1) * 65535).round().astype(np.uint16))
    if image.mode in ("I;16", "F"):
        log.warning("%s stores 8 bits per channel: the %s result is written at 8 bits; use .png or .tif to "
                    "keep its depth", output_format.name, "16-bit" if image.mode == "I;16" else "float")  # fmt: skip
        image = Image.fromarray(to_8_bit(np.asarray(image)))
        return image if image.mode == mode else image.convert(mode)
    if mode == "P":
        return _to_palette(image)
    return image.convert(mode)


def _to_palette(image: Image.Image) -> Image.Image:
    """Up to 256 colours without dithering; pixels under half opacity become one transparent index (GIF)."""
    if image.mode not in ("LA", "RGBA", "PA"):
        return image.convert("RGB").quantize(256, dither=Image.Dither.NONE)
    rgba = np.asarray(image.convert("RGBA"))
    indexed = Image.fromarray(np.ascontiguousarray(rgba[..., :3])).quantize(255, dither=Image.Dither.NONE)
    return with_transparent_index(indexed, rgba[..., 3] < 128)


TRANSPARENT_INDEX = 255  # palette images keep the last index for transparency


def with_transparent_index(indexed: Image.Image, clear: np.ndarray) -> Image.Image:
    """A copy of a palette image of at most 255 colours whose `clear` pixels use TRANSPARENT_INDEX."""
    indices = np.asarray(indexed).copy()
    indices[clear] = TRANSPARENT_INDEX
    out = Image.fromarray(indices, mode="P")
    out.putpalette(indexed.getpalette())
    out.info["transparency"] = TRANSPARENT_INDEX
    return out


def to_8_bit(array: np.ndarray) -> np.ndarray:
    """uint16 (0..65535) or float (0..1) pixels -> uint8, rounded."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        return (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return (np.clip(array.astype(np.float32), 0, 65535) / 257).round().astype(np.uint8)


