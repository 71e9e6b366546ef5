"""API misuse is a one-line TypeError or ValueError naming the argument, raised before any work is done."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from input_fixtures import NearestX2

import swin2sr


class Untouchable(NearestX2):
    """Fails the test if the model is ever run: the error must come first."""

    def forward(self, x):
        raise AssertionError("the model ran before the argument was checked")


IMAGE = np.zeros((8, 10, 3), np.uint8)
NO_MPS = not torch.backends.mps.is_available()

BAD_OPTIONS = [
    ({"tile": "big"}, ValueError, ["tile", "'auto'", "'big'"]),
    ({"tile": -1}, ValueError, ["tile", ">= 0"]),
    ({"tile": 2.5}, TypeError, ["tile", "whole number"]),
    ({"tile": True}, TypeError, ["tile", "whole number"]),
    ({"overlap": -1}, ValueError, ["overlap", ">= 0"]),
    ({"overlap": "16"}, TypeError, ["overlap", "whole number"]),
    ({"precision": "fp64"}, ValueError, ["precision", "'fp32'"]),
    ({"precision": torch.int8}, ValueError, ["precision", "float32"]),
    ({"device": "gpu"}, ValueError, ["device", "'gpu'", "cuda"]),
    ({"device": 3.5}, TypeError, ["device", "torch.device"]),
    ({"max_input_size": -1}, ValueError, ["max_input_size", ">= 0"]),
    ({"max_input_size": "1024"}, TypeError, ["max_input_size", "whole number"]),
    ({"memory_budget": 0}, ValueError, ["memory_budget", ">= 1"]),
    ({"free_memory": -5}, ValueError, ["free_memory", ">= 0"]),
]
if not torch.cuda.is_available():
    BAD_OPTIONS += [
        ({"device": "cuda"}, ValueError, ["device 'cuda'", "not available", "cpu"]),
        ({"device": "cuda:7"}, ValueError, ["device 'cuda:7'", "not available"]),
    ]
if NO_MPS:
    BAD_OPTIONS.append(({"device": "mps"}, ValueError, ["device 'mps'", "not available"]))


def _ids(cases):
    return [f"{next(iter(options))}={next(iter(options.values()))!r}" for options, _, _ in cases]


def _check(caught, words):
    message = str(caught.value)
    assert all(word in message for word in words), message
    assert "\n" not in message


@pytest.mark.parametrize("options,error,words", BAD_OPTIONS, ids=_ids(BAD_OPTIONS))
def test_upscale_refuses_a_bad_option_before_running_the_model(options, error, words):
    with pytest.raises(error) as caught:
        swin2sr.upscale(Untouchable(), IMAGE, **options)
    _check(caught, words)


@pytest.mark.parametrize("options,error,words", BAD_OPTIONS[:6], ids=_ids(BAD_OPTIONS[:6]))
def test_plan_upscale_refuses_the_same_options(options, error, words):
    with pytest.raises(error) as caught:
        swin2sr.plan_upscale(NearestX2(), 8, 10, **options)
    _check(caught, words)


@pytest.mark.parametrize(
    "size,error,words",
    [((0, 400), ValueError, ["height", ">= 1"]), ((-20, 400), ValueError, ["height", "-20"]),
     ((20, -400), ValueError, ["width", "-400"]), ((20.5, 4), TypeError, ["height", "whole number"]),
     ((20, 4, 0), ValueError, ["batch", ">= 1"])],
)  # fmt: skip
def test_plan_upscale_refuses_sizes_that_cannot_be_images(size, error, words):
    with pytest.raises(error) as caught:
        swin2sr.plan_upscale(NearestX2(), *size)
    _check(caught, words)


@pytest.mark.parametrize("model", ["builtin-x4", None, 42], ids=["path", "none", "number"])
def test_something_that_is_not_a_model_is_a_type_error(model):
    with pytest.raises(TypeError) as caught:
        swin2sr.upscale(model, IMAGE)
    _check(caught, ["model must be a loaded model", "load_model"])


def test_a_model_name_gets_the_hint_to_load_it_first():
    with pytest.raises(TypeError, match=r"swin2sr.load_model\(path\)"):
        swin2sr.upscale("builtin-x4", IMAGE)


@pytest.mark.parametrize("name", ["progress", "cancel", "is_oom"])
def test_callbacks_must_be_functions(name):
    with pytest.raises(TypeError, match=f"{name} must be a function"):
        swin2sr.upscale(Untouchable(), IMAGE, **{name: "yes"})


def test_an_unknown_layout_is_named():
    with pytest.raises(ValueError, match="layout must be one of"):
        swin2sr.upscale(Untouchable(), torch.zeros(1, 3, 8, 10), layout="HWC")


@pytest.mark.parametrize(
    "scale,words", [(0, ["scale", ">= 1"]), (-4, ["scale", "-4"]), (2.5, ["scale", "2.5"]), (3, ["multiple", "x2"])]
)
def test_two_stage_refuses_a_bad_scale_before_stage_one(scale, words):
    with pytest.raises(ValueError) as caught:
        swin2sr.two_stage(IMAGE, Untouchable(), Untouchable(), scale=scale)
    _check(caught, words)


@pytest.mark.parametrize(
    "boxes,words",
    [([(1, 2, 3)], ["3 numbers", "(x0, y0, x1, y1)"]), ([(5, 5, 2, 2)], ["empty", "x1 > x0"]),
     ([(50, 50, 60, 60)], ["outside", "10x8"]), ([(-9, 0, -1, 4)], ["outside"])],
    ids=["three-numbers", "inverted", "beyond", "negative"],
)  # fmt: skip
def test_refine_faces_refuses_boxes_that_cannot_be_faces(boxes, words):
    with pytest.raises(ValueError) as caught:
        swin2sr.refine_faces(IMAGE, Untouchable(), boxes=boxes)
    _check(caught, words)


@pytest.mark.parametrize("base_shape", [(8, 20, 3), (4, 5, 3), (30, 20, 3)], ids=["aspect", "smaller", "taller"])
def test_refine_faces_refuses_a_base_that_is_not_this_input_upscaled(base_shape):
    with pytest.raises(ValueError) as caught:
        swin2sr.refine_faces(IMAGE, Untouchable(), base=np.zeros(base_shape, np.uint8), boxes=[(1, 1, 5, 5)])
    _check(caught, ["base is", "input is 10x8", "upscaled"])


def test_a_base_of_the_right_size_is_accepted():
    out, _, regions = swin2sr.refine_faces(IMAGE, NearestX2(), base=np.zeros((16, 20, 3), np.uint8), boxes=[(1, 1, 5, 5)])
    assert out.shape == (16, 20, 3) and len(regions) == 1


@pytest.mark.parametrize("load", [swin2sr.load_model, swin2sr.load_any_model], ids=["load_model", "load_any_model"])
@pytest.mark.parametrize(
    "arguments,error,words",
    [((123,), TypeError, ["source", "builtin-x4", "int"]), (("builtin-x2", "gpu"), ValueError, ["device 'gpu'"]),
     (("builtin-x2", None, torch.int8), TypeError, ["dtype", "floating"])],
    ids=["number", "device", "dtype"],
)  # fmt: skip
def test_loading_refuses_bad_arguments_before_reading_anything(load, arguments, error, words):
    with pytest.raises(error) as caught:
        load(*arguments)
    _check(caught, words)


@pytest.mark.parametrize(
    "arguments,error,words",
    [((64, -64), ValueError, ["tile_w", ">= 1", "-64"]), ((0, 64), ValueError, ["tile_h", ">= 1"]),
     ((64, 64, 0), ValueError, ["batch", ">= 1"]), ((64, 64, 1, "float16"), ValueError, ["dtype", "'bf16'", "'float16'"]),
     ((64, 64, 1, torch.int8), ValueError, ["dtype", "torch.float16", "torch.int8"]),
     ((64, 64, 1, 16), TypeError, ["dtype", "int 16"])],
    ids=["negative-tile", "zero-tile", "zero-batch", "torch-name", "integer-dtype", "number"],
)  # fmt: skip
def test_estimate_memory_refuses_sizes_and_dtypes_that_mean_nothing(arguments, error, words):
    with pytest.raises(error) as caught:
        swin2sr.estimate_memory(swin2sr.load_model("builtin-x2"), *arguments)
    _check(caught, words)


@pytest.mark.parametrize(("name", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_estimate_memory_takes_the_apis_precision_names_for_dtypes(name, dtype):
    config = swin2sr.load_model("builtin-x2").config
    assert swin2sr.estimate_memory(config, 64, 48, 2, name) == swin2sr.estimate_memory(config, 64, 48, 2, dtype) > 0


def test_refine_faces_refuses_a_face_index_beyond_the_faces_before_any_upscale():
    boxes = [(0, 0, 4, 4), (4, 2, 10, 8)]
    with pytest.raises(ValueError) as caught:
        swin2sr.refine_faces(IMAGE, Untouchable(), boxes=boxes, face_index=2)
    _check(caught, ["face_index 2 is beyond the faces", "only 2 face(s)", "0..1", "unset"])


def test_refine_faces_face_index_picks_among_given_boxes_largest_first():
    _, _, regions = swin2sr.refine_faces(IMAGE, NearestX2(), boxes=[(0, 0, 3, 3), (3, 1, 9, 7)], face_index=0)
    assert [(r.box.x0, r.box.x1) for r in regions] == [(3, 9)]


def _meta_model():
    model = NearestX2()
    model.anchor = torch.nn.Parameter(torch.zeros(1, device="meta"), requires_grad=False)  # shapes, no values
    return model


def test_a_model_on_the_meta_device_is_one_line_naming_the_device():
    with pytest.raises(ValueError) as caught:
        swin2sr.upscale(_meta_model(), IMAGE)
    _check(caught, ["'meta' device", "no values", "load its weights"])


def test_running_on_the_meta_device_is_refused_before_the_model_is_moved():
    model = NearestX2()
    model.anchor.data.fill_(1.0)
    with pytest.raises(ValueError) as caught:
        swin2sr.upscale(model, IMAGE, device="meta")
    _check(caught, ["device 'meta'", "no values", "'cpu'"])
    assert model.anchor.device.type == "cpu" and model.anchor.item() == 1.0  # the caller's weights are intact
