"""A foreign (spandrel) model goes through the same tiling path: generic forecast, fp32, seam-free."""

import math

import torch

import swin2sr


def test_real_esrgan_compact_is_tiled_like_ours(realesrgan_compact_path):
    model = swin2sr.load_any_model(realesrgan_compact_path)
    assert model.config is None
    image = torch.rand(1, 3, 96, 120, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = model(image).clamp(0, 1)
    out, report = swin2sr.upscale(model, image, tile=64, overlap=16, max_input_size=0, return_report=True)
    assert report.plan.tiles_per_image > 1 and report.plan.precision == "fp32"
    assert report.plan.predicted_bytes == swin2sr.estimate_memory(
        model, report.plan.tile_h, report.plan.tile_w, report.plan.tiles_per_batch
    )
    psnr = 10 * math.log10(1 / ((out - reference) ** 2).mean().item())
    assert psnr >= 45, psnr
