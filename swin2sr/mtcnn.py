"""MTCNN face detector (Zhang et al., 2016), torch only, with its 2 MB of weights embedded in the package.

Embedded so that face detection works offline right after a plain install, without installing
facenet-pytorch (whose metadata pins torch<2.3 and numpy<2).  The weights are facenet-pytorch 2.6.0's
MTCNN weights (MIT licence, Copyright (c) 2019 Timothy Esler; the licence text travels in the
safetensors metadata), converted by tools/convert_mtcnn.py; the detection cascade below follows the same
published algorithm and reproduces facenet-pytorch's boxes (tests/test_faces_mtcnn.py).

Three networks, coarse to fine: P-Net proposes 12x12 windows over an image pyramid, R-Net (24x24 crops)
and O-Net (48x48 crops) re-score and refine them; non-maximum suppression after every step.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mtcnn.safetensors"
MIN_FACE = 20  # px: the smallest face the pyramid looks for
PYRAMID_STEP = 0.709  # each pyramid level is this much smaller (area halves)
THRESHOLDS = (0.6, 0.7, 0.7)  # face probability kept by P-, R- and O-Net

# Convolution stacks: (in, out, kernel, max-pool (kernel, stride) or None), each conv followed by a PReLU.
PNET = [(3, 10, 3, (2, 2)), (10, 16, 3, None), (16, 32, 3, None)]
RNET = [(3, 28, 3, (3, 2)), (28, 48, 3, (3, 2)), (48, 64, 2, None)]
ONET = [(3, 32, 3, (3, 2)), (32, 64, 3, (3, 2)), (64, 64, 3, (2, 2)), (64, 128, 2, None)]


class Stage(nn.Module):
    """One MTCNN network: a PReLU conv stack, an optional dense layer, then face-probability and box-offset
    heads (1x1 convolutions when there is no dense layer, so P-Net runs on a whole image at once)."""

    def __init__(self, convs: list, dense: tuple[int, int] | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout, kernel, pool in convs:
            layers += [nn.Conv2d(cin, cout, kernel), nn.PReLU(cout)]
            if pool:
                layers.append(nn.MaxPool2d(*pool, ceil_mode=True))
        self.body = nn.Sequential(*layers)
        self.dense = nn.Sequential(nn.Linear(*dense), nn.PReLU(dense[1])) if dense else None
        width = dense[1] if dense else convs[-1][1]
        head = nn.Linear if dense else functools.partial(nn.Conv2d, kernel_size=1)
        self.score, self.offsets = head(width, 2), head(width, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB 0..255 [N,3,h,w] -> (box offsets [N,4,...], face probability [N,...])."""
        x = self.body((x - 127.5) / 128)
        if self.dense is not None:
            x = self.dense(x.permute(0, 3, 2, 1).flatten(1))  # the weights expect a (w, h, c) flatten
        return self.offsets(x), self.score(x).softmax(1)[:, 1]


class MTCNN:
    """Callable detector: RGB uint8 HWC array -> [(x0, y0, x1, y1, probability), ...]."""

    def __init__(self, weights: Path = WEIGHTS) -> None:
        from safetensors.torch import load_file

        if not weights.is_file():
            raise FileNotFoundError(f"the embedded MTCNN weights are missing ({weights}); reinstall the package")
        state = load_file(weights)
        self.nets = [Stage(PNET), Stage(RNET, (576, 128)), Stage(ONET, (1152, 256))]
        for name, net in zip(("pnet", "rnet", "onet"), self.nets):
            net.load_state_dict({k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")})
            net.eval().requires_grad_(False)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        boxes = self._propose(image)
        for net, size, threshold, last in ((self.nets[1], 24, THRESHOLDS[1], False),
                                           (self.nets[2], 48, THRESHOLDS[2], True)):  # fmt: skip
            boxes = self._refine(image, boxes, net, size, threshold, last)
        return [tuple(map(float, row)) for row in boxes[:, :5]]

    def _propose(self, image: torch.Tensor) -> torch.Tensor:
        """P-Net over the pyramid: candidate squares [n, 5] (x0, y0, x1, y1, probability)."""
        h, w = image.shape[-2:]
        found = []
        scale = 12 / MIN_FACE
        while min(h, w) * scale >= 12:
            resized = F.interpolate(image, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            offsets, prob = self.nets[0](resized)
            ys, xs = torch.nonzero(prob[0] >= THRESHOLDS[0], as_tuple=True)
            corner = torch.stack([xs, ys], 1).float() * 2  # P-Net's output stride is 2, its window 12
            cand = torch.cat([((corner + 1) / scale).floor(), ((corner + 12) / scale).floor(),
                              prob[0, ys, xs, None], offsets[0, :, ys, xs].T], 1)  # fmt: skip
            found.append(cand[_nms(cand[:, :4], cand[:, 4], 0.5)])
            scale *= PYRAMID_STEP
        cand = torch.cat(found) if found else torch.zeros(0, 9)
        cand = cand[_nms(cand[:, :4], cand[:, 4], 0.7)]
        size = (cand[:, 2:4] - cand[:, 0:2]).repeat(1, 2)
        return _square(torch.cat([cand[:, :4] + cand[:, 5:9] * size, cand[:, 4:5]], 1))

    def _refine(self, image, boxes, net, size: int, threshold: float, last: bool) -> torch.Tensor:
        """Re-score the candidates on `size` crops with `net`, keep the likely faces, move their corners by
        the predicted offsets; the last stage keeps boxes as they are, the others make them square again."""
        boxes = boxes[_inside(boxes, *image.shape[-2:])]
        if not len(boxes):
            return boxes
        crops = torch.cat([F.interpolate(_crop(image, box), size=(size, size), mode="area") for box in boxes])
        offsets, prob = net(crops)
        keep = prob > threshold
        boxes = torch.cat([boxes[keep, :4], prob[keep, None]], 1)
        offsets = offsets[keep]
        if not last:
            pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
            boxes, offsets = boxes[pick], offsets[pick]
        extent = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
        boxes = torch.cat([boxes[:, :4] + offsets * extent, boxes[:, 4:5]], 1)
        if last:
            return boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7, by_smaller=True)]
        return _square(boxes)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box made square around its centre, the side its longer side."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(1, keepdim=True).values
    corner = boxes[:, 0:2] + wh / 2 - side / 2
    return torch.cat([corner, corner + side, boxes[:, 4:]], 1)


def _pixel_bounds(box: torch.Tensor, h: int, w: int) -> tuple[int, int, int, int]:
    """The integer pixel rows/columns of `box` inside the image (the detector's 1-based box convention)."""
    x0, y0, x1, y1 = (int(v) for v in box[:4])  # truncation, as the reference implementation does
    return max(y0, 1) - 1, min(y1, h), max(x0, 1) - 1, min(x1, w)


def _inside(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Which boxes still cover at least one pixel of the image."""
    bounds = [_pixel_bounds(box, h, w) for box in boxes]
    return torch.tensor([y1 > y0 and x1 > x0 for y0, y1, x0, x1 in bounds], dtype=torch.bool)


def _crop(image: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    y0, y1, x0, x1 = _pixel_bounds(box, *image.shape[-2:])
    return image[:, :, y0:y1, x0:x1]


def _nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, by_smaller: bool = False) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes, best first.  Overlap is intersection over
    union, or over the smaller box's area (`by_smaller`: drops a box mostly inside a better one)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = scores.argsort(descending=True)
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        low = torch.maximum(boxes[best, :2], boxes[rest, :2])
        high = torch.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = (high - low).clamp(min=0).prod(1)
        union = torch.minimum(area[best], area[rest]) if by_smaller else area[best] + area[rest] - inter
        order = rest[inter / union.clamp(min=1e-9) <= threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)
