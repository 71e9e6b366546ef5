"""An image file through the model: a still or an animation in, the same kind of file out, metadata kept.

The CLI and the job runner both call `upscale_file`; `check_file_paths` runs first, before any model
is loaded, so a bad output path or an animation sent to a still-only format costs nothing.

Stills written as PNG or TIFF are streamed: the tiler's finished row bands
(`TileRunner.rows`) are converted band by band into the file's pixels -- the steps
`upscale` + `write_image` apply to the whole image (gray, alpha, the mode the format
stores), so the file holds the same pixels -- and encoded as they come by
`swin2sr.io.streaming`.  Peak memory is then the model, the input and a band of
output rows, whatever the output size.  Other formats (JPEG, WebP, ...) and pixels a
streamed format cannot hold (bilevel, float) are made in memory and written by `write_image`.

Animations go through `upscale_frames`: one plan for every frame (the same tile grid and precision,
so frames cannot flicker where the plan would have differed), a few frames per batch.
`swin2sr.upscale` is looked up at call time, so tests can stand in for it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import system
from .foreign import as_model
from .io import animation, check_image_file, check_output_path, images, read_image, write_image
from .io.image_files import ImageFileInfo, OutputFormat, output_format_for, output_metadata, storable_image
from .io.streaming import RasterSpec, streaming_format, write_rows
from .upscale import (
    PlannedInput,
    UpscaleReport,
    finish_report,
    model_device,
    read_and_plan,
    tile_runner,
    upscale_planned,
)

log = logging.getLogger("swin2sr")

Progress = Callable[[int, int], None]
RUN_OPTIONS = ("progress", "cancel", "is_oom")  # upscale options that are not planning options
STREAMED_MODES = ("L", "LA", "RGB", "RGBA", "I;16")  # Pillow modes whose samples the row writers store as they are
CONVERT_ROWS = 64  # rows converted at a time
# On the CPU, the model's working memory while upscaling a file (unless memory_budget says otherwise): one or two
# tiles of 256 per batch, which the CPU runs no slower than many, so a 16000x12000 output stays under 1 GB in all.
FILE_CPU_BUDGET = 128 << 20
ALPHA_MARGIN = 2  # input rows around a band that its bilinear alpha reads (the filter's reach, plus one)


def package():
    """The swin2sr package, also when a host imports it under another name; looked up at call time, so tests
    can replace its functions."""
    return sys.modules[__package__]


def check_file_paths(source: Path, destination: Path) -> bool:
    """Check what can be checked before the upscale (one-line ValueError); True when `source` is animated."""
    check_output_path(destination)
    check_image_file(source)
    animated = animation.is_animated(source)
    if animated:
        animation.check_animation_output(destination)
    return animated


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
    upscale: UpscaleReport | None  # None for an animation (one report per batch of frames)
    frames: int = 1

    def __str__(self) -> str:
        how = "streamed" if self.streamed else "wrote"
        w, h = self.size
        frames = f"{self.frames} frames, " if self.frames > 1 else ""
        return (
            f"{how} {self.dst} ({frames}{w}x{h}, {self.file_bytes / 1e6:.1f} MB) in {self.seconds:.1f} s, "
            f"peak RSS {self.peak_rss_bytes / 1e9:.2f} GB"
        )


def upscale_file(
    model,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    frames_per_batch: int = 4,
    compress_level: int = 6,
    tiff_tile: int | None = 256,
    **options,
) -> FileReport:
    """Upscale the image file `src` (a still or an animation) into `dst` (format from the suffix): a `FileReport`.

    PNG and TIFF outputs are streamed: the full-size output never exists in memory.  The file
    appears only when complete (a temporary file in the destination folder is renamed), so an
    error, UpscaleCancelled or Ctrl-C leaves no partial file.  The pixels are those that
    `upscale` + `write_image` would write (16-bit colour TIFF: streamed at 16 bits, in memory at 8);
    ICC profile, EXIF and DPI (scaled with the image) are carried as `write_image` does.

    options: `upscale`'s keyword options (tile, overlap, precision, max_input_size,
      memory_budget, free_memory, device, progress, cancel, is_oom); not layout, output_dtype,
      return_report (the file decides those).  On the CPU memory_budget defaults to 128 MiB
      (FILE_CPU_BUDGET), so that the whole process stays small whatever the output size.
    compress_level: zlib level 0-9 for PNG and TIFF.  tiff_tile: TIFF tile side, or None for strips.
    frames_per_batch: animations (GIF, APNG, animated WebP) are upscaled this many frames at a time.
    """
    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if check_file_paths(src, dst):
        clip = animation.read_animation(src)
        frames = upscale_frames(model, clip.frames, frames_per_batch=frames_per_batch, **options)
        animation.write_animation(replace(clip, frames=frames), dst)
        return _file_report(src, dst, (frames.shape[2], frames.shape[1]), False, None, started, len(frames))
    model = as_model(model)
    run = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
    if options.get("memory_budget") is None and _runs_on_cpu(model, options.get("device")):
        options["memory_budget"] = FILE_CPU_BUDGET
    image, info = read_image(src)
    job = read_and_plan(model, image, keep_8_bit=True, **options)
    del image  # from here on job.color (uint8 for 8-bit files) is the only full copy of the input
    pixels = FilePixels(job, output_format_for(dst))
    streamed = streaming_format(dst) is not None and pixels.streamable
    if streamed:
        report = UpscaleReport(plan=job.plan)
        with tile_runner(model, job.plan, report, **run) as runner:
            bands = runner.rows(images.resize(job.color, *job.plan.model_input_size), pixels.storage)
            write_rows(dst, pixels.spec(info), pixels.bands(bands), compress_level=compress_level, tiff_tile=tiff_tile)
    else:
        result, report = upscale_planned(model, job, **run)
        write_image(result, dst, info)
    finish_report(report, started)
    return _file_report(src, dst, (pixels.width, pixels.height), streamed, report, started)


def upscale_frames(
    model, frames: np.ndarray, *, frames_per_batch: int = 4, progress: Progress | None = None, **options
) -> np.ndarray:
    """uint8 frames [N, H, W, C] -> upscaled uint8 [N, sH, sW, C], every batch with the first batch's plan."""
    count, height, width = frames.shape[:3]
    upscaler = FrameUpscaler(model, height, width, count, frames_per_batch=frames_per_batch, progress=progress,
                             **options)
    return np.concatenate([upscaler(frames[start : start + frames_per_batch])
                           for start in range(0, count, frames_per_batch)])


class FrameUpscaler:
    """Upscales a sequence of same-size uint8 frames a batch at a time, every batch with one plan.

    One plan (the same tile grid and precision for every frame, decided once) means frames cannot
    flicker where a fresh plan would have differed.  Animations (`upscale_frames`) and videos
    (`swin2sr.jobs`, fed by the decoder batch by batch) use it; `progress` counts tiles over all
    `expected_frames` (the total grows if more frames come).
    """

    def __init__(
        self, model, height: int, width: int, expected_frames: int, *, frames_per_batch: int = 4,
        progress: Progress | None = None, **options,
    ) -> None:  # fmt: skip
        if frames_per_batch < 1:
            raise ValueError(f"frames_per_batch must be at least 1, got {frames_per_batch}")
        core = package()
        batch = max(1, min(expected_frames, frames_per_batch))
        self.plan = core.plan_upscale(model, height, width, batch, **options)
        self.model, self.progress, self.expected = model, progress, expected_frames
        self.fixed = dict(options, tile=self.plan.tile, precision=self.plan.dtype)
        self.frames_done = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [n, H, W, C] -> uint8 [n, sH, sW, C]."""
        tiles = self.plan.tiles_per_image
        done = self.frames_done * tiles
        total = max(self.expected, self.frames_done + len(frames)) * tiles

        def report(batch_tiles: int, _: int) -> None:
            if self.progress is not None:
                self.progress(done + batch_tiles, total)

        with _logged_once(self.frames_done > 0):  # the plan (and a pre-scale warning) is logged for the first batch
            out = upscale_batch(self.model, frames, self.fixed, report)
        self.frames_done += len(frames)
        return out


def upscale_batch(model, frames: np.ndarray, fixed: dict, progress: Progress | None = None) -> np.ndarray:
    """uint8 [n, H, W, C] -> uint8 [n, sH, sW, C] with a `FrameUpscaler`'s pinned keywords (`.fixed`).

    What a frame batch costs wherever it runs: `FrameUpscaler` here, a Ray worker (swin2sr.cluster) there.
    """
    core = package()
    batch = torch.from_numpy(np.ascontiguousarray(frames))
    return core.upscale(model, batch, layout="BHWC", progress=progress, **fixed).numpy()


@contextmanager
def _logged_once(quiet: bool):
    level = log.level
    if quiet:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class FilePixels:
    """Turns the tiler's float row bands into the file's pixel rows, as `upscale` + `write_image` would.

    Per band (already rounded into the output storage by the tiler): gray and alpha back
    (`images.finish`, with the alpha rows resized for this band only), then the mode the format
    stores (`storable_image`).  A 1x1 band tried up front tells whether the result is streamable
    (gray, RGB, with or without alpha, 8- or 16-bit) and the file's channels and sample type.
    """

    def __init__(self, job: PlannedInput, output_format: OutputFormat) -> None:
        self.kind, self.format = job.kind, output_format
        self.storage = images.output_storage(job.kind)
        self.alpha = AlphaRows(job.alpha, *job.plan.output_size) if job.alpha is not None else None
        self.height, self.width = job.plan.output_size
        probe = torch.zeros((3, 1, 1), dtype=self.storage)
        image = self._image(probe, None if job.alpha is None else torch.zeros((1, 1, 1, 1)))
        sample = np.asarray(image)
        self.channels = 1 if sample.ndim == 2 else sample.shape[-1]
        self.dtype = sample.dtype
        # the row writers store gray, RGB (+ alpha) samples: CMYK or palette files are written in memory
        mode_ok = getattr(image, "mode", None) in (None, *STREAMED_MODES)
        self.streamable = mode_ok and self.dtype in (np.uint8, np.uint16) and 1 <= self.channels <= 4

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
            del band, rows  # gone before the tiler makes the next band, so two never coexist

    def _pixels(self, band: torch.Tensor, alpha: torch.Tensor | None) -> np.ndarray:
        return np.asarray(self._image(band, alpha))

    def _image(self, band: torch.Tensor, alpha: torch.Tensor | None):
        result = images.finish(band[None], alpha, self.kind)
        if not (isinstance(result, np.ndarray) and result.dtype == np.uint16):  # 16-bit colour streams as it is
            result = storable_image(result, self.format)
        return result


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


def _runs_on_cpu(model, device) -> bool:
    return (torch.device(device) if device is not None else model_device(model)).type == "cpu"


def _file_report(
    src: Path, dst: Path, size: tuple[int, int], streamed: bool, report: UpscaleReport | None, started: float,
    frames: int = 1,
) -> FileReport:
    return FileReport(
        src=src, dst=dst, size=size, streamed=streamed, file_bytes=dst.stat().st_size,
        seconds=time.perf_counter() - started,
        peak_rss_bytes=system.peak_rss(), upscale=report, frames=frames,
    )  # fmt: skip

