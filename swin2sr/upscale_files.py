"""An image file through the model: a still or an animation in, the same kind of file out, metadata kept.

The CLI and the job runner both call `upscale_file`; `check_file_paths` runs first, before any model
is loaded, so a bad output path or an animation sent to a still-only format costs nothing.
Animations go through `upscale_frames`: one plan for every frame (the same tile grid and precision,
so frames cannot flicker where the plan would have differed), a few frames per batch.
`swin2sr.upscale` is looked up at call time, so tests can stand in for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import swin2sr

from .io import animation, check_image_file, check_output_path, read_image, write_image

log = logging.getLogger("swin2sr")

Progress = Callable[[int, int], None]


def check_file_paths(source: Path, destination: Path) -> bool:
    """Check what can be checked before the upscale (one-line ValueError); True when `source` is animated."""
    check_output_path(destination)
    check_image_file(source)
    animated = animation.is_animated(source)
    if animated:
        animation.check_animation_output(destination)
    return animated


def upscale_file(
    model, source: Path, destination: Path, *, frames_per_batch: int = 4, progress: Progress | None = None, **options
) -> str:
    """Upscale one image file into `destination` (format from its suffix); returns the one-line report."""
    if check_file_paths(source, destination):
        clip = animation.read_animation(source)
        frames = upscale_frames(model, clip.frames, frames_per_batch=frames_per_batch, progress=progress, **options)
        animation.write_animation(replace(clip, frames=frames), destination)
        return f"{len(frames)} frames, {frames.shape[2]}x{frames.shape[1]}"
    image, info = read_image(source)
    result, report = swin2sr.upscale(model, image, progress=progress, return_report=True, **options)
    write_image(result, destination, info)
    return str(report)


def upscale_frames(
    model, frames: np.ndarray, *, frames_per_batch: int = 4, progress: Progress | None = None, **options
) -> np.ndarray:
    """uint8 frames [N, H, W, C] -> upscaled uint8 [N, sH, sW, C], every batch with the first batch's plan."""
    if frames_per_batch < 1:
        raise ValueError(f"frames_per_batch must be at least 1, got {frames_per_batch}")
    count, height, width = frames.shape[:3]
    plan = swin2sr.plan_upscale(model, height, width, min(count, frames_per_batch), **options)
    fixed = dict(options, tile=plan.tile, precision=plan.dtype)
    total = count * plan.tiles_per_image
    out = []
    for start in range(0, count, frames_per_batch):
        done = start * plan.tiles_per_image

        def report(tiles: int, _: int, done: int = done) -> None:
            if progress is not None:
                progress(done + tiles, total)

        with _logged_once(start > 0):  # the plan (and a pre-scale warning) is logged for the first batch only
            batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + frames_per_batch]))
            out.append(swin2sr.upscale(model, batch, layout="BHWC", progress=report, **fixed).numpy())
    return np.concatenate(out)


@contextmanager
def _logged_once(quiet: bool):
    level = log.level
    if quiet:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
