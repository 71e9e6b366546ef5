"""What the fast path promises beyond parity: half precision everywhere, a safe fallback, training, caches."""

from __future__ import annotations

import pytest
import torch

from swin2sr.arch import Swin2SR
from swin2sr.engine import run_with_fallback
from tests.checkpoints import TINY_CONFIGS, model_from_official, random_official_state_dict


def tiny_model(name: str = "tiny_x4", seed: int = 0) -> Swin2SR:
    config = TINY_CONFIGS[name]
    return model_from_official(config, random_official_state_dict(config, seed))


def image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_tile_multiple_is_the_window_size():
    model = tiny_model()
    assert model.tile_multiple == model.config.window_size == 8


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("height", "width"), [(20, 28), (64, 64)])
def test_half_precision_runs_at_any_size_and_stays_close_to_float32(dtype, height, width):
    model = tiny_model()
    x = image(1, 3, height, width)
    with torch.no_grad():
        reference = model(x)
        half = model.to(dtype)(x)
    assert half.dtype == dtype
    assert half.shape == reference.shape
    assert (half.float() - reference).abs().max() < 0.1 * reference.abs().max()


def test_output_is_independent_of_chunking_and_batching():
    model = tiny_model().double()
    x = image(2, 3, 24, 40).double()
    with torch.no_grad():
        whole = model(x)
        singles = torch.cat([model(x[:1]), model(x[1:])])
        model.chunk_tokens = 64  # one window per chunk: every chunk boundary is exercised
        chunked = model(x)
    assert torch.allclose(whole, singles, rtol=0, atol=1e-12)
    assert torch.allclose(whole, chunked, rtol=0, atol=1e-12)


def test_training_mode_computes_the_same_function_and_trains_every_parameter():
    model = tiny_model().double()
    x = image(1, 3, 16, 24).double()
    with torch.no_grad():
        expected = model(x)
    model.train()
    out = model(x)
    assert torch.allclose(out, expected, rtol=0, atol=1e-12)
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_cached_tables_follow_new_weights():
    model, fresh = tiny_model(seed=0), tiny_model(seed=1)
    x = image(1, 3, 16, 16)
    with torch.no_grad():
        model(x)  # fills the caches with seed-0 tables
        model.load_state_dict(fresh.state_dict())
        assert torch.equal(model(x), fresh(x))


def test_run_with_fallback_redoes_non_finite_half_precision_in_float32():
    model = tiny_model()
    x = image(1, 3, 16, 16)
    with torch.no_grad():
        model.conv_last.weight.mul_(1e5)  # weights stay below float16's max (65504), the output does not
        model.half()
        assert not torch.isfinite(model(x)).all()
        out = run_with_fallback(model, x)
        assert next(model.parameters()).dtype == torch.float16
        reference = model.float()(x)  # the same float16-rounded weights, in float32
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.equal(out, reference)


def test_run_with_fallback_keeps_finite_half_precision_results():
    model = tiny_model().bfloat16()
    with torch.no_grad():
        out = run_with_fallback(model, image(1, 3, 16, 16))
    assert out.dtype == torch.bfloat16
