"""PSNR and SSIM on the Y channel, exactly as super-resolution papers report them.

The protocol is the one of SwinIR/Swin2SR's `utils/util_calculate_psnr_ssim.py`:
8-bit RGB images, `border` pixels dropped on every edge (border = scale for
classical SR), ITU-R BT.601 luma kept in float (range 16..235), PSNR in
float64, SSIM with an 11x11 Gaussian window (sigma 1.5) evaluated only where
the window fits ("valid").  numpy only, so tests and tools can use it anywhere.
"""

from __future__ import annotations

import numpy as np

_BT601 = np.array([65.481, 128.553, 24.966])
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (uint8 or float in 0..255) -> HxW float64 BT.601 luma in 16..235; HxW input is taken as gray."""
    rgb = np.asarray(image, dtype=np.float64)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    return 16.0 + rgb[..., :3] @ _BT601 / 255.0


def _prepare(a: np.ndarray, b: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"images differ in size: {a.shape[:2]} vs {b.shape[:2]}; crop the ground truth first")
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    return ya, yb


def psnr_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR in dB between two 8-bit RGB images on the Y channel (inf when identical)."""
    ya, yb = _prepare(a, b, border)
    mse = np.mean((ya - yb) ** 2)
    return float("inf") if mse == 0 else float(20 * np.log10(255.0 / np.sqrt(mse)))


def _gaussian_valid(image: np.ndarray) -> np.ndarray:
    """Separable 11x11 Gaussian (sigma 1.5) filter, only where the window fits (the protocol's [5:-5, 5:-5])."""
    x = np.arange(11) - 5
    k = np.exp(-(x**2) / (2 * 1.5**2))
    k /= k.sum()
    h, w = image.shape
    rows = sum(k[i] * image[i : h - 10 + i] for i in range(11))
    return sum(k[i] * rows[:, i : w - 10 + i] for i in range(11))


def ssim_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Mean SSIM between two 8-bit RGB images on the Y channel (Wang et al. 2004 constants)."""
    ya, yb = _prepare(a, b, border)
    if min(ya.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop, got {ya.shape}")
    mu_a, mu_b = _gaussian_valid(ya), _gaussian_valid(yb)
    var_a = _gaussian_valid(ya * ya) - mu_a**2
    var_b = _gaussian_valid(yb * yb) - mu_b**2
    cov = _gaussian_valid(ya * yb) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    return float(ssim_map.mean())
