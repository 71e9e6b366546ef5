"""The network and every pipeline work whatever autograd mode a host loads and runs them in.

ComfyUI's executor runs every node under `torch.inference_mode()`, so its models are loaded there (their
parameters are inference tensors, which have no version counter) and may be run in any mode afterwards.
Every cache keyed on weights must work for inference tensors, normal tensors and parameters alike, and a
weight changed in place must still reach the output.
"""

import contextlib

import pytest
import torch

import swin2sr

MODES = {"plain": contextlib.nullcontext, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
TOLERANCE = {"fp32": 1e-5, "bf16": 2e-2}


LOADS = [*MODES, "inference_tensors"]


def load(mode: str, precision: str):
    """The loader gives normal tensors in every mode; "inference_tensors" is the model a host then moves
    under inference mode (ComfyUI's patcher moving it to the GPU): every parameter an inference tensor."""
    if mode == "inference_tensors":
        with torch.inference_mode():
            model = swin2sr.load_model("builtin-x2")._apply(lambda t: t.to(PRECISIONS[precision], copy=True)
                                                            if t.is_floating_point() else t.clone())
        assert all(p.is_inference() for p in model.parameters())
        return model
    with MODES[mode]():
        model = swin2sr.load_model("builtin-x2", dtype=PRECISIONS[precision])
    assert not any(p.is_inference() for p in model.parameters())
    return model


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))


def reference(precision: str, fn):
    """`fn(model)` for a model loaded and run the ordinary way (no_grad)."""
    model = load("no_grad", precision)
    with torch.no_grad():
        return fn(model).float()


def forward(model, image):
    return model(image.to(swin2sr.engine.model_dtype(model)))


def tiled(model, image):
    return swin2sr.upscale(model, image, tile=16, overlap=4, precision="auto", layout="BCHW")


def faces(model, image):
    refined, _matte, _regions = swin2sr.refine_faces(image, model, boxes=[(4, 4, 20, 20)], face_size=0, layout="BCHW")
    return refined


def two_stage(model, image):
    return swin2sr.two_stage(image, model, model, scale=4, layout="BCHW")


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("run_mode", MODES)
@pytest.mark.parametrize("load_mode", LOADS)
@pytest.mark.parametrize("entry", [forward, tiled, faces, two_stage], ids=lambda f: f.__name__)
def test_any_load_mode_runs_in_any_mode(entry, load_mode, run_mode, precision, image):
    model = load(load_mode, precision)
    with MODES[run_mode]():
        first = entry(model, image)
        second = entry(model, image)  # the second pass runs on cached weights and tables
    expected = reference(precision, lambda m: entry(m, image))
    for out in (first, second):
        assert torch.allclose(out.detach().float(), expected, atol=TOLERANCE[precision], rtol=0)


def change_weights_in_place(model) -> None:
    """What a host does when it loads other weights into a model it keeps: copy_ into the same storage."""
    for name, p in model.named_parameters():
        if name.endswith(("qkv.weight", "fc1.weight", "cpb_mlp.0.weight")):
            p.mul_(0.5)


@pytest.mark.parametrize("load_mode", LOADS)
def test_weights_changed_in_place_after_a_run_reach_the_output(load_mode, image):
    model = load(load_mode, "fp32")
    changed = load("no_grad", "fp32")
    with torch.inference_mode() if load_mode == "inference_tensors" else torch.no_grad():
        model(image)  # fills the packed-weight and bias-table caches
        change_weights_in_place(model)
        out = model(image)
    with torch.no_grad():
        change_weights_in_place(changed)
        expected = changed(image)
        original = load("no_grad", "fp32")(image)
    assert not torch.allclose(expected, original, atol=1e-3)
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)
