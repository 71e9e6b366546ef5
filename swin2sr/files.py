"""`upscale_file(model, src, dst)`: one image file to another, streamed to disk row by row.

The tiler's finished row bands (`TileRunner.rows`) are converted band by band
into the file's pixels -- the same steps `upscale` + `write_image` apply to the
whole image (rounding, gray, alpha, the mode the format stores), so the file
holds the same pixels -- and encoded as they come by `swin2sr.io.streaming`.
Peak memory is then the model, the input and a band of output rows, whatever
the output size.  Formats that cannot be streamed (JPEG, WebP, GIF, BMP, and
bilevel or float pixels) go through `upscale` and `write_image` in memory.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import check_output_path, images, read_image, write_image
from .io.image_files import ImageFileInfo, OutputFormat, output_metadata, storable_image
from .io.streaming import RasterSpec, streaming_format, write_rows
from .upscale import PlannedInput, UpscaleReport, finish_report, read_and_plan, tile_runner, upscale_planned

log = logging.getLogger("swin2sr")

RUN_OPTIONS = ("progress", "cancel", "is_oom")  # upscale options that are not planning options
CONVERT_ROWS = 64  # rows converted at a time
ALPHA_MARGIN = 2  # input rows around a band that its bilinear alpha reads (the filter's reach, plus one)


@dataclass
class FileReport:
    """What `upscale_file` did: where, how big, whether the output was streamed, and the upscale's report."""

    src: Path
    dst: Path
    size: tuple[int, int]  # output (width, height)
    streamed: bool
    file_bytes: int
    seconds: float
    peak_rss_bytes: int  # the process's peak resident memory so far
    upscale: UpscaleReport

    def __str__(self) -> str:
        how = "streamed" if self.streamed else "written"
        w, h = self.size
        return (
            f"{how} {self.dst} ({w}x{h}, {self.file_bytes / 1e6:.1f} MB) in {self.seconds:.1f} s, "
            f"peak RSS {self.peak_rss_bytes / 1e9:.2f} GB"
        )


def upscale_file(
    model,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    compress_level: int = 6,
    tiff_tile: int | None = 256,
    **options,
) -> FileReport:
    """Upscale the image file `src` into `dst` (format from the suffix); returns a `FileReport`.

    PNG and TIFF outputs are streamed: the full-size output never exists in memory.  The file
    appears only when complete (a temporary file in the destination folder is renamed), so an
    error, UpscaleCancelled or Ctrl-C leaves no partial file.  The pixels are those that
    `upscale` + `write_image` would write (16-bit colour TIFF: streamed at 16 bits, in memory at 8);
    ICC profile, EXIF and DPI (scaled with the image) are carried as `write_image` does.

    options: `upscale`'s keyword options (tile, overlap, precision, max_input_size,
      memory_budget, free_memory, device, progress, cancel, is_oom); not layout, output_dtype,
      return_report (the file decides those).
    compress_level: zlib level 0-9 for PNG and TIFF.  tiff_tile: TIFF tile side, or None for strips.
    """
    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    output_format = check_output_path(dst)
    image, info = read_image(src)
    run = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
    job = read_and_plan(model, image, **options)
    del image  # from here on the float input is the only full copy of the input
    pixels = FilePixels(job, output_format)
    if streaming_format(dst) is None or not pixels.streamable:
        result, report = upscale_planned(model, job, **run)
        finish_report(report, started)
        write_image(result, dst, info)
        return _file_report(src, dst, result_size(result), False, report, started)
    report = UpscaleReport(plan=job.plan)
    with tile_runner(model, job.plan, report, **run) as runner:
        bands = runner.rows(images.resize(job.color, *job.plan.model_input_size), pixels.storage)
        spec = pixels.spec(info)
        write_rows(dst, spec, pixels.bands(bands), compress_level=compress_level, tiff_tile=tiff_tile)
    finish_report(report, started)
    return _file_report(src, dst, (spec.width, spec.height), True, report, started)


class FilePixels:
    """Turns the tiler's float row bands into the file's pixel rows, as `upscale` + `write_image` would.

    Per band (already rounded into the output storage by the tiler): gray and alpha back
    (`images.finish`, with the alpha rows resized for this band only), then the mode the format
    stores (`storable_image`).  A 1x1 band tried up front tells whether the result is streamable
    (8- or 16-bit, 1-4 channels) and the file's channels and sample type.
    """

    def __init__(self, job: PlannedInput, output_format: OutputFormat) -> None:
        self.kind, self.format = job.kind, output_format
        self.storage = images.output_storage(job.kind)
        self.alpha = AlphaRows(job.alpha, *job.plan.output_size) if job.alpha is not None else None
        self.height, self.width = job.plan.output_size
        probe = torch.zeros((3, 1, 1), dtype=self.storage)
        sample = self._pixels(probe, None if job.alpha is None else torch.zeros((1, 1, 1, 1)))
        self.channels = 1 if sample.ndim == 2 else sample.shape[-1]
        self.dtype = sample.dtype
        self.streamable = self.dtype in (np.uint8, np.uint16) and 1 <= self.channels <= 4

    def spec(self, info: ImageFileInfo | None) -> RasterSpec:
        metadata = output_metadata(info, (self.width, self.height))
        return RasterSpec(
            self.width, self.height, self.channels, self.dtype,
            dpi=metadata.get("dpi"), icc_profile=metadata.get("icc_profile"), exif=metadata.get("exif"),
        )  # fmt: skip

    def bands(self, bands: Iterator[torch.Tensor]) -> Iterator[np.ndarray]:
        """The file's pixel rows for the tiler's bands (in `self.storage`), a few rows at a time."""
        top = 0
        for band in bands:
            for rows in band.split(CONVERT_ROWS, dim=1):  # keeps the conversion's temporaries small
                bottom = top + rows.shape[1]
                yield self._pixels(rows, self.alpha.rows(top, bottom) if self.alpha is not None else None)
                top = bottom

    def _pixels(self, band: torch.Tensor, alpha: torch.Tensor | None) -> np.ndarray:
        result = images.finish(band[None], alpha, self.kind)
        if not (isinstance(result, np.ndarray) and result.dtype == np.uint16):  # 16-bit colour streams as it is
            result = storable_image(result, self.format)
        return np.asarray(result)


class AlphaRows:
    """Rows top..bottom of `images.resize_alpha(alpha, height, width)`, computed from the input rows they need.

    At an integer scale the band's input rows (plus a margin) are resized on their own, which
    gives the same values as the full resize (exactly at x2 and x4, to float rounding at x3).
    Otherwise the input was pre-scaled (MAX_INPUT_SIZE), the output is at most 4096 px a side,
    and the full resize is made once.
    """

    def __init__(self, alpha: torch.Tensor, height: int, width: int) -> None:
        self.alpha, self.height, self.width = alpha, height, width
        in_h, in_w = alpha.shape[-2:]
        self.scale = height // in_h if height % in_h == 0 and width == in_w * (height // in_h) else None
        self.full = None if self.scale else images.resize_alpha(alpha, height, width)

    def rows(self, top: int, bottom: int) -> torch.Tensor:
        if self.full is not None:
            return self.full[..., top:bottom, :]
        k = self.scale
        first = max(0, top // k - ALPHA_MARGIN)
        last = min(self.alpha.shape[-2], -(-bottom // k) + ALPHA_MARGIN)
        part = images.resize_alpha(self.alpha[..., first:last, :], (last - first) * k, self.width)
        return part[..., top - first * k : bottom - first * k, :]


def result_size(result) -> tuple[int, int]:
    """(width, height) of a PIL image or numpy array."""
    return (result.shape[1], result.shape[0]) if isinstance(result, np.ndarray) else result.size


def _file_report(
    src: Path, dst: Path, size: tuple[int, int], streamed: bool, report: UpscaleReport, started: float
) -> FileReport:
    return FileReport(
        src=src, dst=dst, size=size, streamed=streamed, file_bytes=dst.stat().st_size,
        seconds=time.perf_counter() - started,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, upscale=report,
    )  # fmt: skip

