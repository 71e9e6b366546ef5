"""swin2sr.metrics follows the SR-paper protocol: BT.601 Y in 16..235, border crop, Gaussian SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swin2sr.metrics import psnr_y, rgb_to_y, ssim_y


def test_luma_spans_the_bt601_studio_range():
    assert rgb_to_y(np.zeros((1, 1, 3))).item() == pytest.approx(16.0)
    assert rgb_to_y(np.full((1, 1, 3), 255)).item() == pytest.approx(235.0)
    assert rgb_to_y(np.full((2, 2), 255)).shape == (2, 2)  # gray input is taken as R = G = B


def test_psnr_of_a_uniform_offset_is_analytic():
    a = np.full((20, 20, 3), 100, np.uint8)
    b = a + 10  # every channel +10 -> Y differs by 10 * 219 / 255
    expected = 20 * math.log10(255 / (10 * 219 / 255))
    assert psnr_y(a, b) == pytest.approx(expected)
    assert psnr_y(a, a) == math.inf


def test_border_pixels_are_ignored():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    b = a.copy()
    b[:4] = 0
    b[:, -4:] = 255
    assert psnr_y(a, b, border=4) == math.inf
    assert psnr_y(a, b, border=3) < 30


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    light, heavy = (np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8) for sigma in (5, 40))
    assert ssim_y(a, a, border=2) == pytest.approx(1.0)
    assert 1 > ssim_y(a, light, border=2) > ssim_y(a, heavy, border=2) > 0


def test_mismatched_sizes_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="crop the ground truth"):
        psnr_y(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
