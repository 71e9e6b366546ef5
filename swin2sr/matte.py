"""Soft mattes and seam-free compositing of refined regions into an upscaled image.

The complaints this answers (shared/research/users.md §4): square halos from rectangular masks, seams where
faces sit close together, and faces whose tone differs from the body.  So:

* the matte is an ellipse (or the user's mask) with a smooth fall-off *inside* its outline, and it also
  fades to zero before any crop edge that lies inside the image, where the crop pass lacked context;
* each patch is shifted by the mean colour difference to the base image measured on its own feather band,
  so the tone where it meets the surroundings is the surroundings' tone;
* overlapping patches are averaged by their matte weights before one blend with the base, so a later face
  never cuts an edge into an earlier one.

Tensors are float [B,C,H,W]; regions are (x0, y0, x1, y1) integer slices of the output image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Region = tuple[int, int, int, int]


def smoothstep(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


def ellipse_matte(height: int, width: int, box: tuple[float, float, float, float], feather: float) -> torch.Tensor:
    """[1,1,H,W] matte: 1 inside the ellipse inscribed in `box` (x0, y0, x1, y1, in these pixels), falling
    smoothly to 0 at its outline over `feather` pixels (measured along the radius)."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx, ry = max((x1 - x0) / 2, 1e-3), max((y1 - y0) / 2, 1e-3)
    ys = (torch.arange(height, dtype=torch.float32) + 0.5 - cy) / ry
    xs = (torch.arange(width, dtype=torch.float32) + 0.5 - cx) / rx
    rho = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    inside = (1 - rho) * min(rx, ry)  # approximate distance to the outline, positive inside
    return smoothstep(inside / max(feather, 1e-3))[None, None]


def mask_matte(mask: torch.Tensor, feather: float) -> torch.Tensor:
    """A user mask [1,1,H,W] softened by a Gaussian blur (sigma = `feather` / 3), eroded first by the blur's
    reach plus one pixel (for a mask resized from another resolution), so nothing leaks past the drawn shape."""
    mask = mask.float().clamp(0, 1)
    sigma = feather / 3
    radius = _blur_radius(sigma) + 1
    eroded = -F.max_pool2d(-mask, 2 * radius + 1, stride=1, padding=radius)
    return gaussian_blur(eroded, sigma).clamp(0, 1)


def _blur_radius(sigma: float) -> int:
    return max(1, round(3 * sigma))


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B,C,H,W] with replicate padding (a no-op for sigma < 0.3)."""
    if sigma < 0.3:
        return image
    radius = _blur_radius(sigma)
    taps = torch.exp(-((torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2) / 2)
    taps = (taps / taps.sum()).to(image)
    channels = image.shape[1]
    out = F.pad(image, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def fade_at_inner_edges(matte: torch.Tensor, region: Region, height: int, width: int, margin: float) -> torch.Tensor:
    """`matte` times a ramp that is 0 on every side of `region` lying inside the (height, width) image and
    reaches 1 `margin` pixels in: the crop pass had no context beyond those sides, so nothing of it may show
    there.  Sides on the image border keep full weight (the whole-image pass had no context there either)."""
    x0, y0, x1, y1 = region
    h, w = matte.shape[-2:]
    dist_y = _distance_to_inner_sides(h, y0 > 0, y1 < height)
    dist_x = _distance_to_inner_sides(w, x0 > 0, x1 < width)
    ramp = smoothstep(dist_y[:, None] / margin) * smoothstep(dist_x[None, :] / margin)
    return matte * ramp.to(matte)


def _distance_to_inner_sides(size: int, first_inside: bool, last_inside: bool) -> torch.Tensor:
    """Per row (or column), pixels to the nearest side that lies inside the image (0 on that side's pixels)."""
    index = torch.arange(size, dtype=torch.float32)
    far = torch.full((size,), float("inf"))
    return torch.minimum(index if first_inside else far, (size - 1 - index) if last_inside else far)


def match_color(patch: torch.Tensor, reference: torch.Tensor, matte: torch.Tensor) -> torch.Tensor:
    """`patch` shifted per image and channel by its mean difference to `reference` on the matte's feather band
    (weight 4·m·(1−m), largest where the matte is half on): the tone of the pasted edge becomes the tone of
    the surroundings, while the detail inside stays the patch's own."""
    band = 4 * matte * (1 - matte)
    weight = band.sum(dim=(-2, -1), keepdim=True)
    if float(weight.min()) < 1e-6:
        return patch
    shift = ((reference - patch) * band).sum(dim=(-2, -1), keepdim=True) / weight
    return patch + shift


class Compositor:
    """Accumulates refined patches over a base image and blends them in once.

    Where patches overlap, their pixels are averaged with their matte weights; the union matte
    1 − Π(1 − mᵢ) then blends that average with the base.  Mattes are continuous, so both steps are too.
    """

    def __init__(self, base: torch.Tensor) -> None:
        b, _, h, w = base.shape
        self.base = base
        self.weighted = torch.zeros_like(base, dtype=torch.float32)
        self.weight = torch.zeros(b, 1, h, w)
        self.uncovered = torch.ones(b, 1, h, w)

    def add(self, index: int, region: Region, patch: torch.Tensor, matte: torch.Tensor) -> None:
        """Add `patch` [1,C,h,w] with `matte` [1,1,h,w] at `region` of image `index` of the batch."""
        x0, y0, x1, y1 = region
        view = (slice(index, index + 1), slice(None), slice(y0, y1), slice(x0, x1))
        self.weighted[view] += patch.float() * matte
        self.weight[view] += matte
        self.uncovered[view] *= 1 - matte

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(blended image in the base's dtype, union matte [B,1,H,W])."""
        union = 1 - self.uncovered
        refined = self.weighted / self.weight.clamp_min(1e-8)
        base = self.base.float()
        out = base + union * (refined - base)
        return out.to(self.base.dtype), union
