"""Tile grid and blending: window-aligned tiles, overlaps kept, weights summing to one, exact for a local model."""

import pytest
import torch

import swin2sr
from swin2sr.tiling import Grid, axis_starts, axis_weights, balanced_tile
from tests.tiling_models import NearestX4


@pytest.mark.parametrize("length,tile,overlap", [(64, 64, 16), (72, 64, 16), (200, 64, 16), (520, 128, 32), (96, 32, 10)])
def test_tiles_are_window_aligned_cover_the_axis_and_keep_the_overlap(length, tile, overlap):
    starts = axis_starts(length, tile, overlap, multiple=8)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(s % 8 == 0 for s in starts)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:])), "an overlap is below the requested one"


@pytest.mark.parametrize("length,tile,overlap,scale", [(200, 64, 16, 4), (72, 64, 16, 2), (96, 32, 10, 4)])
def test_blend_weights_sum_to_one_and_ramp_smoothly(length, tile, overlap, scale):
    starts = axis_starts(length, tile, overlap, multiple=8)
    total = torch.zeros(length * scale, dtype=torch.float64)
    for start, w in zip(starts, axis_weights(starts, tile, overlap, scale)):
        total[start * scale : (start + tile) * scale] += w
        if len(starts) > 1:  # no hard cut: between neighbouring pixels the weight changes by a small step
            assert w.diff().abs().max() < 0.25
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)


def test_a_local_model_is_reproduced_exactly_by_tiling():
    x = torch.rand(2, 3, 100, 130)
    expected = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
    for tile in (32, 64, 128):
        out, report = swin2sr.upscale(NearestX4(), x, tile=tile, overlap=16, return_report=True)
        assert report.plan.tiles_per_image > 1
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_grid_reports_its_tiles_in_row_order():
    grid = Grid(200, 136, 64, 64, 16, 4, 8)
    tiles = grid.tiles()
    assert len(tiles) == len(grid) == len(grid.ys) * len(grid.xs)
    assert [t.row for t in tiles] == sorted(t.row for t in tiles)
    assert sum(t.last_in_row for t in tiles) == len(grid.ys)


@pytest.mark.parametrize("length,tile,expected", [(256, 128, 96), (1024, 128, 128), (512, 128, 120), (100, 128, 100)])
def test_tiles_shrink_to_share_the_image_evenly(length, tile, expected):
    side = balanced_tile(length, tile, 16, 8)
    assert side == expected and side <= tile
    starts = axis_starts(length, side, 16, 8) if side < length else [0]
    assert len(starts) == len(axis_starts(length, tile, 16, 8)) if tile < length else len(starts) == 1
