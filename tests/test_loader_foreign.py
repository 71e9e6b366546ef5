"""load_any_model: Swin2SR via our network, everything else via spandrel behind the same interface."""

from __future__ import annotations

import sys

import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict

import swin2sr
from swin2sr import CheckpointError, SpandrelModel
from swin2sr.foreign import wrap_spandrel

X = torch.rand(1, 3, 12, 9, generator=torch.Generator().manual_seed(1))


def test_a_real_esrgan_compact_model_loads_with_our_model_interface(realesrgan_compact_path):
    model = swin2sr.load_any_model(realesrgan_compact_path)
    assert isinstance(model, SpandrelModel)
    assert (model.scale, model.config, model.tile_multiple) == (4, None, 1)
    assert "Compact" in model.variant
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model(X).shape == (1, 3, 48, 36)


def test_the_wrapped_model_returns_the_raw_output_that_spandrel_would_clamp(realesrgan_compact_path):
    import spandrel

    descriptor = spandrel.ModelLoader().load_from_file(realesrgan_compact_path).eval()
    raw = wrap_spandrel(descriptor)(X)
    assert raw.min() < 0 or raw.max() > 1  # this model overshoots on noise, so clamping is visible
    assert torch.equal(raw.clamp(0, 1), descriptor(X))


def test_swin2sr_checkpoints_go_to_our_own_network():
    model = swin2sr.load_any_model(random_official_state_dict(TINY_CONFIGS["tiny_x2"]))
    assert isinstance(model, swin2sr.Swin2SR)
    assert model.scale == 2


def test_inputs_below_the_architecture_minimum_are_padded_and_cropped_back():
    from spandrel.architectures.HAT import HAT

    small = dict(embed_dim=12, depths=(2,), num_heads=(2,), upscale=2, window_size=8, img_size=16, squeeze_factor=4)
    model = swin2sr.load_any_model(HAT(**small).state_dict())
    assert model.size_requirements.minimum == 16 > max(X.shape[-2:])
    assert model(X).shape == (1, 3, 24, 18)


def test_a_state_dict_nobody_recognises_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="neither a Swin2SR checkpoint nor an architecture spandrel"):
        swin2sr.load_any_model({"encoder.weight": torch.zeros(2, 2)})


def test_without_spandrel_the_error_says_how_to_install_it(monkeypatch, realesrgan_compact_path):
    monkeypatch.setitem(sys.modules, "spandrel", None)
    with pytest.raises(CheckpointError, match="pip install spandrel"):
        swin2sr.load_any_model(realesrgan_compact_path)
