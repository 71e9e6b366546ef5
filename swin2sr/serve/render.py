"""One service job through the core, the same machinery as the CLI.

Without options a job is exactly `swin2sr upscale IN -o OUT.png`: `upscale_file` (the planner, the tiler,
PNG streamed to disk, animations frame by frame).  With a factor, a size, sharpening or faces, a still goes
through `swin2sr.upscale` (or `refine_faces`), then the core's `sharpen` and `resize`, and `write_image`.
Progress and cancellation are the tiler's own hooks: `progress(done, total)` after each tile batch,
`cancel()` polled between batches (True stops the job with `UpscaleCancelled`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..postprocess import SHARPEN_MAX
from ..settings import MAX_OUTPUT_SIDE


@dataclass(frozen=True)
class RenderOptions:
    """The per-request options of `POST /v1/upscale` (model, factor or size, sharpen, faces)."""

    model: str
    factor: float | None = None
    width: int | None = None
    height: int | None = None
    sharpen: float = 0.0
    faces: bool = False

    @property
    def post_processed(self) -> bool:
        """True when the result is more than the model's own upscale (it then is made in memory)."""
        return self.resized or self.sharpen > 0 or self.faces

    @property
    def resized(self) -> bool:
        return self.factor is not None or self.width is not None or self.height is not None


def check_options(options: RenderOptions, size: tuple[int, int], animated: bool) -> None:
    """One-line ValueError for options that cannot apply to this input (checked before the job is queued).

    size: the input's (width, height).  A requested output may not exceed MAX_OUTPUT_SIDE on its longer side,
    the same cap the Smart-Safe pre-downscale keeps.
    """
    if animated and options.post_processed:
        raise ValueError("factor, width, height, sharpen and faces apply to still images; leave them out for an "
                         "animation (it comes back at the model's scale)")
    if options.factor is not None and (options.width is not None or options.height is not None):
        raise ValueError("give either factor or width/height, not both")
    if not 0 <= options.sharpen <= SHARPEN_MAX:
        raise ValueError(f"sharpen must be between 0 and {SHARPEN_MAX}, got {options.sharpen}")
    if options.resized:
        height, width = _target(options, size)
        if max(height, width) > MAX_OUTPUT_SIDE:
            raise ValueError(f"the requested output is {width}x{height}; this server makes at most "
                             f"{MAX_OUTPUT_SIDE} px a side: ask for a smaller factor or size")


def _target(options: RenderOptions, size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) asked for by a factor or a size (the model's scale plays no part: 1 is passed)."""
    from ..postprocess import target_size

    width, height = size
    return target_size(height, width, 1, factor=options.factor, width=options.width, height=options.height)


def render(
    model,
    source: Path,
    destination: Path,
    options: RenderOptions,
    upscale_options: dict,
    progress: Callable[[int, int], None],
    cancel: Callable[[], bool],
) -> None:
    """Upscale `source` into `destination` (written atomically); upscale_options: tile, precision, device ..."""
    from .. import upscale_files

    hooks = dict(progress=progress, cancel=cancel)
    if not options.post_processed:  # the CLI's path: a still streamed to PNG, or an animation
        upscale_files.upscale_file(model, source, destination, **hooks, **upscale_options)
        return
    from ..io import read_image, write_image

    image, info = read_image(source)
    result = _upscaled(model, image, options, {**upscale_options, **hooks})
    write_image(_post_processed(result, info.size, options), destination, info)


def _upscaled(model, image, options: RenderOptions, upscale_options: dict):
    """The model's pass over the whole image: plain, or with each face upscaled again on its own."""
    from .. import pipelines, upscale_files

    if options.faces:
        return pipelines.refine_faces(image, model, **upscale_options)[0]
    return upscale_files.package().upscale(model, image, **upscale_options)


def _post_processed(result, size: tuple[int, int], options: RenderOptions):
    """Sharpen, then resize to the requested factor or size (relative to the input's own size)."""
    from ..io import images
    from ..postprocess import sharpen

    batch, kind = images.read_batch(result)
    color, alpha = images.split_alpha(batch, kind)
    if options.sharpen > 0:
        color = sharpen(color, options.sharpen)
    if options.resized:
        height, width = _target(options, size)
        color = images.resize(color, height, width)
        alpha = images.resize_alpha(alpha, height, width) if alpha is not None else None
    return images.finish(color, alpha, kind)
