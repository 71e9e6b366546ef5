"""Face Region Refine and the two-stage (Real-ESRGAN → Swin2SR) pipeline.

Both are the same operation at heart: upscale a few regions of a source image on their own, through the
tiling engine (``swin2sr.upscale``; there is no second tiling path), and paste them into a base image
through soft mattes with colour matching (:mod:`swin2sr.matte`).

* :func:`refine_faces`: base = the whole image upscaled by `model` (or given); each face crop is first
  enlarged so the face model's output reaches `face_size` px (pore-level detail on small faces), then
  resized into its place.
* :func:`two_stage`: stage 1 (any spandrel model, e.g. Real-ESRGAN x2/x4 or Compact) brings the image to
  scale/2 (a x4 model is followed by an exact antialiased bicubic downscale); stage 2 (Swin2SR x2) runs
  over the whole result, or only over regions (faces, a mask, boxes) pasted into a bicubic x2 of stage 1.

Both accept every image kind `swin2sr.upscale` accepts (PIL, numpy, tensors BCHW or ComfyUI BHWC) and
give the same kind back; inside, images are float tensors [B,3,H,W] in 0..1 on the host.  Keyword
arguments they do not name (tile, overlap, precision, device, memory_budget, is_oom...) go to every
`swin2sr.upscale` call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .faces import Detector, FaceBox, as_boxes, boxes_from_mask, crop_region, detect_faces, select_faces
from .foreign import ModelLike, as_model
from .io import images
from .matte import Compositor, ellipse_matte, fade_at_inner_edges, mask_matte, match_color
from .upscale import plan_upscale, tile_multiple, upscale

logger = logging.getLogger("swin2sr")

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]
BoxLike = FaceBox | Sequence[float]


@dataclass
class RefinedRegion:
    """One refined region, laid out before any work. `box` and `crop` are in source-image pixels, `place` in
    output pixels (all x0, y0, x1, y1); `processed_size` (h, w) is what the model produces before the resize
    into place; `crop_image` holds that processed crop [1,3,h,w] when `debug=True`."""

    image_index: int
    box: FaceBox
    crop: tuple[int, int, int, int]
    place: tuple[int, int, int, int]
    processed_size: tuple[int, int]
    crop_image: torch.Tensor | None = None


@dataclass(frozen=True)
class RegionSettings:
    """How regions are cropped, processed and pasted (see :func:`refine_faces` for each field)."""

    crop_factor: float = 2.5
    face_size: int = 1024
    mask_grow: float = 1.3
    feather: float = 0.3
    color_match: bool = True


@dataclass(frozen=True)
class Selection:
    """Which detected faces to refine (see :func:`swin2sr.faces.select_faces`)."""

    threshold: float = 0.5
    min_size: float = 16
    max_faces: int = 0
    face_index: int | None = None


@dataclass
class PipelineReport:
    """What a pipeline did: regions pasted (None: the whole image), seconds per stage, and the engine's
    UpscaleReport of every call (``.plan`` holds what the planner chose: tile, precision, predicted memory)."""

    regions: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    upscale_reports: list = field(default_factory=list)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started

    def times(self) -> str:
        return ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())

    def __str__(self) -> str:
        return f"{self.regions} region(s); {self.times()}"


@dataclass(kw_only=True)
class TwoStageReport(PipelineReport):
    """Also the sizes (h, w), decided before any work."""

    input_size: tuple[int, int]
    stage1_size: tuple[int, int]
    output_size: tuple[int, int]
    stage1_downscaled: bool

    def __str__(self) -> str:
        (h, w), (mh, mw), (oh, ow) = self.input_size, self.stage1_size, self.output_size
        where = "whole image" if self.regions is None else f"{self.regions} region(s)"
        down = " (x4 model, exact downscale)" if self.stage1_downscaled else ""
        return f"{w}x{h} -> stage 1 {mw}x{mh}{down} -> stage 2 on {where} -> {ow}x{oh}; {self.times()}"


# ---------------------------------------------------------------- public API


def refine_faces(
    image,
    model: ModelLike,
    *,
    base=None,
    face_model: ModelLike | None = None,
    detector: str | Detector = "auto",
    boxes: Sequence[BoxLike] | None = None,
    mask=None,
    threshold: float = 0.5,
    min_size: float = 16,
    max_faces: int = 0,
    face_index: int | None = None,
    crop_factor: float = 2.5,
    face_size: int = 1024,
    mask_grow: float = 1.3,
    feather: float = 0.3,
    color_match: bool = True,
    max_input_size: int | None = None,
    layout: str | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    debug: bool = False,
    return_report: bool = False,
    **options,
):
    """Upscale `image` with `model` (or take the already upscaled `base` of it) and re-upscale each face.

    Faces come from `boxes` (source pixels, applied to every image of the batch), else from the connected
    regions of `mask` (any resolution of the same aspect; the matte then follows the mask's shape), else
    from `detector` (a name from :mod:`swin2sr.faces`, or your own callable: RGB uint8 HWC array -> FaceBoxes),
    filtered by `threshold`, `min_size` (px, shorter side),
    `max_faces` (k largest, 0 = all) and `face_index` (in largest-first order).

    Each face's crop (the box grown `crop_factor` times) is enlarged so that `face_model`'s (default
    `model`) output has `face_size` px on its longer side (never shrunk; 0 = the model's own scale), upscaled
    through the tiling engine, resized into its place in the base, colour matched to the surroundings and
    pasted through an ellipse `mask_grow` times the face box (or the mask) with a soft edge `feather` times
    its smaller radius wide.

    Returns (refined image of the input's kind, union matte [B,H_out,W_out] float 0..1, one RefinedRegion per
    face); `debug=True` keeps each processed crop in ``RefinedRegion.crop_image``; `return_report=True`
    appends a PipelineReport (stage times, planner choices).  `max_input_size` applies to the base pass
    only (crops always run at full resolution).
    """
    model = as_model(model)
    face_model = model if face_model is None else as_model(face_model, "face_model")
    selection = Selection(threshold, min_size, max_faces, face_index)
    settings = RegionSettings(crop_factor, face_size, mask_grow, feather, color_match)
    source, alpha, kind = _read(image, layout)
    report = PipelineReport()
    with report.timed("detect"):
        faces = _find_regions(source, detector, boxes, mask, selection)
    run = _Engine(options, cancel, report.upscale_reports)
    if base is None:
        base_plan = run.plan(model, source.shape, max_input_size)
        out_size, base_tiles = base_plan.output_size, [base_plan.total_tiles]
    else:
        base = _read(base, layout)[0]
        _check_base(tuple(base.shape[-2:]), tuple(source.shape[-2:]))
        out_size, base_tiles = tuple(base.shape[-2:]), []
    regions = _layout(source.shape[-2:], out_size, faces, face_model, settings)
    report.regions = len(regions)
    stages = _Stages(progress, base_tiles + [run.plan(face_model, _input_shape(r, face_model)).total_tiles
                                             for r in regions])
    with report.timed("base"):
        if base is None:
            base = run(model, source, stages.next(), max_input_size)
    out_mask = _mask_at(mask, out_size, source.shape[0])
    with report.timed("faces"):
        out, union = _paste_regions(source, base, face_model, regions, out_mask, settings, stages, run, debug)
    logger.info("face refine: %s", report)
    result = (_finish(out, alpha, kind), union, regions)
    return (*result, report) if return_report else result


def two_stage(
    image,
    stage1_model: ModelLike,
    stage2_model: ModelLike,
    *,
    scale: int = 4,
    regions=None,
    detector: str | Detector = "auto",
    threshold: float = 0.5,
    min_size: float = 16,
    max_faces: int = 0,
    crop_factor: float = 2.5,
    mask_grow: float = 1.3,
    feather: float = 0.3,
    color_match: bool = True,
    layout: str | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    return_report: bool = False,
    **options,
):
    """Upscale `image` exactly `scale` times: `stage1_model` to scale / stage2.scale (a model with a
    larger scale is followed by an exact antialiased bicubic downscale), then `stage2_model` over the whole
    stage-1 image (`regions=None`) or only over ``"faces"`` (detected on the input), a mask (any resolution of
    the same aspect) or a box list (input pixels), pasted into a bicubic enlargement of stage 1 with the same
    mattes and colour matching as :func:`refine_faces`. Sizes are computed and logged before any work.
    Returns the image of the input's kind, or (image, TwoStageReport) with `return_report=True`.
    """
    stage1_model, stage2_model = as_model(stage1_model, "stage1_model"), as_model(stage2_model, "stage2_model")
    if "max_input_size" in options:
        raise ValueError("two_stage always works at full resolution (its output is exactly `scale` times the input); "
                         "drop max_input_size")
    image, alpha, kind = _read(image, layout)
    (b, _, h, w), s1, s2 = image.shape, int(stage1_model.scale), int(stage2_model.scale)
    factor = stage1_factor(scale, s1, s2)
    report = TwoStageReport(input_size=(h, w), stage1_size=(h * factor, w * factor),
                            output_size=(h * scale, w * scale), stage1_downscaled=s1 != factor)
    logger.info("two-stage plan: %s", report)

    settings = RegionSettings(crop_factor, 0, mask_grow, feather, color_match)
    pasted, mask = None, None
    if regions is not None:
        with report.timed("detect"):
            pasted, mask = _stage2_regions(image, regions, detector, Selection(threshold, min_size, max_faces),
                                           factor, report, stage2_model, settings)
        report.regions = len(pasted)
    run = _Engine(options, cancel, report.upscale_reports)
    stage2_shapes = [(b, 3, *report.stage1_size)] if pasted is None else [_input_shape(r, stage2_model) for r in pasted]
    stages = _Stages(progress, [run.plan(stage1_model, image.shape).total_tiles]
                     + [run.plan(stage2_model, shape).total_tiles for shape in stage2_shapes])

    with report.timed("stage 1"):
        mid = images.resize(run(stage1_model, image, stages.next()), *report.stage1_size)
    with report.timed("stage 2"):
        if pasted is None:
            out = run(stage2_model, mid, stages.next())
        else:
            base = images.resize(mid, *report.output_size)
            out_mask = _mask_at(mask, report.output_size, b)
            out, _ = _paste_regions(mid, base, stage2_model, pasted, out_mask, settings, stages, run, False)
    logger.info("two-stage done: %s", report)
    out = _finish(out, alpha, kind)
    return (out, report) if return_report else out


def _stage2_regions(
    image: torch.Tensor,
    regions: str | torch.Tensor | Sequence[BoxLike],
    detector: str | Detector,
    selection: Selection,
    factor: int,
    report: TwoStageReport,
    model: torch.nn.Module,
    settings: RegionSettings,
) -> tuple[list[RefinedRegion], torch.Tensor | None]:
    """Stage 2's regions laid out on the stage-1 image (faces found on the input), and the mask if one was given."""
    if isinstance(regions, str) and regions != "faces":
        raise ValueError(f"regions must be None, 'faces', a mask or a box list, got {regions!r}")
    mask = torch.as_tensor(regions) if not isinstance(regions, (str, list, tuple)) else None
    boxes = regions if isinstance(regions, (list, tuple)) else None
    found = _find_regions(image, detector, boxes, mask, selection)
    faces = [[box.scaled(factor, factor) for box in boxes_of_one] for boxes_of_one in found]
    return _layout(report.stage1_size, report.output_size, faces, model, settings), mask


def stage1_factor(scale: int, s1: int, s2: int) -> int:
    """The factor stage 1 must reach so that stage 2 (x`s2`) lands exactly on `scale`; ValueError otherwise."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a whole number >= 1 (the total factor, e.g. 4), got {scale!r}")
    if scale % s2:
        raise ValueError(f"the total scale {scale} is not a multiple of the stage-2 model's x{s2}")
    factor = scale // s2
    if s1 < factor:
        raise ValueError(f"stage 1 must reach x{factor} but its model is x{s1}; use a x{factor} (or larger) model")
    return factor


# ---------------------------------------------------------------- regions


def _find_regions(
    image: torch.Tensor,
    detector: str | Detector,
    boxes: Sequence[BoxLike] | None,
    mask: torch.Tensor | None,
    selection: Selection,
) -> list[list[FaceBox]]:
    """Per image of the batch, the faces to refine, in source pixels, largest first (given boxes: as given).

    `face_index` picks one face, counted largest first, whichever way the faces came (select_faces).
    """
    if boxes is not None:
        given = as_boxes(boxes)
        _check_inside(given, *image.shape[-2:])
        if selection.face_index is not None:
            given = select_faces(given, threshold=-math.inf, face_index=selection.face_index)
        return [given for _ in range(image.shape[0])]
    if mask is not None:
        masks = _mask_at(mask, image.shape[-2:], image.shape[0])
        return [select_faces(boxes_from_mask(m[0]), min_size=0, face_index=selection.face_index) for m in masks]
    return [
        select_faces(
            detect_faces(img, detector),
            threshold=selection.threshold,
            min_size=selection.min_size,
            max_faces=selection.max_faces,
            face_index=selection.face_index,
        )
        for img in image
    ]


def _check_inside(boxes: list[FaceBox], height: int, width: int) -> None:
    """A box entirely outside the image is a mistake (wrong coordinates or image), not an empty region."""
    for box in boxes:
        if box.x1 <= 0 or box.y1 <= 0 or box.x0 >= width or box.y0 >= height:
            raise ValueError(f"box ({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g}) lies outside the {width}x{height} "
                             "image; boxes are (x0, y0, x1, y1) in input pixels")


def _check_base(base_size: tuple[int, int], source_size: tuple[int, int]) -> None:
    """`base` must be the input upscaled: at least as large, with the same aspect (to a pixel of rounding)."""
    (bh, bw), (h, w) = base_size, source_size
    factor = bw / w
    if bh < h or bw < w or abs(bh - h * factor) > max(1.0, factor):
        raise ValueError(f"base is {bw}x{bh} but the input is {w}x{h}: base must be the input upscaled (same aspect, "
                         "not smaller); pass the upscaled version of this input")


def _layout(
    source_size: tuple[int, int],
    out_size: tuple[int, int],
    faces: list[list[FaceBox]],
    model: torch.nn.Module,
    settings: RegionSettings,
) -> list[RefinedRegion]:
    """Where each face is cropped, processed and placed, decided before any work.

    The crop is enlarged before the model when its output would fall short of `face_size` (never shrunk).
    """
    (h, w), (oh, ow) = source_size, out_size
    sx, sy, scale = ow / w, oh / h, int(model.scale)
    multiple = tile_multiple(model)
    regions = []
    for index, found in enumerate(faces):
        for box in found:
            crop = x0, y0, x1, y1 = crop_region(box, settings.crop_factor, h, w, multiple)
            place = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
            ch, cw = y1 - y0, x1 - x0
            enlarge = max(1.0, settings.face_size / (max(ch, cw) * scale)) if settings.face_size else 1.0
            processed = (round(ch * enlarge) * scale, round(cw * enlarge) * scale)
            regions.append(RefinedRegion(index, box, crop, place, processed))
    return regions


def _input_shape(region: RefinedRegion, model: torch.nn.Module) -> tuple[int, int, int, int]:
    """The [1,3,h,w] shape the model receives for `region`."""
    scale = int(model.scale)
    return (1, 3, region.processed_size[0] // scale, region.processed_size[1] // scale)


def _paste_regions(
    source: torch.Tensor,
    base: torch.Tensor,
    model: torch.nn.Module,
    regions: list[RefinedRegion],
    out_mask: torch.Tensor | None,
    settings: RegionSettings,
    stages: "_Stages",
    run: "_Engine",
    debug: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Upscale every region's crop of `source` with `model`, paste it into `base`: (image, union [B,H,W])."""
    (h, w), (oh, ow) = source.shape[-2:], base.shape[-2:]
    compositor = Compositor(base)
    for region in regions:
        (x0, y0, x1, y1), (px0, py0, px1, py1), index = region.crop, region.place, region.image_index
        crop = images.resize(source[index : index + 1, :, y0:y1, x0:x1], *_input_shape(region, model)[-2:])
        processed = run(model, crop, stages.next())
        patch = images.resize(processed, py1 - py0, px1 - px0)
        matte = _matte(region.box.scaled(ow / w, oh / h), region.place, out_mask, index, settings, (oh, ow))
        if settings.color_match:
            patch = match_color(patch, base[index : index + 1, :, py0:py1, px0:px1].float(), matte)
        compositor.add(index, region.place, patch, matte)
        if debug:
            region.crop_image = processed
    out, union = compositor.result()
    return out, union[:, 0]


def _matte(
    box: FaceBox,
    place: tuple[int, int, int, int],
    out_mask: torch.Tensor | None,
    index: int,
    settings: RegionSettings,
    out_size: tuple[int, int],
) -> torch.Tensor:
    """The paste matte [1,1,h,w] of one region: the mask's shape when a mask was given, else an ellipse
    `mask_grow` times the face box; soft edge `feather` times its smaller radius; zero at inner crop edges."""
    x0, y0, x1, y1 = place
    radius = min(box.width, box.height) * settings.mask_grow / 2
    feather_px = max(1.0, settings.feather * radius)
    if out_mask is not None:
        matte = mask_matte(out_mask[index : index + 1, :, y0:y1, x0:x1], feather_px)
    else:
        cx, cy = (box.x0 + box.x1) / 2 - x0, (box.y0 + box.y1) / 2 - y0
        rx, ry = box.width * settings.mask_grow / 2, box.height * settings.mask_grow / 2
        matte = ellipse_matte(y1 - y0, x1 - x0, (cx - rx, cy - ry, cx + rx, cy + ry), feather_px)
    return fade_at_inner_edges(matte, place, *out_size, margin=feather_px)


# ---------------------------------------------------------------- plumbing


class _Engine:
    """Calls into the tiling engine (the project's only tiling path) with the caller's options and cancel
    callback, collecting each call's UpscaleReport."""

    def __init__(self, options: dict, cancel: Cancel | None, reports: list) -> None:
        self.options, self.cancel, self.reports = options, cancel, reports

    def __call__(self, model, image: torch.Tensor, progress: Progress | None, max_input_size: int | None = 0):
        """`image` [B,3,H,W] float upscaled by `model`: float [B,3,H*s,W*s] in 0..1."""
        out, report = upscale(model, image, **self.options, max_input_size=max_input_size, layout="BCHW",
                                      output_dtype=torch.float32, progress=progress, cancel=self.cancel,
                                      return_report=True)
        self.reports.append(report)
        return out

    def plan(self, model, shape: Sequence[int], max_input_size: int | None = 0):
        """The engine's plan (tiles, output size, memory) for an input of `shape` [B,C,H,W], before any work."""
        b, _, h, w = shape
        return plan_upscale(model, h, w, b, **self.options, max_input_size=max_input_size)


def _read(image, layout: str | None) -> tuple[torch.Tensor, torch.Tensor | None, images.ImageKind]:
    """Any image kind -> (RGB float [B,3,H,W] 0..1, alpha or None, its kind for the way back)."""
    batch, kind = images.read_batch(image, layout)
    color, alpha = images.split_alpha(batch, kind)
    return color, alpha, kind


def _finish(color: torch.Tensor, alpha: torch.Tensor | None, kind: images.ImageKind):
    """Back to the caller's kind; alpha is resized as a mask, never by the model."""
    if alpha is not None:
        alpha = images.resize_alpha(alpha, *color.shape[-2:])
    return images.finish(color, alpha, kind)


def _mask_at(mask, size: tuple[int, int], batch: int) -> torch.Tensor | None:
    """`mask` ([H,W], [B,H,W] or [B,1,H,W], any resolution with the image's aspect) as [batch,1,h,w] at `size`."""
    if mask is None:
        return None
    m = torch.as_tensor(mask).float()
    m = m.reshape(1, 1, *m.shape) if m.ndim == 2 else m[:, None] if m.ndim == 3 else m
    h, w = size
    if m.ndim != 4 or m.shape[1] != 1 or abs(m.shape[-1] / m.shape[-2] - w / h) > 0.02 * w / h:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit an image of {w}x{h}: give [H,W], "
                         "[B,H,W] or [B,1,H,W] at the input or output resolution")
    if m.shape[0] not in (1, batch):
        raise ValueError(f"mask batch {m.shape[0]} does not match the image batch {batch}")
    if tuple(m.shape[-2:]) != (h, w):
        m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    return m.expand(batch, -1, -1, -1).clamp(0, 1)


class _Stages:
    """One progress bar over several engine calls, counted in the tiles the planner foresaw for each call:
    call i's (done, total) maps onto its share of the sum, so hosts see a single monotonic bar."""

    def __init__(self, progress: Progress | None, tiles: list[int]) -> None:
        self.progress, self.tiles, self.index = progress, [max(1, t) for t in tiles], -1

    def next(self) -> Progress | None:
        self.index += 1
        if self.progress is None:
            return None
        offset, share, total = sum(self.tiles[: self.index]), self.tiles[self.index], sum(self.tiles)

        def report(done: int, stage_total: int) -> None:
            self.progress(offset + math.floor(share * min(done, stage_total) / max(stage_total, 1)), total)

        return report
