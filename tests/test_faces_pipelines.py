"""Face Region Refine and two-stage pipelines: seam-free pasting, exact sizes, selection and geometry.

The central measure (issue 5): with the same model for the face pass as for the base pass at the same
effective scale, the refined image must equal the base output within 1/255 (mean) inside each face and on
the matte's soft edge, also where faces overlap: whatever the crop pass lacks in context must not show.
"""

from __future__ import annotations

import pytest
import torch

import swin2sr
from swin2sr.faces import FaceBox, boxes_from_mask, crop_region, get_detector, select_faces
from swin2sr.matte import Compositor, ellipse_matte, fade_at_inner_edges
from swin2sr.io.images import resize
from swin2sr.pipelines import refine_faces, stage1_factor, two_stage
from checkpoints import TINY_CONFIGS, random_official_state_dict

ONE_LEVEL = 1 / 255

def tiny(name: str, seed: int = 0) -> swin2sr.Swin2SR:
    """A tiny random Swin2SR whose output layer is scaled by 0.1: its output then stays inside 0..1 (std
    ~0.1) instead of saturating ~70 % of the pixels, which would hide differences behind the clamp."""
    model = swin2sr.Swin2SR(TINY_CONFIGS[name])
    model.load_state_dict(random_official_state_dict(TINY_CONFIGS[name], seed), strict=False)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(0.1)
        last.bias.mul_(0.1)
    return model.eval().requires_grad_(False)


def photo_like(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random content with some texture, 0..1."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return (smooth + 0.05 * torch.rand(1, 3, h, w, generator=gen)).clamp(0, 1)


def differences(out: torch.Tensor, base: torch.Tensor, union: torch.Tensor, boxes) -> tuple[float, float]:
    """(largest mean |out - base| inside a face box, mean |out - base| on the matte's soft edge)."""
    diff = (out - base).abs().mean(dim=1)[0]
    inside = max(float(diff[round(b.y0):round(b.y1), round(b.x0):round(b.x1)].mean()) for b in boxes)
    edge = (union[0] > 0.02) & (union[0] < 0.98)
    assert edge.sum() > 50, "the matte has no soft edge to measure"
    return inside, float(diff[edge].mean())


# ---------------------------------------------------------------- refine: the seam measure


def test_refine_with_the_base_model_reproduces_the_base_inside_faces_and_on_the_edge():
    torch.manual_seed(0)
    model = tiny("tiny_x2")
    image = photo_like(160, 192)
    faces = [(40, 36, 80, 84), (112, 60, 148, 100)]
    base = swin2sr.upscale(model, image, max_input_size=0, layout="BCHW")
    out, union, regions = refine_faces(image, model, boxes=faces, face_size=0)
    assert out.shape == base.shape == (1, 3, 320, 384)
    inside, edge = differences(out, base, union, [r.box.scaled(2, 2) for r in regions])
    print(f"mean |refined - base|: inside faces {inside * 255:.4f}/255, on the matte edge {edge * 255:.4f}/255")
    assert inside <= ONE_LEVEL and edge <= ONE_LEVEL
    assert float(union.max()) > 0.99 and float(union[0, :, :20].max()) == 0  # faces pasted, nothing else


def test_overlapping_faces_paste_without_double_edges():
    model = tiny("tiny_x2")
    image = photo_like(128, 128, seed=1)
    faces = [(30, 30, 74, 78), (52, 40, 96, 86)]  # overlapping by about half
    base = swin2sr.upscale(model, image, max_input_size=0, layout="BCHW")
    out, union, regions = refine_faces(image, model, boxes=faces, face_size=0)
    inside, edge = differences(out, base, union, [r.box.scaled(2, 2) for r in regions])
    assert inside <= ONE_LEVEL and edge <= ONE_LEVEL


def test_enlarged_face_pass_changes_the_face_but_not_the_surroundings():
    """The check above can fail: a real refine (face_size > crop) does change the face."""
    model = tiny("tiny_x2")
    image = photo_like(96, 96, seed=2)
    base = swin2sr.upscale(model, image, max_input_size=0, layout="BCHW")
    out, union, regions = refine_faces(image, model, boxes=[(32, 32, 64, 64)], face_size=256, debug=True)
    (region,) = regions
    assert max(region.processed_size) == 256 and region.crop_image.shape[-2:] == region.processed_size
    diff = (out - base).abs().mean(dim=1)[0]
    assert float(diff[70:122, 70:122].mean()) > 2 * ONE_LEVEL
    assert float(diff[union[0] == 0].max()) == 0


def test_given_base_and_mask_shape_the_matte():
    model = tiny("tiny_x2")
    image = photo_like(96, 128, seed=3)
    base = swin2sr.upscale(model, image, max_input_size=0, layout="BCHW")
    mask = torch.zeros(96, 128)
    mask[30:60, 20:50] = 1  # one square region, given at the input resolution
    out, union, regions = refine_faces(image, model, base=base, mask=mask, face_size=0)
    assert [r.box for r in regions] == [FaceBox(20, 30, 50, 60)]
    assert float(union[0, 60:120, 40:100].amax()) > 0.99  # follows the mask (60..120 x 40..100 in the output)...
    assert float(union[0, :, :40].max()) == 0 and float(union[0, 120:].max()) == 0  # ...never beyond it
    inside, _ = differences(out, base, union, [regions[0].box.scaled(2, 2)])
    assert inside <= ONE_LEVEL


def test_no_faces_returns_the_base_unchanged():
    model = tiny("tiny_x2")
    image = photo_like(64, 64)
    base = swin2sr.upscale(model, image, max_input_size=0, layout="BCHW")
    out, union, regions = refine_faces(image, model, base=base, boxes=[])
    assert regions == [] and torch.equal(out, base) and float(union.max()) == 0


def test_progress_is_one_monotonic_bar_over_all_engine_calls():
    model = tiny("tiny_x2")
    seen = []
    refine_faces(photo_like(64, 64), model, boxes=[(8, 8, 24, 24), (30, 30, 50, 50)], face_size=0,
                 progress=lambda done, total: seen.append((done, total)))
    assert seen and all(t == seen[0][1] for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == seen[-1][1]


# ---------------------------------------------------------------- two stage


def test_two_stage_whole_image_is_exactly_scale_times_with_a_x4_first_stage():
    stage1, stage2 = tiny("tiny_x4"), tiny("tiny_x2")
    image = photo_like(40, 56)
    out, report = two_stage(image, stage1, stage2, return_report=True)
    assert out.shape == (1, 3, 160, 224) and torch.isfinite(out).all()
    assert report.stage1_size == (80, 112) and report.stage1_downscaled and report.output_size == (160, 224)
    assert set(report.seconds) == {"stage 1", "stage 2"} and len(report.upscale_reports) == 2


def test_two_stage_regions_are_stage2_pasted_into_stage1_without_seams():
    """Regional stage 2 = stage 2's crops pasted into a bicubic x2 of stage 1, and on the matte it equals
    stage 2 over the whole image (same 1/255 measure as the face refine).  Colour matching is off here: a
    random network does not keep the mean tone as a trained one does, so matching would (rightly) move it."""
    stage1, stage2 = tiny("tiny_x2", seed=1), tiny("tiny_x2", seed=2)
    image = photo_like(64, 80, seed=4)
    mask = torch.zeros(64, 80)
    mask[16:44, 20:52] = 1
    out, report = two_stage(image, stage1, stage2, regions=mask, color_match=False, return_report=True)
    whole = two_stage(image, stage1, stage2)
    assert out.shape == whole.shape == (1, 3, 256, 320) and report.regions == 1 and not report.stage1_downscaled

    mid = swin2sr.upscale(stage1, image, max_input_size=0, layout="BCHW")
    base = resize(mid, 256, 320)
    same, union, (region,) = refine_faces(mid, stage2, base=base, mask=mask, face_size=0, color_match=False)
    assert torch.allclose(out, same, atol=1e-6)
    ideal = base + union[:, None] * (whole - base)  # what pasting the whole-image stage 2 would give
    inside, edge = differences(out, ideal, union, [region.box.scaled(2, 2)])
    assert inside <= ONE_LEVEL and edge <= ONE_LEVEL


def test_stage1_factor_rejects_impossible_scales():
    assert stage1_factor(4, 4, 2) == 2 and stage1_factor(4, 2, 2) == 2
    with pytest.raises(ValueError, match="x1"):
        stage1_factor(4, 1, 2)
    with pytest.raises(ValueError, match="multiple"):
        stage1_factor(3, 4, 2)


# ---------------------------------------------------------------- selection, geometry, mattes


def test_selection_threshold_size_k_largest_and_index():
    boxes = [FaceBox(0, 0, 10, 10, 0.9), FaceBox(0, 0, 40, 40, 0.95), FaceBox(0, 0, 30, 30, 0.4),
             FaceBox(0, 0, 20, 20, 0.99)]
    assert [b.width for b in select_faces(boxes)] == [40, 20, 10]
    assert [b.width for b in select_faces(boxes, min_size=15)] == [40, 20]
    assert [b.width for b in select_faces(boxes, threshold=0, max_faces=2)] == [40, 30]
    assert [b.width for b in select_faces(boxes, face_index=1)] == [20]
    with pytest.raises(ValueError, match="face_index 5 is beyond the faces: only 3 face"):
        select_faces(boxes, face_index=5)


def test_crop_region_grows_about_the_centre_snaps_to_the_window_and_clamps():
    assert crop_region(FaceBox(40, 40, 60, 60), 2.0, 100, 100) == (30, 30, 70, 70)
    assert crop_region(FaceBox(40, 40, 60, 60), 2.0, 100, 100, multiple=8) == (24, 24, 70, 70)
    assert crop_region(FaceBox(0, 80, 20, 100), 3.0, 100, 100) == (0, 60, 40, 100)
    with pytest.raises(ValueError, match="crop_factor"):
        crop_region(FaceBox(0, 0, 1, 1), 0.5, 10, 10)


def test_boxes_from_mask_finds_each_region():
    mask = torch.zeros(300, 600)
    mask[10:50, 20:80] = 1
    mask[100:290, 400:590] = 0.8
    mask[120, 100] = 0.3  # below the threshold
    assert sorted(boxes_from_mask(mask), key=lambda b: b.x0) == [FaceBox(20, 10, 80, 50), FaceBox(400, 100, 590, 290)]


def test_ellipse_matte_is_one_inside_zero_outside_and_fades_before_inner_crop_edges():
    matte = ellipse_matte(100, 100, (20, 30, 80, 70), feather=8)[0, 0]
    assert float(matte[50, 50]) == 1 and float(matte[50, 19]) == 0 and float(matte[25, 50]) == 0
    assert float(matte[50, 22:50].diff().min()) >= 0  # rises monotonically towards the centre
    full = torch.ones(1, 1, 40, 40)
    faded = fade_at_inner_edges(full, (0, 10, 40, 50), 100, 40, margin=5)[0, 0]
    assert float(faded[0].max()) < 0.01 and float(faded[-1].max()) < 0.01  # inner top/bottom edges
    assert float(faded[20, 0]) == 1 and float(faded[20, -1]) == 1  # sides on the image border keep weight


def test_compositor_averages_overlaps_instead_of_cutting_edges():
    base = torch.zeros(1, 3, 64, 64)
    comp = Compositor(base)
    matte = ellipse_matte(40, 40, (0, 0, 40, 40), feather=10)
    comp.add(0, (0, 12, 40, 52), torch.full((1, 3, 40, 40), 0.6), matte)
    comp.add(0, (20, 12, 60, 52), torch.full((1, 3, 40, 40), 0.8), matte)
    out, union = comp.result()
    row = out[0, 0, 32]
    # Steepest honest slope: 0.8 over a smoothstep 10 px wide (1.5 x 0.8 / 10); a cut edge would jump ~0.2.
    assert float(row[20:40].diff().abs().max()) < 0.06
    assert float(row.diff().abs().max()) <= 1.5 * 0.8 / 10 + 1e-3
    assert 0.6 <= float(row[30]) <= 0.8


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown face detector"):
        get_detector("yolo")


def test_auto_without_any_detector_explains_the_options(monkeypatch):
    import importlib.util

    get_detector.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError, match="reinstall swin2sr"):
        get_detector("auto")
    get_detector.cache_clear()


class Brighter(torch.nn.Module):
    """A face model whose output is `shift` brighter than the base model's: the colour-shift complaint."""

    def __init__(self, model: torch.nn.Module, shift: float) -> None:
        super().__init__()
        self.model, self.shift, self.scale, self.config = model, shift, model.scale, model.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.shift


def test_colour_matching_removes_a_face_models_tone_shift():
    model = tiny("tiny_x2")
    image = photo_like(96, 96, seed=5)
    base = swin2sr.upscale(model, image, max_input_size=0, layout="BCHW")
    face = [(32, 32, 64, 64)]
    for match, expected in ((False, 0.05), (True, 0.0)):
        out, union, _ = refine_faces(image, model, base=base, face_model=Brighter(model, 0.05), boxes=face,
                                     face_size=0, color_match=match)
        centre = float((out - base)[:, :, 88:104, 88:104].mean())
        assert abs(centre - expected) < 0.002, (match, centre)


def test_cancel_stops_the_pipeline_with_upscale_cancelled():
    model = tiny("tiny_x2")
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the base pass through, stop at the first face

    with pytest.raises(swin2sr.UpscaleCancelled):
        refine_faces(photo_like(64, 64), model, boxes=[(8, 8, 40, 40)], face_size=0, cancel=cancel)


def test_images_come_back_in_the_callers_kind():
    import numpy as np
    from PIL import Image

    model = tiny("tiny_x2")
    array = (photo_like(48, 40)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out, mask, _ = refine_faces(Image.fromarray(array), model, boxes=[(10, 10, 30, 30)], face_size=0)
    assert isinstance(out, Image.Image) and out.size == (80, 96) and mask.shape == (1, 96, 80)
    comfy = torch.from_numpy(array)[None].float() / 255  # ComfyUI IMAGE: [B,H,W,C]
    out = two_stage(comfy, tiny("tiny_x2"), model, regions=[(10, 10, 30, 30)])
    assert out.shape == (1, 192, 160, 3)


def test_detected_faces_are_filtered_then_refined_and_two_stage_uses_them_on_the_input():
    """A detector is any callable RGB uint8 HWC -> FaceBoxes, so the detection path runs without a backend."""
    seen = []

    def detector(rgb):
        seen.append(rgb.shape)
        return [FaceBox(8, 8, 40, 40, 0.9), FaceBox(44, 10, 60, 26, 0.2), FaceBox(50, 40, 58, 48, 0.99)]

    model = tiny("tiny_x2")
    image = photo_like(64, 72)
    _, _, regions = refine_faces(image, model, detector=detector, face_size=0)
    assert seen == [(64, 72, 3)] and [r.box.score for r in regions] == [0.9]  # low score and too small dropped
    out, report = two_stage(image, tiny("tiny_x2", seed=1), model, regions="faces", detector=detector,
                            min_size=4, max_faces=1, return_report=True)
    assert report.regions == 1 and out.shape == (1, 3, 256, 288)


def test_a_mask_of_another_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        refine_faces(photo_like(32, 32), tiny("tiny_x2"), mask=torch.ones(32, 64))
