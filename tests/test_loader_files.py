"""Every way a Swin2SR checkpoint is stored loads into the same network with the same output."""

from __future__ import annotations

import json

import pytest
import torch
from checkpoints import OFFICIAL_CONFIGS, TINY_CONFIGS, random_official_state_dict
from safetensors.torch import save_file

import swin2sr
from swin2sr import hf_names
from swin2sr.loader import BUILTIN_MODELS, CheckpointError, drop_derived_buffers

CONFIG = TINY_CONFIGS["tiny_x4"]
STATE = random_official_state_dict(CONFIG, seed=3)
X = torch.rand(2, 3, 13, 10, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def reference_output():
    return swin2sr.load_model(STATE)(X)


def _same_output(model, reference):
    assert torch.equal(model(X), reference)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"params": sd},
        lambda sd: {"params_ema": sd},
        lambda sd: {"state_dict": sd, "epoch": 7},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {"params": {f"module.{k}": v for k, v in sd.items()}},
    ],
    ids=["bare", "params", "params_ema", "state_dict", "module-prefix", "params+module-prefix"],
)
def test_bare_and_wrapped_state_dicts_load_from_pth_written_by_current_torch(tmp_path, wrap, reference_output):
    path = tmp_path / "model.pth"
    torch.save(wrap(STATE), path)
    _same_output(swin2sr.load_model(path), reference_output)


def test_ema_weights_are_preferred_when_a_file_holds_both(reference_output):
    other = random_official_state_dict(CONFIG, seed=4)
    _same_output(swin2sr.load_model({"params": other, "params_ema": STATE}), reference_output)


def test_legacy_pickle_files_load(tmp_path, reference_output):
    path = tmp_path / "old.pth"
    torch.save(STATE, path, _use_new_zipfile_serialization=False)
    _same_output(swin2sr.load_model(path), reference_output)


def test_safetensors_load_whatever_the_extension_says(tmp_path, reference_output):
    for name in ("model.safetensors", "mislabelled.pth"):
        save_file({k: v.contiguous() for k, v in STATE.items()}, tmp_path / name)
        _same_output(swin2sr.load_model(tmp_path / name), reference_output)


def test_hugging_face_names_map_back_to_exactly_the_official_weights():
    for config in (CONFIG, TINY_CONFIGS["tiny_x2"], OFFICIAL_CONFIGS["realworld_x4"]):
        official = random_official_state_dict(config)
        hf = hf_names.official_to_hf(official, config)
        assert all(k.startswith(("swin2sr.", "upsample.", "final_convolution.")) for k in hf)
        back = hf_names.hf_to_official(hf)
        expected = drop_derived_buffers(official)
        assert back.keys() == expected.keys()
        assert all(torch.equal(back[k], expected[k]) for k in expected)


def test_hugging_face_qkv_is_split_into_query_key_value_without_key_bias():
    hf = hf_names.official_to_hf(STATE, CONFIG)
    prefix = "swin2sr.encoder.stages.0.layers.1.attention.self."
    qkv = STATE["layers.0.residual_group.blocks.1.attn.qkv.weight"]
    assert torch.equal(torch.cat([hf[prefix + p + ".weight"] for p in ("query", "key", "value")]), qkv)
    assert prefix + "query.bias" in hf and prefix + "value.bias" in hf and prefix + "key.bias" not in hf


def test_hugging_face_files_and_model_folders_give_the_identical_output(tmp_path, reference_output):
    save_file(hf_names.official_to_hf(STATE, CONFIG), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin2sr", "window_size": 8, "image_size": 64}))
    for source in (tmp_path / "model.safetensors", tmp_path):
        model = swin2sr.load_model(source)
        assert model.config == CONFIG
        _same_output(model, reference_output)


def test_the_model_is_ready_for_inference_with_the_public_attributes():
    model = swin2sr.load_model(STATE)
    assert isinstance(model, swin2sr.Swin2SR)
    assert (model.scale, model.config, model.tile_multiple) == (4, CONFIG, 8)
    assert model.variant == "Swin2SR x4 (custom: embed 12, 1x2 blocks)"
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_the_output_is_the_input_size_times_the_scale_for_any_size():
    model = swin2sr.load_model(STATE)
    for h, w in ((8, 8), (9, 17), (1 + 8 * 2, 5)):
        assert model(torch.rand(1, 3, h, w)).shape == (1, 3, 4 * h, 4 * w)


def test_the_forward_reflect_pads_only_to_the_next_window_multiple_and_crops_back():
    model = swin2sr.load_model(STATE)
    x = torch.rand(1, 3, 9, 17)
    padded = torch.nn.functional.pad(x, (0, 7, 0, 7), mode="reflect")  # 16 x 24: the next multiples of 8
    assert torch.allclose(model(x), model(padded)[..., : 9 * 4, : 17 * 4], atol=1e-6)


def test_device_and_dtype_are_applied():
    model = swin2sr.load_model(STATE, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model(X.double()).dtype == torch.float64


def test_a_missing_embedded_model_says_it_is_missing_from_the_installation(monkeypatch):
    monkeypatch.setitem(BUILTIN_MODELS, "builtin-x4", "not-shipped.safetensors")
    with pytest.raises(CheckpointError, match="'builtin-x4' is missing from this installation"):
        swin2sr.load_model("builtin-x4")


def test_an_unknown_embedded_name_lists_the_available_ones():
    with pytest.raises(CheckpointError, match="available: builtin-x4, builtin-x2"):
        swin2sr.load_model("builtin-x3")
