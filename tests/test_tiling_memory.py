"""Memory forecaster against measurement (CPU, torch profiler), and the budget-driven auto tile."""

import logging

import pytest
import torch

import swin2sr
from swin2sr import memory
from tests.checkpoints import TINY_CONFIGS
from tests.tiling_models import tiny_model

SIZES = [(1, 32, 32), (1, 48, 72), (2, 64, 64)]  # (batch, h, w): three sizes, one of them batched


@pytest.mark.parametrize("name", ["tiny_x4", "tiny_x2"])
def test_forecast_within_20_percent_of_measured_peak(name):
    model = tiny_model(name)
    config = TINY_CONFIGS[name]
    weights = memory.parameter_count(config) * 4
    for batch, h, w in SIZES:
        x = torch.rand(batch, 3, h, w)
        with torch.inference_mode():
            model(x[:, :, :8, :8])  # caches unrelated to this size
            measured = memory.measured_peak(lambda: model(x), torch.device("cpu"))
        predicted = swin2sr.estimate_memory(config, h, w, batch, torch.float32) - weights
        assert abs(predicted - measured) <= 0.2 * measured, f"{name} {batch}x{h}x{w}: {predicted} vs {measured}"


def test_forecast_scales_with_padded_pixels_and_dtype():
    config = TINY_CONFIGS["tiny_x4"]
    weights = memory.parameter_count(config) * 4
    one = swin2sr.estimate_memory(config, 64, 64, 1) - weights
    assert swin2sr.estimate_memory(config, 57, 60, 1) - weights == one  # padded to the window
    assert swin2sr.estimate_memory(config, 128, 128, 1) - weights == pytest.approx(4 * one, rel=0.01)
    assert swin2sr.estimate_memory(config, 64, 64, 1, torch.bfloat16) == swin2sr.estimate_memory(config, 64, 64) // 2


def test_foreign_models_get_a_generic_estimate():
    class Foreign(torch.nn.Module):
        scale, config = 4, None

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 48, 3)

    small, big = (swin2sr.estimate_memory(Foreign(), s, s, 1) for s in (64, 128))
    assert big > 3 * small > 0


def test_auto_tile_is_the_largest_that_fits_the_budget(caplog):
    model = tiny_model("tiny_x4")
    budget = swin2sr.estimate_memory(model.config, 128, 128, 1)
    with caplog.at_level(logging.INFO, logger="swin2sr"):
        out, report = swin2sr.upscale(model, torch.rand(1, 3, 200, 200), memory_budget=budget, return_report=True)
    plan = report.plan
    assert plan.tile_source == "auto" and plan.tile % 8 == 0
    assert plan.predicted_bytes <= budget < swin2sr.estimate_memory(model.config, plan.tile + 8, plan.tile + 8, 1)
    assert plan.tiles_per_image > 1
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("tile "))
    assert plan.tile_h == plan.tile_w and f"tile {plan.tile_h}, 1 per batch" in line and "fp32" in line and "predicted" in line and "free" in line


def test_host_free_memory_figure_is_used():
    model = tiny_model("tiny_x4")
    plan = swin2sr.plan_upscale(model, 512, 512, free_memory=lambda: 400 << 20)
    assert plan.free_bytes == 400 << 20
    assert plan.budget_bytes == min(int((400 << 20) * memory.CPU_SAFETY), memory.CPU_BUDGET_CAP)


def test_small_images_batch_several_tiles_when_memory_allows():
    model = tiny_model("tiny_x4")
    plan = swin2sr.plan_upscale(model, 256, 256, tile=64, memory_budget=1 << 30)
    assert plan.tiles_per_batch > 1
    assert plan.predicted_bytes <= 1 << 30
