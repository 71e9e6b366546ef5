"""After the upscale, for hosts that offer it: the final size (`target_size`) and unsharp masking (`sharpen`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SHARPEN_MAX = 0.5  # a classic 100% unsharp mask; the hosts' sliders and the service stop here


def sharpen(image: torch.Tensor, strength: float) -> torch.Tensor:
    """Unsharp mask on a float [B, C, H, W] image: x + 2*strength*(x - gaussian_blur(x, sigma 1)), clamped.

    strength 0..0.5 (the node slider; 0 = off, 0.5 = a classic 100% unsharp mask).
    """
    if not 0.0 <= strength <= SHARPEN_MAX:
        raise ValueError(f"sharpen strength must be between 0 and {SHARPEN_MAX}, got {strength}")
    if strength == 0:
        return image
    radius = 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / 2)
    kernel = (kernel / kernel.sum()).to(image.device, image.dtype)
    c = image.shape[1]
    padded = F.pad(image, (radius,) * 4, mode="replicate")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return (image + 2 * strength * (image - blurred)).clamp(0, 1)


def target_size(
    h: int, w: int, scale: int, *, factor: float | None = None, width: int | None = None, height: int | None = None
) -> tuple[int, int]:
    """Final (height, width): `factor` times the input, or an exact width and/or height (aspect kept if only one).

    Reached by the model's scale and then a high-quality resize (`images.resize`);
    with nothing given it is the model's own scale.
    """
    if factor is not None:
        if factor <= 0:
            raise ValueError(f"scale factor must be positive, got {factor}")
        return max(1, round(h * factor)), max(1, round(w * factor))
    for name, value in (("width", width), ("height", height)):
        if value is not None and value <= 0:
            raise ValueError(f"target {name} must be positive, got {value}")
    if width and height:
        return int(height), int(width)
    if width:
        return max(1, round(h * width / w)), int(width)
    if height:
        return int(height), max(1, round(w * height / h))
    return h * scale, w * scale
