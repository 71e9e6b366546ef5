"""End to end with real weights: Real-ESRGAN Compact x4 (shared fixture) + the embedded builtin-x2, and the
optional Haar detector on a real photo shipped in a PyPI wheel (when those optional packages are installed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import swin2sr
from swin2sr.io.images import read_batch, resize

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
COMPACT = SHARED / "fixtures" / "realesr-animevideov3.pth"
FACE_LR = SHARED / "benchmarks" / "Set14" / "LR_bicubic" / "X4" / "facex4.png"
ONE_LEVEL = 1 / 255


@pytest.fixture(scope="module")
def models():
    if not COMPACT.is_file():
        pytest.skip(f"{COMPACT} is absent (the shared Real-ESRGAN fixture; CI places shared/ next to the repo)")
    pytest.importorskip("spandrel", reason="stage 1 loads Real-ESRGAN through spandrel")
    try:
        stage2 = swin2sr.load_model("builtin-x2")
    except swin2sr.CheckpointError as exc:
        pytest.skip(f"builtin-x2 weights are not embedded yet: {exc}")
    return swin2sr.load_any_model(COMPACT), stage2


@pytest.fixture(scope="module")
def face_photo() -> torch.Tensor:
    if not FACE_LR.is_file():
        pytest.skip(f"{FACE_LR} is absent (shared benchmark data)")
    from PIL import Image

    return read_batch(Image.open(FACE_LR).convert("RGB"))[0]  # 69x69, a face filling most of it


def test_compact_x4_as_x2_then_builtin_x2_is_exactly_x4_and_finite(models, face_photo):
    stage1, stage2 = models
    out, report = swin2sr.two_stage(face_photo, stage1, stage2, return_report=True)
    assert out.shape == (1, 3, 276, 276) and torch.isfinite(out).all()
    assert report.stage1_size == (138, 138) and report.stage1_downscaled
    print(report)


def test_face_region_blends_into_the_compact_image_without_seams(models, face_photo):
    stage1, stage2 = models
    box = [(18, 16, 50, 56)]  # the face, in input pixels
    whole = swin2sr.two_stage(face_photo, stage1, stage2)
    out, report = swin2sr.two_stage(face_photo, stage1, stage2, regions=box, return_report=True)
    mid = resize(swin2sr.upscale(stage1, face_photo, max_input_size=0, layout="BCHW"), 138, 138)
    base = resize(mid, 276, 276)
    same, union, (region,) = swin2sr.refine_faces(mid, stage2, base=base, boxes=[(36, 32, 100, 112)], face_size=0)
    assert torch.allclose(out, same, atol=1e-6)
    ideal = base + union[:, None] * (whole - base)
    diff = (out - ideal).abs().mean(1)[0]
    b = region.box.scaled(2, 2)
    inside = float(diff[round(b.y0):round(b.y1), round(b.x0):round(b.x1)].mean())
    edge = float(diff[(union[0] > 0.02) & (union[0] < 0.98)].mean())
    print(f"regional vs whole stage 2: inside {inside * 255:.3f}/255, matte edge {edge * 255:.3f}/255; {report}")
    assert inside <= ONE_LEVEL and edge <= ONE_LEVEL



def test_refine_with_builtin_x4_on_a_portrait_reproduces_the_base_without_seams():
    """The seam measure of test_faces_pipelines.py with a trained model on a real portrait (colour matching on)."""
    lenna = SHARED / "benchmarks" / "Set14" / "LR_bicubic" / "X4" / "lennax4.png"
    if not lenna.is_file():
        pytest.skip(f"{lenna} is absent (shared benchmark data)")
    try:
        model = swin2sr.load_model("builtin-x4")
    except swin2sr.CheckpointError as exc:
        pytest.skip(f"builtin-x4 weights are not embedded yet: {exc}")
    from PIL import Image

    image = read_batch(Image.open(lenna).convert("RGB"))[0]  # 128x128
    base = swin2sr.upscale(model, image, max_input_size=0)
    out, union, (region,) = swin2sr.refine_faces(image, model, base=base, boxes=[(57, 54, 87, 90)], face_size=0)
    diff = (out - base).abs().mean(1)[0]
    b = region.box.scaled(4, 4)
    inside = float(diff[round(b.y0):round(b.y1), round(b.x0):round(b.x1)].mean())
    edge = float(diff[(union[0] > 0.02) & (union[0] < 0.98)].mean())
    print(f"builtin-x4 refine vs base: inside {inside * 255:.3f}/255, matte edge {edge * 255:.3f}/255")
    assert inside <= ONE_LEVEL and edge <= ONE_LEVEL


def test_haar_finds_the_astronaut_and_nothing_on_a_cat():
    """The optional OpenCV 4.x detector (the embedded MTCNN is tested in test_faces_mtcnn.py)."""
    from swin2sr.faces import detect_faces, get_detector

    data = pytest.importorskip("skimage.data", reason="the photos ship in scikit-image (requirements-faces.txt)")
    try:
        get_detector("haar")
    except ValueError as exc:
        pytest.skip(f"OpenCV 4.x with its Haar cascades is not installed (optional): {exc}")
    faces = detect_faces(torch.from_numpy(data.astronaut().copy()).permute(2, 0, 1) / 255, "haar")
    centres = [((f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2, f.width) for f in faces]
    assert any(200 < x < 250 and 95 < y < 140 and 70 < w < 120 for x, y, w in centres), faces
    assert detect_faces(torch.from_numpy(data.chelsea().copy()).permute(2, 0, 1) / 255, "haar") == []
