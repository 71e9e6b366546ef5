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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

import swin2sr

from . import images
from .faces import FaceBox, as_boxes, boxes_from_mask, crop_region, detect_faces, select_faces
from .matte import Compositor, ellipse_matte, fade_at_inner_edges, mask_matte, match_color
from .upscale import tile_multiple

logger = logging.getLogger("swin2sr")

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]
BoxLike = FaceBox | Sequence[float]


@dataclass
class RefinedRegion:
    """One refined region. `box` and `crop` are in source-image pixels, `place` in output pixels
    (all x0, y0, x1, y1); `processed_size` (h, w) is what the model produced before the resize into place;
    `crop_image` holds that processed crop [1,3,h,w] when `debug=True`."""

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
class TwoStageReport:
    """Sizes (h, w) decided before any work, the engine's report of every upscale call, and stage times."""

    input_size: tuple[int, int]
    stage1_size: tuple[int, int]
    output_size: tuple[int, int]
    stage1_downscaled: bool
    regions: int | None = None  # None: stage 2 covered the whole image
    upscale_reports: list = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        (h, w), (mh, mw), (oh, ow) = self.input_size, self.stage1_size, self.output_size
        where = "whole image" if self.regions is None else f"{self.regions} region(s)"
        times = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        down = " (x4 model, exact downscale)" if self.stage1_downscaled else ""
        return f"{w}x{h} -> stage 1 {mw}x{mh}{down} -> stage 2 on {where} -> {ow}x{oh}; {times}"


# ---------------------------------------------------------------- public API


def refine_faces(
    image,
    model: torch.nn.Module,
    *,
    base=None,
    face_model: torch.nn.Module | None = None,
    detector: str = "auto",
    boxes: Sequence[BoxLike] | None = None,
    mask: torch.Tensor | None = None,
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
    **options,
) -> tuple[object, torch.Tensor, list[RefinedRegion]]:
    """Upscale `image` with `model` (or take the already upscaled `base` of it) and re-upscale each face.

    Faces come from `boxes` (source pixels, applied to every image of the batch), else from the connected
    regions of `mask` (any resolution of the same aspect; the matte then follows the mask's shape), else
    from `detector` (see :mod:`swin2sr.faces`), filtered by `threshold`, `min_size` (px, shorter side),
    `max_faces` (k largest, 0 = all) and `face_index` (in largest-first order).

    Each face's crop (the box grown `crop_factor` times) is enlarged so that `face_model`'s (default
    `model`) output has `face_size` px on its longer side (never shrunk; 0 = the model's own scale), upscaled
    through the tiling engine, resized into its place in the base, colour matched to the surroundings and
    pasted through an ellipse `mask_grow` times the face box (or the mask) with a soft edge `feather` times
    its smaller radius wide.

    Returns (refined image of the input's kind, union matte [B,H_out,W_out] float 0..1, one RefinedRegion per
    face); `debug=True` keeps each processed crop in ``RefinedRegion.crop_image``.  `max_input_size` applies
    to the base pass only (crops always run at full resolution).
    """
    face_model = face_model or model
    selection = Selection(threshold, min_size, max_faces, face_index)
    settings = RegionSettings(crop_factor, face_size, mask_grow, feather, color_match)
    source, alpha, kind = _read(image, layout)
    faces = _find_regions(source, detector, boxes, mask, selection)
    stages = _Stages(progress, (base is None) + sum(map(len, faces)))
    run = _Engine(options, cancel)
    if base is None:
        base = run(model, source, stages.next(), max_input_size)
    else:
        base = _read(base, layout)[0]
    out_mask = _mask_at(mask, base.shape[-2:], source.shape[0])
    out, union, refined = _paste_regions(source, base, face_model, faces, out_mask, settings, stages, run, debug)
    return _finish(out, alpha, kind), union, refined


def two_stage(
    image,
    stage1_model: torch.nn.Module,
    stage2_model: torch.nn.Module,
    *,
    scale: int = 4,
    regions: str | torch.Tensor | Sequence[BoxLike] | None = None,
    detector: str = "auto",
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
    """Upscale `image` [B,3,H,W] exactly `scale` times: `stage1_model` to scale / stage2.scale (a model with a
    larger scale is followed by an exact antialiased bicubic downscale), then `stage2_model` over the whole
    stage-1 image (`regions=None`) or only over ``"faces"`` (detected on the input), a mask (any resolution of
    the same aspect) or a box list (input pixels), pasted into a bicubic enlargement of stage 1 with the same
    mattes and colour matching as :func:`refine_faces`. Sizes are computed and logged before any work.
    Returns the image of the input's kind, or (image, TwoStageReport) with `return_report=True`.
    """
    image, alpha, kind = _read(image, layout)
    (h, w), s1, s2 = image.shape[-2:], int(stage1_model.scale), int(stage2_model.scale)
    factor = stage1_factor(scale, s1, s2)
    report = TwoStageReport((h, w), (h * factor, w * factor), (h * scale, w * scale), s1 != factor)
    logger.info("two-stage plan: %s", report)

    started = time.perf_counter()
    whole = regions is None
    if not whole:
        selection = Selection(threshold, min_size, max_faces)
        mask = regions if isinstance(regions, torch.Tensor) else None
        boxes = None if isinstance(regions, (str, torch.Tensor)) else regions
        if isinstance(regions, str) and regions != "faces":
            raise ValueError(f"regions must be None, 'faces', a mask or a box list, got {regions!r}")
        faces = [[b.scaled(factor, factor) for b in found] for found in _find_regions(image, detector, boxes, mask, selection)]
        report.regions = sum(map(len, faces))
    stages = _Stages(progress, 1 + (1 if whole else report.regions))
    run = _Engine(options, cancel, report.upscale_reports)
    report.seconds["detect"] = time.perf_counter() - started

    started = time.perf_counter()
    mid = images.resize(run(stage1_model, image, stages.next()), *report.stage1_size)
    report.seconds["stage 1"] = time.perf_counter() - started

    started = time.perf_counter()
    if whole:
        out = run(stage2_model, mid, stages.next())
    else:
        settings = RegionSettings(crop_factor, 0, mask_grow, feather, color_match)
        base = images.resize(mid, *report.output_size)
        out_mask = _mask_at(mask, report.output_size, image.shape[0])
        out, _, _ = _paste_regions(mid, base, stage2_model, faces, out_mask, settings, stages, run, False)
    report.seconds["stage 2"] = time.perf_counter() - started
    logger.info("two-stage done: %s", report)
    out = _finish(out, alpha, kind)
    return (out, report) if return_report else out


def stage1_factor(scale: int, s1: int, s2: int) -> int:
    """The factor stage 1 must reach so that stage 2 (x`s2`) lands exactly on `scale`; ValueError otherwise."""
    if scale % s2:
        raise ValueError(f"the total scale {scale} is not a multiple of the stage-2 model's x{s2}")
    factor = scale // s2
    if s1 < factor:
        raise ValueError(f"stage 1 must reach x{factor} but its model is x{s1}; use a x{factor} (or larger) model")
    return factor


# ---------------------------------------------------------------- regions


def _find_regions(
    image: torch.Tensor,
    detector: str,
    boxes: Sequence[BoxLike] | None,
    mask: torch.Tensor | None,
    selection: Selection,
) -> list[list[FaceBox]]:
    """Per image of the batch, the faces to refine, in source pixels, largest first."""
    if boxes is not None:
        return [as_boxes(boxes) for _ in range(image.shape[0])]
    if mask is not None:
        masks = _mask_at(mask, image.shape[-2:], image.shape[0])
        return [select_faces(boxes_from_mask(m[0]), min_size=0) for m in masks]
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


def _paste_regions(
    source: torch.Tensor,
    base: torch.Tensor,
    model: torch.nn.Module,
    faces: list[list[FaceBox]],
    out_mask: torch.Tensor | None,
    settings: RegionSettings,
    stages: "_Stages",
    run: "_Engine",
    debug: bool,
) -> tuple[torch.Tensor, torch.Tensor, list[RefinedRegion]]:
    """Upscale every face's crop of `source` with `model` and paste it into `base`."""
    (h, w), (oh, ow) = source.shape[-2:], base.shape[-2:]
    sx, sy = ow / w, oh / h
    multiple = tile_multiple(model)
    compositor = Compositor(base)
    refined = []
    for index, found in enumerate(faces):
        for box in found:
            crop = crop_region(box, settings.crop_factor, h, w, multiple)
            x0, y0, x1, y1 = crop
            place = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
            crop_image = source[index : index + 1, :, y0:y1, x0:x1]
            patch, processed = _process_crop(crop_image, model, place, settings, stages.next(), run)
            matte = _matte(box.scaled(sx, sy), place, out_mask, index, settings, (oh, ow))
            if settings.color_match:
                px0, py0, px1, py1 = place
                patch = match_color(patch, base[index : index + 1, :, py0:py1, px0:px1].float(), matte)
            compositor.add(index, place, patch, matte)
            refined.append(RefinedRegion(index, box, crop, place, tuple(processed.shape[-2:]),
                                         processed if debug else None))
    out, union = compositor.result()
    return out, union[:, 0], refined


def _process_crop(
    crop: torch.Tensor,
    model: torch.nn.Module,
    place: tuple[int, int, int, int],
    settings: RegionSettings,
    progress: Progress | None,
    run: "_Engine",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the crop upscaled and resized to its place, the model's output before that resize)."""
    h, w = crop.shape[-2:]
    scale = int(model.scale)
    enlarge = max(1.0, settings.face_size / (max(h, w) * scale)) if settings.face_size else 1.0
    if enlarge > 1.0:
        crop = images.resize(crop, round(h * enlarge), round(w * enlarge))
    processed = run(model, crop, progress)
    x0, y0, x1, y1 = place
    return images.resize(processed, y1 - y0, x1 - x0), processed


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

    def __init__(self, options: dict, cancel: Cancel | None, reports: list | None = None) -> None:
        self.options, self.cancel = options, cancel
        self.reports = [] if reports is None else reports

    def __call__(self, model, image: torch.Tensor, progress: Progress | None, max_input_size: int | None = 0):
        """`image` [B,3,H,W] float upscaled by `model`: float [B,3,H*s,W*s] in 0..1."""
        out, report = swin2sr.upscale(model, image, **self.options, max_input_size=max_input_size, layout="BCHW",
                                      output_dtype=torch.float32, progress=progress, cancel=self.cancel,
                                      return_report=True)
        self.reports.append(report)
        return out


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
    """One progress bar over several engine calls: stage i's (done, total) maps onto steps
    [i·1000, (i+1)·1000) of count·1000, so hosts see a single monotonic bar."""

    STEPS = 1000

    def __init__(self, progress: Progress | None, count: int) -> None:
        self.progress, self.count, self.index = progress, max(count, 1), -1

    def next(self) -> Progress | None:
        self.index += 1
        if self.progress is None:
            return None
        offset, total = self.index * self.STEPS, self.count * self.STEPS

        def report(done: int, stage_total: int) -> None:
            self.progress(offset + math.floor(self.STEPS * done / max(stage_total, 1)), total)

        return report
