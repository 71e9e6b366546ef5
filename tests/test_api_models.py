"""Every public entry point takes a model the same ways: a loaded model, or a spandrel ImageModelDescriptor (what
ComfyUI's UPSCALE_MODEL is); a name, a path or None is refused with one line that says what to pass.

A Swin2SR descriptor runs on our fast network with the same weights (so results equal those of `load_model` on
the same state dict); any other architecture runs through spandrel's module, as `load_any_model` would load it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict

import swin2sr

spandrel = pytest.importorskip("spandrel")

IMAGE = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(3))
BOXES = [(6, 4, 18, 16)]


@pytest.fixture(scope="module")
def x2_state() -> dict[str, torch.Tensor]:
    return random_official_state_dict(TINY_CONFIGS["tiny_x2"], seed=5)


@pytest.fixture
def x2_descriptor(x2_state):
    """A fresh descriptor per test: conversions are cached on the object."""
    return spandrel.ModelLoader().load_from_state_dict(x2_state).eval()


@pytest.fixture(scope="module")
def compact_descriptor(realesrgan_compact_path):
    return spandrel.ModelLoader().load_from_file(realesrgan_compact_path).eval()


def test_a_swin2sr_descriptor_runs_on_our_network_once_converted_and_cached(x2_descriptor):
    model = swin2sr.as_model(x2_descriptor)
    assert isinstance(model, swin2sr.Swin2SR) and model.scale == 2
    assert swin2sr.as_model(x2_descriptor) is model


def test_upscale_and_plan_with_a_descriptor_equal_the_loaded_model(x2_descriptor, x2_state):
    model = swin2sr.load_model(x2_state)
    assert torch.equal(swin2sr.upscale(x2_descriptor, IMAGE), swin2sr.upscale(model, IMAGE))
    free = 1 << 30  # the same figure for both plans (the measured one changes from call to call)
    assert swin2sr.plan_upscale(x2_descriptor, 300, 200, free_memory=free) == swin2sr.plan_upscale(
        model, 300, 200, free_memory=free)
    assert swin2sr.estimate_memory(x2_descriptor, 64, 48) == swin2sr.estimate_memory(model, 64, 48)


def test_a_descriptor_loaded_under_inference_mode_runs_in_either_mode(x2_state):
    """ComfyUI's executor runs the built-in Load Upscale Model, and every node, under torch.inference_mode()."""
    with torch.inference_mode():
        descriptor = spandrel.ModelLoader().load_from_state_dict(x2_state).eval()
        inside = swin2sr.upscale(descriptor, IMAGE)
    outside = swin2sr.upscale(descriptor, IMAGE)
    expected = swin2sr.upscale(swin2sr.load_model(x2_state), IMAGE)
    assert torch.equal(inside, expected) and torch.equal(outside, expected)


def test_refine_faces_takes_descriptors_for_both_models(x2_descriptor, x2_state):
    model = swin2sr.load_model(x2_state)
    ours, _, _ = swin2sr.refine_faces(IMAGE, x2_descriptor, face_model=x2_descriptor, boxes=BOXES, face_size=0)
    expected, _, _ = swin2sr.refine_faces(IMAGE, model, boxes=BOXES, face_size=0)
    assert torch.equal(ours, expected)


def test_a_foreign_descriptor_runs_like_the_loaded_file(compact_descriptor, realesrgan_compact_path):
    assert isinstance(swin2sr.as_model(compact_descriptor), swin2sr.SpandrelModel)
    loaded = swin2sr.load_any_model(realesrgan_compact_path)
    assert torch.equal(swin2sr.upscale(compact_descriptor, IMAGE), swin2sr.upscale(loaded, IMAGE))


def test_two_stage_takes_descriptors_for_both_stages(compact_descriptor, x2_descriptor, realesrgan_compact_path,
                                                     x2_state):
    ours = swin2sr.two_stage(IMAGE, compact_descriptor, x2_descriptor, scale=4)
    expected = swin2sr.two_stage(IMAGE, swin2sr.load_any_model(realesrgan_compact_path),
                                 swin2sr.load_model(x2_state), scale=4)
    assert ours.shape == (1, 3, 80, 112)
    assert torch.equal(ours, expected)


# Each public entry point with a wrong value in one model argument; the image is valid, so only the model is wrong.
ENTRY_POINTS = {
    "upscale": (lambda bad, good: swin2sr.upscale(bad, IMAGE), "model"),
    "plan_upscale": (lambda bad, good: swin2sr.plan_upscale(bad, 64, 64), "model"),
    "estimate_memory": (lambda bad, good: swin2sr.estimate_memory(bad, 64, 64), "config"),
    "refine_faces": (lambda bad, good: swin2sr.refine_faces(IMAGE, bad, boxes=BOXES), "model"),
    "refine_faces face_model": (lambda bad, good: swin2sr.refine_faces(IMAGE, good, face_model=bad), "face_model"),
    "two_stage stage1": (lambda bad, good: swin2sr.two_stage(IMAGE, bad, good), "stage1_model"),
    "two_stage stage2": (lambda bad, good: swin2sr.two_stage(IMAGE, good, bad), "stage2_model"),
}
WRONG = {
    "name": ("builtin-x4", "not str 'builtin-x4'"),
    "path": (Path("x.pth"), f"not {type(Path()).__name__} 'x.pth'"),
    "None": (None, "not None"),
    "module without scale": (torch.nn.Conv2d(3, 3, 1), "not a Conv2d module without an integer .scale"),
}


CASES = [
    pytest.param(call, argument, value, given, id=f"{entry}-{kind}")
    for entry, (call, argument) in ENTRY_POINTS.items()
    for kind, (value, given) in WRONG.items()
    if not (argument == "face_model" and value is None)  # the default: refine with `model`
]


@pytest.mark.parametrize("call, argument, value, given", CASES)
def test_anything_else_is_refused_in_one_line_naming_the_argument_and_what_to_pass(call, argument, value, given):
    good = swin2sr.load_model(random_official_state_dict(TINY_CONFIGS["tiny_x2"]))
    with pytest.raises(TypeError) as info:
        call(value, good)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{argument} must be ")
    assert "swin2sr.load_model(path)" in message and "spandrel ImageModelDescriptor" in message
    assert message.endswith(given)


def test_estimate_memory_still_takes_a_config_and_says_so_when_refusing():
    config = TINY_CONFIGS["tiny_x2"]
    assert swin2sr.estimate_memory(config, 64, 64) > 0
    with pytest.raises(TypeError, match=r"^config must be a Swin2SRConfig, a loaded model"):
        swin2sr.estimate_memory("tiny_x2", 64, 64)
