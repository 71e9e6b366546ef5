"""`upscale()`: the one tiling path for the CLI, every ComfyUI node and the A1111 extension.

Flow: read the image (any kind) and plan (pre-scale, precision, tile, tiles per
batch, memory forecast; logged in one line): `read_and_plan` -> run every image
through the `TileRunner` (`tile_runner`), whose finished row bands go into the
preallocated host output (`upscale_planned`) or, for files, straight to a
streaming writer (swin2sr.upscale_files) -> put alpha/gray back -> return the
caller's kind.  `plan_upscale` runs only the planning step, so hosts can show
the decision and the final size before any work starts.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import engine, memory, settings, system
from .arguments import PRECISIONS, check_upscale_options, whole_number
from .foreign import ModelLike, as_model
from .io import images
from .tiling import MIN_TILE, TileRunner, UpscaleCancelled, align_down, tile_grid
from .tiling import is_oom as default_is_oom

log = logging.getLogger("swin2sr")

MAX_TILES_PER_BATCH = 16
PLANNING_DEFAULTS = dict(tile="auto", overlap=16, precision="auto", max_input_size=None, memory_budget=None,
                         free_memory=None, device=None)  # fmt: skip
UPSCALE_ONLY_OPTIONS = {"progress", "cancel", "is_oom", "output_dtype", "layout", "return_report"}

__all__ = ["UpscaleCancelled", "UpscalePlan", "UpscaleReport", "plan_upscale", "upscale", "upscale_planned"]


@dataclass
class UpscalePlan:
    """What `upscale` will do, decided before any work starts."""

    input_size: tuple[int, int]  # (h, w) as given
    model_input_size: tuple[int, int]  # after the MAX_INPUT_SIZE pre-scale
    output_size: tuple[int, int]
    scale: int
    batch: int  # images
    tile: int  # tile side (input px); the whole image when it fits
    tile_h: int
    tile_w: int
    overlap: int
    tiles_per_image: int
    tiles_per_batch: int
    dtype: torch.dtype
    device: torch.device
    predicted_bytes: int
    budget_bytes: int
    free_bytes: int
    tile_source: str  # "auto", "argument" or "TILE_SIZE"
    chunk_tokens: int = 0  # tokens per attention/MLP chunk for Swin2SR models (swin2sr.tuning, bounded by the budget)

    @property
    def precision(self) -> str:
        return {v: k for k, v in PRECISIONS.items()}.get(self.dtype, str(self.dtype))

    @property
    def prescaled(self) -> bool:
        return self.model_input_size != self.input_size

    @property
    def total_tiles(self) -> int:
        return self.tiles_per_image * self.batch

    def __str__(self) -> str:
        if self.tiles_per_image == 1:
            tiles = f"untiled {self.tile_w}x{self.tile_h}"
        else:
            size = f"{self.tile_h}" if self.tile_h == self.tile_w else f"{self.tile_w}x{self.tile_h}"
            tiles = f"tile {size}, {self.tiles_per_batch} per batch ({self.tiles_per_image} tiles per image)"
        if self.tile_source != "auto":
            tiles += f" [{self.tile_source}]"
        h, w = self.output_size
        return (
            f"{tiles}, {self.precision} on {self.device.type}, "
            f"predicted {memory.human_bytes(self.predicted_bytes)} of {memory.human_bytes(self.free_bytes)} free "
            f"(budget {memory.human_bytes(self.budget_bytes)}), output {w}x{h}"
        )


@dataclass
class UpscaleReport:
    """What `upscale` decided and what actually happened."""

    plan: UpscalePlan
    seconds: float = 0.0
    tile: int = 0  # the tile side that was finally used (smaller than planned after an out-of-memory)
    tiles_per_batch: int = 0
    batch_splits: int = 0
    tile_shrinks: int = 0
    fp32_redos: int = 0
    forwards: int = 0
    actual_peak_bytes: int | None = None  # CUDA: max_memory_allocated during the run; None elsewhere
    peak_rss_bytes: int = 0  # the process's peak resident memory so far (host RAM)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [str(self.plan)]
        if self.tile_shrinks or self.batch_splits:
            parts.append(f"out-of-memory recovered: now tile {self.tile}, {self.tiles_per_batch} per batch")
        if self.fp32_redos:
            parts.append(f"{self.fp32_redos} batch(es) redone in fp32 (non-finite output)")
        if self.actual_peak_bytes is not None:
            parts.append(f"actual peak {memory.human_bytes(self.actual_peak_bytes)}")
        parts.append(f"{self.seconds:.1f} s")
        return "; ".join(parts)


def tile_multiple(model) -> int:
    """The side multiple tiles must have: the model's, else its config's window, else 1."""
    multiple = getattr(model, "tile_multiple", None)
    if multiple is None:
        multiple = getattr(getattr(model, "config", None), "window_size", 1)
    return max(1, int(multiple))


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def check_model_has_values(model) -> None:
    """Refuse, in one line naming the device, a model whose weights are on the meta device (shapes, no values)."""
    if model_device(model).type == "meta":
        raise ValueError(
            "the model's weights are on the 'meta' device, which holds shapes but no values (a model built under "
            "torch.device('meta') or with empty weights); load its weights first, e.g. swin2sr.load_model(path) "
            "or model.load_state_dict(state, assign=True)"
        )


def resolve_precision(precision, device: torch.device, model) -> torch.dtype:
    """auto: bf16 (else fp16) on CUDA when FP16_ENABLE allows and the model is ours; fp32 elsewhere.

    CPU stays fp32 by default: bf16 on CPU trades quality for a speed-up that
    depends on the CPU (measured by the engine work), so it is opt-in.
    Foreign models keep fp32 unless they declare half-precision support.
    """
    if isinstance(precision, torch.dtype):
        return precision
    if precision != "auto":
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {precision!r}")
        return PRECISIONS[precision]
    if device.type != "cuda" or not settings.fp16_enabled():
        return torch.float32
    ours = getattr(model, "config", None) is not None
    if torch.cuda.is_bf16_supported() and (ours or getattr(model, "supports_bfloat16", False)):
        return torch.bfloat16
    if ours or getattr(model, "supports_half", False):
        return torch.float16
    return torch.float32


def prescaled_size(height: int, width: int, scale: int, max_input_size: int | None) -> tuple[int, int]:
    """(h, w) after the MAX_INPUT_SIZE rule: longest side <= the limit and output side <= 4096; aspect kept."""
    limit = settings.max_input_size(max_input_size)
    if limit == 0:
        return height, width
    limit = min(limit, settings.MAX_OUTPUT_SIDE // scale)
    longest = max(height, width)
    if longest <= limit:
        return height, width
    factor = limit / longest
    return max(1, round(height * factor)), max(1, round(width * factor))


def plan_upscale(
    model: ModelLike,
    height: int,
    width: int,
    batch: int = 1,
    *,
    tile="auto",
    overlap: int = 16,
    precision="auto",
    max_input_size: int | None = None,
    memory_budget: int | None = None,
    free_memory: int | Callable[[], int] | None = None,
    device=None,
    **upscale_only,
) -> UpscalePlan:
    """Decide pre-scale, precision, tile and tiles per batch for an image of height x width; no work is done.

    Takes the same options as `upscale`, so a host can pass one options dict to both; those that
    only matter while running (progress, cancel, ...) are accepted and ignored.
    """
    model = as_model(model)
    unknown = set(upscale_only) - UPSCALE_ONLY_OPTIONS
    if unknown:
        raise TypeError(f"plan_upscale() got unexpected options {sorted(unknown)}")
    check_upscale_options(tile=tile, overlap=overlap, precision=precision, max_input_size=max_input_size,
                          memory_budget=memory_budget, free_memory=free_memory, device=device)  # fmt: skip
    for name, value in (("height", height), ("width", width), ("batch", batch)):
        whole_number(name, value, minimum=1)
    scale = int(model.scale)
    device = torch.device(device) if device is not None else model_device(model)
    dtype = resolve_precision(precision, device, model)
    mh, mw = prescaled_size(height, width, scale, max_input_size)
    budget, free = memory.memory_budget(device, memory_budget, free_memory)
    multiple = tile_multiple(model)
    chunk = memory.budget_chunk_tokens(model, dtype, device, budget)

    def cost(grid, k: int = 1) -> int:
        return memory.estimate_memory(model, grid.tile_h, grid.tile_w, k, dtype, device, chunk)

    def grid_of(side: int):
        return tile_grid(mh, mw, side, overlap, scale, multiple)

    fixed = settings.tile_size(tile)
    if fixed is not None:
        source = "argument" if tile not in (None, "auto") else "TILE_SIZE"
        side = max(mh, mw) if fixed == 0 else align_down(fixed, multiple)
    else:
        source = "auto"
        # the forecast for a tile side before balancing grows with the side: searchable, and balancing only shrinks
        side = _largest_fitting_tile(
            lambda t: memory.estimate_memory(model, min(t, mh), min(t, mw), 1, dtype, device, chunk),
            max(mh, mw), multiple, budget,
        )
    side = min(side, memory.padded(max(mh, mw), multiple))
    grid = grid_of(side)
    per_batch = 1
    while per_batch < min(len(grid), MAX_TILES_PER_BATCH) and cost(grid, per_batch + 1) <= budget:
        per_batch += 1
    return UpscalePlan(
        input_size=(height, width),
        model_input_size=(mh, mw),
        output_size=(mh * scale, mw * scale),
        scale=scale,
        batch=batch,
        tile=side,
        tile_h=grid.tile_h,
        tile_w=grid.tile_w,
        overlap=grid.overlap,
        tiles_per_image=len(grid),
        tiles_per_batch=per_batch,
        dtype=dtype,
        device=device,
        predicted_bytes=cost(grid, per_batch),
        budget_bytes=budget,
        free_bytes=free,
        tile_source=source,
        chunk_tokens=chunk,
    )


def _largest_fitting_tile(cost: Callable[[int], int], longest: int, multiple: int, budget: int) -> int:
    """Largest multiple of the window (up to the whole image) whose forecast fits; the smallest tile otherwise."""
    smallest = max(MIN_TILE, multiple) // multiple
    lo, hi = smallest, max(smallest, memory.padded(longest, multiple) // multiple)
    while lo < hi:  # the forecast grows with the tile: binary search for the last side that fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(mid * multiple) <= budget else (lo, mid - 1)
    return lo * multiple


def upscale(
    model: ModelLike,
    image,
    *,
    tile="auto",
    overlap: int = 16,
    precision="auto",
    max_input_size: int | None = None,
    memory_budget: int | None = None,
    free_memory: int | Callable[[], int] | None = None,
    device=None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    is_oom: Callable[[BaseException], bool] | None = None,
    output_dtype=None,
    layout: str | None = None,
    return_report: bool = False,
):
    """Upscale `image` with `model` (scale s), tiled and memory-planned; returns the same kind of image.

    model: a loaded model (swin2sr.load_model / load_any_model) or a spandrel ImageModelDescriptor
      (ComfyUI's UPSCALE_MODEL); anything else is refused with a TypeError before any work.
    image: PIL image of any mode (16-bit, 32-bit and float modes keep their precision), numpy HW/HWC
      (uint8, uint16, float in 0..1), or a tensor [B,C,H,W] / ComfyUI [B,H,W,C] (layout rule in
      swin2sr.io.images; pass layout= to be explicit).  The result comes back in the closest mode/dtype.
      RGBA keeps its alpha (resized bilinearly, not by the model), gray comes back gray, values are
      clamped to 0..1; float values far above 1 (0..255 data) are refused with the fix.
    tile: "auto" (TILE_SIZE, else the largest tile whose forecast fits the budget), a side in input
      pixels (rounded down to the model's window multiple), or 0 for one untiled pass.
    overlap: input pixels shared by neighbouring tiles (at most a third of the tile), blended with a
      raised-cosine ramp.
    precision: "auto" (see resolve_precision), "fp32", "bf16", "fp16" or a torch dtype; half-precision
      batches whose output is not finite are redone in fp32.
    max_input_size: None -> MAX_INPUT_SIZE (default 1024): longer inputs are first downscaled (the
      output side also stays <= 4096); 0 keeps full resolution (the tiled entry points pass 0).
    memory_budget: a cap in bytes on top of the automatic budget.  free_memory: the host's free-bytes
      figure (int or callable) replacing our own measurement.
    device: where the model runs (default: where its weights are); the model is moved and cast for
      the run and put back afterwards.
    progress(done, total): after every batch of tiles, counting tiles of the whole job.
    cancel(): checked between batches; True raises UpscaleCancelled (its own exceptions propagate).
    is_oom(exc): recognises the host's out-of-memory errors (default: torch.OutOfMemoryError & co.).
    output_dtype: storage of the preallocated output (default uint8 for 8-bit inputs, else float32).
    return_report: also return an UpscaleReport (str() is the one-line summary).
    """
    started = time.perf_counter()
    model = as_model(model)  # the options are checked by read_and_plan
    for name, function in (("progress", progress), ("cancel", cancel), ("is_oom", is_oom)):
        if function is not None and not callable(function):
            raise TypeError(f"{name} must be a function or None, got {type(function).__name__}")
    job = read_and_plan(
        model, image, layout=layout, tile=tile, overlap=overlap, precision=precision, max_input_size=max_input_size,
        memory_budget=memory_budget, free_memory=free_memory, device=device,
    )  # fmt: skip
    result, report = upscale_planned(model, job, output_dtype=output_dtype, progress=progress, cancel=cancel,
                                     is_oom=is_oom)  # fmt: skip
    finish_report(report, started)
    return (result, report) if return_report else result


def upscale_planned(model, job: PlannedInput, *, output_dtype=None, **run) -> tuple[object, UpscaleReport]:
    """Upscale an image already read and planned (`read_and_plan`) into memory: (result, report).

    run: progress, cancel, is_oom as for `upscale`.  The caller's `job` is emptied (its float
    input is not needed for the conversion back, which makes a copy of the output).
    """
    plan, report = job.plan, UpscaleReport(plan=job.plan)
    out = images.new_output(plan.batch, *plan.output_size, job.kind, output_dtype)
    with tile_runner(model, plan, report, **run) as runner:
        for b in range(plan.batch):
            runner.run(images.resize(job.color[b : b + 1], *plan.model_input_size), out[b])
    alpha = None if job.alpha is None else images.resize_alpha(job.alpha, *plan.output_size)
    job.color = job.alpha = None
    return images.finish(out, alpha, job.kind), report


@dataclass
class PlannedInput:
    """An image read for upscaling: its colour ([B, 3, H, W], float or kept 8-bit), alpha (or None), kind and plan."""

    color: torch.Tensor
    alpha: torch.Tensor | None
    kind: images.ImageKind
    plan: UpscalePlan


def read_and_plan(model, image, *, layout: str | None = None, keep_8_bit: bool = False, **planning) -> PlannedInput:
    """Check the model and options, read any supported image and plan its upscale; warns when it is pre-scaled.

    planning: `plan_upscale`'s options (tile, overlap, precision, max_input_size, memory_budget,
    free_memory, device).  keep_8_bit: 8-bit images stay uint8 (see `images.read_batch`; the tiler
    converts a batch of tiles at a time), so a large input has no float copy.
    """
    planning = {**PLANNING_DEFAULTS, **planning}
    check_model_has_values(as_model(model))  # one-line errors for what cannot run, before the image is read
    check_upscale_options(**planning)
    batch, kind = images.read_batch(image, layout, keep_8_bit=keep_8_bit)
    color, alpha = images.split_alpha(batch, kind)
    plan = plan_upscale(model, color.shape[-2], color.shape[-1], color.shape[0], **planning)
    if plan.prescaled:  # a warning: the user gets less resolution than they may expect
        (h, w), (mh, mw) = plan.input_size, plan.model_input_size
        log.warning(
            "input %dx%d exceeds the single-pass limit (MAX_INPUT_SIZE=%d, output side <= %d): downscaled to %dx%d "
            "first; set MAX_INPUT_SIZE=0 or use the tiled upscale to keep full resolution",
            w, h, settings.max_input_size(planning.get("max_input_size")), settings.MAX_OUTPUT_SIDE, mw, mh,
        )  # fmt: skip
    log.info("%s", plan)
    return PlannedInput(color, alpha, kind, plan)


@contextlib.contextmanager
def tile_runner(
    model,
    plan: UpscalePlan,
    report: UpscaleReport,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    is_oom: Callable[[BaseException], bool] | None = None,
) -> Iterator[TileRunner]:
    """The `TileRunner` for `plan`, with the model prepared for it; what it did goes into `report` at the end.

    Whoever consumes `runner.rows(image)` decides where the rows go (a buffer, a streaming file).
    """
    with _prepared(model, plan.device, plan.dtype, report, plan.chunk_tokens) as forward:
        runner = TileRunner(
            forward, plan.scale, tile_multiple(model), plan.tile, plan.tiles_per_batch, plan.overlap,
            oom=is_oom or default_is_oom, on_oom=lambda: _release(plan.device), progress=progress,
            cancel=cancel, total_tiles=plan.total_tiles,
        )  # fmt: skip
        if plan.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(plan.device)
        yield runner
        if plan.device.type == "cuda":
            report.actual_peak_bytes = torch.cuda.max_memory_allocated(plan.device)
    report.tile, report.tiles_per_batch = runner.tile, runner.batch
    report.batch_splits, report.tile_shrinks = runner.stats.batch_splits, runner.stats.tile_shrinks
    report.forwards = runner.stats.forwards


def finish_report(report: UpscaleReport, started: float) -> None:
    """Stamp the time and the peak RSS; log the report when the run had to adapt."""
    report.peak_rss_bytes = system.peak_rss()
    report.seconds = time.perf_counter() - started
    if report.tile_shrinks or report.batch_splits or report.fp32_redos:
        log.info("%s", report)


class _prepared:
    """Context: a forward function for CPU float32 tiles, running the model on `device` in `dtype`.

    The model is moved to `device` for the run and moved back afterwards
    (lossless).  Another dtype runs on a cast copy: casting the caller's weights
    to half and back would round them for good.  A half-precision batch whose
    output is not finite is redone in fp32 (engine.run_with_fallback) and counted.
    A Swin2SR model runs with the plan's chunk size (its own `chunk_tokens` when the user set one), set for the
    run only.
    """

    def __init__(
        self, model, device: torch.device, dtype: torch.dtype, report: UpscaleReport, chunk_tokens: int = 0
    ) -> None:
        self.model, self.device, self.dtype, self.report = model, device, dtype, report
        self.chunk_tokens = chunk_tokens

    def __enter__(self) -> Callable[[torch.Tensor], torch.Tensor]:
        params = list(self.model.parameters()) if hasattr(self.model, "parameters") else []
        self.home = params[0].device if params else None
        if self.home is not None and self.home != self.device:
            self.model.to(self.device)
        same = not params or params[0].dtype == self.dtype
        self.runner = self.model if same else copy.deepcopy(self.model).to(dtype=self.dtype)
        self.saved_chunk = getattr(self.runner, "chunk_tokens", False)
        if self.saved_chunk is not False and self.chunk_tokens:
            self.runner.chunk_tokens = self.chunk_tokens
        return self._forward

    def _forward(self, tiles: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = engine.run_with_fallback(self.runner, tiles.to(self.device, self.dtype, non_blocking=True))
        if out.dtype != self.dtype:
            self.report.fp32_redos += 1
        return out.float().cpu()

    def __exit__(self, *exc) -> None:
        if self.saved_chunk is not False and self.chunk_tokens:
            self.runner.chunk_tokens = self.saved_chunk
        self.runner = None
        if self.home is not None and self.home != self.device:
            self.model.to(self.home)


def _release(device: torch.device) -> None:
    """Give cached blocks back after an out-of-memory so the smaller retry can use them."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
