"""Face boxes: offline detection, selection, boxes from a mask, and crop geometry.

Detection must work offline after a plain install, with no download at run time, and must never make a
host environment install or downgrade torch, numpy or opencv.  So the best detector is embedded:

* ``"mtcnn"``: MTCNN (:mod:`swin2sr.mtcnn`), torch only, its 2 MB of weights inside the package (MIT,
  from facenet-pytorch's wheel; installing facenet-pytorch itself would pin torch<2.3 and numpy<2).
  No false alarms in our measurements, robust to scale; ``threshold`` filters its face probability.
* ``"haar"``: OpenCV's frontal-face Haar cascade, used only when chosen, or by ``"auto"`` if the MTCNN
  weights are missing.  The cascades ship in opencv-python(-headless) 4.x and opencv-contrib-python;
  opencv 5.x headless ships none, so this backend reports itself unavailable there instead of asking
  for a downgrade.  It gives no confidence (score 1.0) and raises more false alarms.

Masks and explicit box lists need no detector at all.  Boxes are in source-image pixels, x1/y1
exclusive, as floats (detectors return sub-pixel boxes).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger("swin2sr")

# Detection runs on a copy no larger than this (long side): faster, and Haar cascades raise false alarms
# on large images (4 of 5 boxes were wrong on a 2048 px astronaut).  MTCNN looks for faces of >= 20 px
# in that copy, i.e. >= 80 px in a 4096 px image.
DETECT_MAX_SIDE = 1024


@dataclass(frozen=True)
class FaceBox:
    """One face (or region) in source-image pixels; ``score`` is the detector's confidence (1.0 when given)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    def scaled(self, sx: float, sy: float) -> "FaceBox":
        return replace(self, x0=self.x0 * sx, y0=self.y0 * sy, x1=self.x1 * sx, y1=self.y1 * sy)


Detector = Callable[[np.ndarray], list[FaceBox]]
"""A detector takes an RGB uint8 HWC array and returns boxes in its pixels."""


# ---------------------------------------------------------------- backends


def _mtcnn() -> Detector:
    from .mtcnn import MTCNN

    net = MTCNN()

    def detect(rgb: np.ndarray) -> list[FaceBox]:
        return [FaceBox(x0, y0, x1, y1, score=p) for x0, y0, x1, y1, p in net(rgb)]

    return detect


def _haar() -> Detector:
    import cv2

    path = _haar_cascade_path(cv2)
    cascade = cv2.CascadeClassifier(path)

    def detect(rgb: np.ndarray) -> list[FaceBox]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [FaceBox(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in np.reshape(found, (-1, 4))]

    return detect


def _haar_cascade_path(cv2) -> str:
    import os

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = os.path.join(folder or "", "haarcascade_frontalface_default.xml")
    if not hasattr(cv2, "CascadeClassifier") or not folder or not os.path.isfile(path):
        raise ImportError(f"this OpenCV ({cv2.__version__}) ships no Haar cascades (opencv 5.x headless dropped them)")
    return path


_BACKENDS: dict[str, tuple[str, Callable[[], Detector]]] = {
    # name: (module that must be importable, factory); "auto" tries them in this order.
    "mtcnn": ("safetensors", _mtcnn),
    "haar": ("cv2", _haar),
}
DETECTORS = ("auto", *_BACKENDS)


@functools.lru_cache(maxsize=None)
def get_detector(name: str = "auto") -> Detector:
    """The detector called `name`, built once; ``"auto"`` is the first one that loads. ValueError when none can."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; expected one of {DETECTORS}")
    names = list(_BACKENDS) if name == "auto" else [name]
    reasons = []
    for candidate in names:
        module, factory = _BACKENDS[candidate]
        if importlib.util.find_spec(module) is None:
            reasons.append(f"{candidate}: {module} is not installed")
            continue
        try:
            detector = factory()
        except Exception as exc:  # a broken optional package must not hide the others
            reasons.append(f"{candidate}: {exc}")
            continue
        logger.info("face detector: %s", candidate)
        return detector
    fix = "reinstall swin2sr (it embeds the MTCNN weights)" if name != "haar" else "use detector='auto'"
    raise ValueError(f"no face detector available ({'; '.join(reasons)}); {fix}, or pass a mask or a box list")


def available_detectors() -> list[str]:
    """Names of the backends whose package is importable here (without loading them)."""
    return [name for name, (module, _) in _BACKENDS.items() if importlib.util.find_spec(module) is not None]


def detect_faces(image: torch.Tensor, detector: str | Detector = "auto") -> list[FaceBox]:
    """Faces in one image [3,H,W] (float 0..1), in its pixels. The detector sees a copy of at most 1024 px."""
    _, h, w = image.shape
    factor = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = image[None].float()
    if factor < 1.0:
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        small = F.interpolate(small, size=size, mode="bicubic", antialias=True, align_corners=False)
    rgb = (small[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    run = get_detector(detector) if isinstance(detector, str) else detector
    sy, sx = h / rgb.shape[0], w / rgb.shape[1]
    return [box.scaled(sx, sy) for box in run(np.ascontiguousarray(rgb))]


# ---------------------------------------------------------------- selection


def select_faces(
    boxes: Iterable[FaceBox],
    *,
    threshold: float = 0.5,
    min_size: float = 0,
    max_faces: int = 0,
    face_index: int | None = None,
) -> list[FaceBox]:
    """Keep faces scoring >= `threshold` whose shorter side is >= `min_size` px, then the `max_faces` largest
    (0 = all), then optionally only the one at `face_index` in that largest-first order.

    The result is ordered largest first, which is also the order `face_index` counts in.  A `face_index`
    beyond the faces kept is a one-line ValueError: refining another face, or none, would be an answer to a
    question the caller did not ask, and the faces are known before any upscale, so the error costs nothing.
    """
    if max_faces < 0:
        raise ValueError(f"max_faces must be >= 0 (0 keeps all), got {max_faces}")
    kept = [b for b in boxes if b.score >= threshold and min(b.width, b.height) >= min_size]
    kept.sort(key=lambda b: b.area, reverse=True)
    if max_faces:
        kept = kept[:max_faces]
    if face_index is None:
        return kept
    if not -len(kept) <= face_index < len(kept):
        found = f"only {len(kept)} face(s) were found" if kept else "no face was found"
        fix = f"use 0..{len(kept) - 1} (0 = the largest) or " if kept else ""
        raise ValueError(f"face_index {face_index} is beyond the faces: {found} (after threshold, min_size and "
                         f"max_faces); {fix}leave face_index unset to refine every face")  # fmt: skip
    return [kept[face_index]]


def as_boxes(boxes: Iterable[FaceBox | Sequence[float]]) -> list[FaceBox]:
    """Boxes from FaceBox objects or (x0, y0, x1, y1[, score]) sequences, validated."""
    result = []
    for box in boxes:
        if not isinstance(box, FaceBox) and len(box) not in (4, 5):
            raise ValueError(f"box {tuple(box)} has {len(box)} numbers: give (x0, y0, x1, y1) or (x0, y0, x1, y1, score)")
        box = box if isinstance(box, FaceBox) else FaceBox(*map(float, box))
        if not (box.x1 > box.x0 and box.y1 > box.y0):
            raise ValueError(f"box {box} is empty: boxes are (x0, y0, x1, y1) with x1 > x0 and y1 > y0")
        result.append(box)
    return result


def boxes_from_mask(mask: torch.Tensor, threshold: float = 0.5) -> list[FaceBox]:
    """One box per connected region (8-connected) of ``mask > threshold``, mask [H,W] in its own pixels.

    Labels are found on a copy of at most 256 px (max-pooled, so thin regions survive) by propagating the
    largest label through each region; boxes are then measured at full resolution.
    """
    binary = mask > threshold
    if not binary.any():
        return []
    h, w = binary.shape
    step = max(1, math.ceil(max(h, w) / 256))
    coarse = F.max_pool2d(binary[None, None].float(), step, ceil_mode=True)[0, 0] > 0
    labels = _label_regions(coarse)
    full = labels.repeat_interleave(step, 0).repeat_interleave(step, 1)[:h, :w] * binary
    boxes = []
    for value in labels.unique():
        if value == 0:
            continue
        ys, xs = torch.nonzero(full == value, as_tuple=True)
        if len(ys):
            boxes.append(FaceBox(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
    return boxes


def _label_regions(binary: torch.Tensor) -> torch.Tensor:
    """Connected-component labels (0 = background) by max-propagation until stable."""
    labels = torch.arange(1, binary.numel() + 1, dtype=torch.float32).reshape(binary.shape) * binary
    while True:
        grown = F.max_pool2d(labels[None, None], 3, stride=1, padding=1)[0, 0] * binary
        if torch.equal(grown, labels):
            return labels.long()
        labels = grown


# ---------------------------------------------------------------- geometry


def crop_region(
    box: FaceBox, crop_factor: float, height: int, width: int, multiple: int = 1
) -> tuple[int, int, int, int]:
    """The integer region (x0, y0, x1, y1) around `box` grown `crop_factor` times about its centre, clamped to
    the image, with its origin snapped down to `multiple` (the model's window) so a crop sees the same
    windows as the whole image did, which makes the crop pass reproduce the whole-image pass inside it.
    """
    if crop_factor < 1:
        raise ValueError(f"crop_factor must be >= 1 (the crop must contain the face), got {crop_factor}")
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    half_w, half_h = box.width * crop_factor / 2, box.height * crop_factor / 2
    x0 = max(0, math.floor(cx - half_w)) // multiple * multiple
    y0 = max(0, math.floor(cy - half_h)) // multiple * multiple
    x1 = min(width, math.ceil(cx + half_w))
    y1 = min(height, math.ceil(cy + half_h))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)
