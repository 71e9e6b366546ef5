"""An upload becomes a checked input file: its size, its header (pixel count, format) and its integrity.

Every check here runs before a pixel is decoded, so an oversized or hostile upload costs a disk write of at
most `max_bytes` and a header read.  Each refusal is an `UploadError` carrying the HTTP status and the one
line the client sees.  File names sent by clients are never used: the saved file is `input` plus the suffix
of the format found in its header, inside the job's own folder.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Formats the service takes, with the suffix its saved input gets (and, for animations, its result gets).
ACCEPTED_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
ANIMATED_SUFFIX = {"GIF": ".gif", "PNG": ".png", "WEBP": ".webp"}  # an animation comes back in its own format
CHUNK = 1 << 20


class UploadError(Exception):
    """A refused upload: `status` is the HTTP status, `str()` the one line for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InputFile:
    """What the header says about a saved upload."""

    path: Path
    format: str
    width: int
    height: int
    frames: int

    @property
    def animated(self) -> bool:
        return self.frames > 1

    @property
    def result_suffix(self) -> str:
        """Stills come back as PNG; animations as GIF, APNG or WebP like the input."""
        return ANIMATED_SUFFIX[self.format] if self.animated else ".png"


async def save_upload(chunks: AsyncIterator[bytes], folder: Path, max_bytes: int) -> Path:
    """Write the upload's bytes to `folder/upload` (never the client's name), refusing empty and oversized ones.

    The writes run in a thread: the event loop keeps answering other clients meanwhile.
    """
    path = folder / "upload"
    size = 0
    out = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise UploadError(413, too_large_message(max_bytes))
            await asyncio.to_thread(out.write, chunk)
    finally:
        out.close()
    if size == 0:
        raise UploadError(400, "the uploaded file is empty; send an image file (PNG, JPEG, WebP, GIF, BMP or TIFF)")
    return path


def too_large_message(max_bytes: int) -> str:
    return (f"the upload is larger than this server's limit of {max_bytes / 2**20:g} MB; send a smaller file "
            "(or start the server with a larger --max-upload-mb)")


def inspect_upload(path: Path, max_pixels: int) -> InputFile:
    """Header checks on a saved upload, then its rename to `input.<format suffix>`; no pixel is decoded.

    Refuses (UploadError): not an image (400), a format the service does not take (415), more pixels than
    `max_pixels` over all frames (413), a file whose structure is damaged or truncated (400).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                info = _header(image, path, max_pixels)
                image.verify()  # chunk structure and checksums (PNG), without decoding the pixels
        except UploadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own cap, at open
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            raise UploadError(413, _pixels_message(max_pixels, int(pixels[1]) if pixels else 0)) from None
        except UnidentifiedImageError:
            raise UploadError(
                400, "the upload is not an image Pillow can read; send a PNG, JPEG, WebP, GIF, BMP or TIFF file"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise UploadError(400, f"the image is damaged or truncated ({' '.join(str(exc).split())}); "
                                   "send the complete file") from None
    return _renamed(info)


def _header(image: Image.Image, path: Path, max_pixels: int) -> InputFile:
    if image.format not in ACCEPTED_FORMATS:
        raise UploadError(415, f"{image.format} images are not accepted; send a PNG, JPEG, WebP, GIF, BMP or TIFF "
                               "file")
    width, height = image.size
    if width * height > max_pixels:  # checked before counting frames, which reads through the file
        raise UploadError(413, _pixels_message(max_pixels, width * height, f" ({width}x{height})"))
    frames = getattr(image, "n_frames", 1) if image.format in ANIMATED_SUFFIX else 1
    if width * height * frames > max_pixels:
        detail = f" ({width}x{height} x {frames} frames)"
        raise UploadError(413, _pixels_message(max_pixels, width * height * frames, detail))
    return InputFile(path, image.format, width, height, frames)


def _pixels_message(max_pixels: int, pixels: int, detail: str = "") -> str:
    count = f"{pixels / 1e6:g} megapixels{detail}" if pixels else "too many pixels"
    return (f"the image has {count}, over this server's limit of {max_pixels / 1e6:g} megapixels; "
            "shrink it first (or start the server with a larger --max-megapixels)")


def _renamed(info: InputFile) -> InputFile:
    """The saved upload under the suffix of its real format, so the readers see what the header says."""
    target = info.path.with_name("input" + ACCEPTED_FORMATS[info.format])
    info.path.rename(target)
    return InputFile(target, info.format, info.width, info.height, info.frames)
