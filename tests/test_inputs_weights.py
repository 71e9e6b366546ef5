"""Weights are validated on load, and checkpoints from transformers are judged honestly.

Broken weights (integer tensors, NaN or infinity) are refused naming the tensor; a network that still gives
non-finite values in fp32 is reported, never written as a black image.  transformers can build networks
the original code cannot; each such option is refused by name instead of "incomplete or modified file".
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict
from PIL import Image
from safetensors.torch import save_file

import swin2sr
from swin2sr import CheckpointError, cli, hf_names
from swin2sr.engine import NonFiniteOutput

CONFIG = TINY_CONFIGS["tiny_x2"]
STATE = random_official_state_dict(CONFIG)
QKV = "layers.0.residual_group.blocks.0.attn.qkv.weight"
BIAS = "layers.0.residual_group.blocks.1.attn.q_bias"


def _error(source, loader=swin2sr.load_model) -> str:
    with pytest.raises(CheckpointError) as caught:
        loader(source)
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8, torch.bool])
def test_a_weight_tensor_that_is_not_floating_point_is_refused_by_name(dtype):
    state = dict(STATE, **{QKV: STATE[QKV].to(dtype)})
    message = _error(state)
    assert QKV in message and str(dtype) in message and "floating point" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_a_weight_with_non_finite_values_is_refused_by_name(value):
    bias = STATE[BIAS].clone()
    bias[3] = value
    message = _error(dict(STATE, **{BIAS: bias}))
    assert BIAS in message and "1 NaN or infinite" in message


def test_a_foreign_model_with_nan_weights_is_refused_by_name(realesrgan_compact_path):
    from swin2sr.checkpoint_files import read_file

    state, _ = read_file(realesrgan_compact_path, [])
    state = dict(state.get("params", state))
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    assert key in _error(state, swin2sr.load_any_model)


# --- the same answer from `swin2sr info` and from loading, naming the file and the tensor ---------------------

FC1 = "layers.0.residual_group.blocks.1.mlp.fc1.weight"
BROKEN_FILES = {
    "integer weights": (dict(STATE, **{QKV: STATE[QKV].to(torch.int32)}), [QKV, "torch.int32", "floating point"]),
    "wrong shape": (dict(STATE, **{FC1: STATE[FC1][:-1].clone()}), ["1 wrong shape", FC1]),
    "wrong channels": (dict(STATE, **{"conv_first.weight": STATE["conv_first.weight"][:, :2].clone()}),
                       ["2 input channel", "conv_first.weight"]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_info_and_upscale_refuse_a_broken_file_alike_naming_the_file_and_the_tensor(name, tmp_path, capsys):
    state, words = BROKEN_FILES[name]
    path = tmp_path / "broken.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    answers = []
    for command in (["info", str(path)], ["upscale", str(path), "-o", str(tmp_path / "out.png"), "--model", str(path)]):
        if command[0] == "upscale":
            Image.new("RGB", (8, 8)).save(path.with_suffix(".png"))
            command[1] = str(path.with_suffix(".png"))
        assert cli.main(command) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(path) in err and all(word in err for word in words), err
        answers.append(err.split(": error: ", 1)[1])
    assert answers[0] == answers[1]  # one check, shared: the same line from both commands
    assert not (tmp_path / "out.png").exists()


def test_a_position_index_no_window_gives_is_named_instead_of_read_as_another_window():
    key = "layers.0.residual_group.blocks.0.attn.relative_position_index"
    assert key in STATE  # official files store it; the window size is read from it
    message = _error(dict(STATE, **{key: STATE[key][:, :-1].clone()}))
    assert key in message and "no window size" in message and "the given state dict" in message


def test_a_network_that_gives_nan_in_fp32_is_reported_not_written_black():
    model = swin2sr.load_model(STATE)
    model.conv_first.bias.data[0] = float("nan")  # damaged after loading: only the output shows it
    with pytest.raises(NonFiniteOutput, match="NaN or infinite values even in float32"):
        swin2sr.upscale(model, torch.rand(1, 3, 16, 16))


def test_non_finite_output_is_a_value_error_so_hosts_show_its_message():
    assert issubclass(NonFiniteOutput, ValueError)


# --- transformers options the original network cannot build ------------------------------------------


def _without(state, *suffixes):
    return {k: v for k, v in state.items() if not k.endswith(suffixes)}


def _three_conv_stages_one_conv_body():
    """transformers' resi_connection='3conv': three-conv stages, but its body always ends in one conv."""
    config = dataclasses.replace(CONFIG, resi_connection="3conv")
    state = _without(random_official_state_dict(config), "conv_after_body.0.weight", "conv_after_body.0.bias",
                     "conv_after_body.2.weight", "conv_after_body.2.bias", "conv_after_body.4.weight",
                     "conv_after_body.4.bias")  # fmt: skip
    state["conv_after_body.weight"] = torch.zeros(12, 12, 3, 3)
    state["conv_after_body.bias"] = torch.zeros(12)
    return config, state


def _channels_out(state, rows):
    state = dict(state)
    state["upsample.0.weight"] = torch.zeros(rows, 12, 3, 3)
    state["upsample.0.bias"] = torch.zeros(rows)
    return state


STATE_CASES = {
    "qkv_bias=False": (CONFIG, _without(STATE, "q_bias", "v_bias"), ["qkv_bias=False"]),
    "3conv": (*_three_conv_stages_one_conv_body(), ["resi_connection='3conv'", "cannot build"]),
    "num_channels_out=1": (CONFIG, _channels_out(STATE, 4), ["3 input channel", "num_channels_out"]),
    "num_channels_out=4": (CONFIG, _channels_out(STATE, 16), ["num_channels_out"]),
    "position_embeddings": (CONFIG, dict(STATE, **{"swin2sr.embeddings.position_embeddings": torch.zeros(1, 65, 12)}),
                            ["use_absolute_embeddings=True"]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STATE_CASES))
@pytest.mark.parametrize("naming", ["official", "transformers"])
def test_a_transformers_only_option_in_the_weights_is_refused_by_name(name, naming):
    config, state, words = STATE_CASES[name]
    if naming == "transformers":
        extra = {k: v for k, v in state.items() if k.startswith("swin2sr.")}
        state = {**hf_names.official_to_hf({k: v for k, v in state.items() if k not in extra}, config), **extra}
    message = _error(state)
    assert all(word in message for word in words), message
    assert "incomplete" not in message


def test_a_classical_pixelshuffle_head_with_other_output_channels_is_named():
    config = dataclasses.replace(CONFIG, upsampler="pixelshuffle")
    state = random_official_state_dict(config)
    state["conv_last.weight"] = state["conv_last.weight"][:1]
    state["conv_last.bias"] = state["conv_last.bias"][:1]
    assert "to 1 output channels" in _error(state)


CONFIG_CASES = {
    "hidden_act": ({"hidden_act": "relu"}, ["hidden_act='relu'", "gelu"]),
    "layer_norm_eps": ({"layer_norm_eps": 1e-6}, ["layer_norm_eps=1e-06"]),
    "patch_size": ({"patch_size": 2}, ["patch_size=2"]),
    "qkv_bias": ({"qkv_bias": False}, ["qkv_bias=False"]),
    "use_absolute_embeddings": ({"use_absolute_embeddings": True}, ["use_absolute_embeddings=True"]),
    "num_channels_out": ({"num_channels_out": 1}, ["num_channels_out=1", "num_channels=3"]),
    "resi_connection": ({"resi_connection": "3conv"}, ["resi_connection='3conv'"]),
    "image_size<window": ({"image_size": 4, "window_size": 8}, ["image_size=4", "window_size=8"]),
    "image_size=window": ({"image_size": 8, "window_size": 8}, ["image_size=8", "unshifted"]),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_a_config_json_option_the_original_network_lacks_is_refused_by_name(name, tmp_path):
    fields, words = CONFIG_CASES[name]
    save_file(hf_names.official_to_hf(STATE, CONFIG), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin2sr", "embed_dim": 12, **fields}))
    message = _error(tmp_path)
    assert all(word in message for word in words) and "config.json" in message, message


def test_a_config_json_with_the_original_values_loads(tmp_path):
    save_file(hf_names.official_to_hf(STATE, CONFIG), tmp_path / "model.safetensors")
    fields = {"model_type": "swin2sr", "hidden_act": "gelu", "layer_norm_eps": 1e-5, "qkv_bias": True,
              "num_channels": 3, "num_channels_out": 3, "resi_connection": "1conv", "image_size": 64, "window_size": 8}
    (tmp_path / "config.json").write_text(json.dumps(fields))
    assert swin2sr.load_model(tmp_path).scale == 2
