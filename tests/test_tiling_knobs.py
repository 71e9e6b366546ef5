"""Smart-Safe knobs (MAX_INPUT_SIZE, TILE_SIZE, FP16_ENABLE), progress and cancel, sharpen and target size."""

import logging

import pytest
import torch

import swin2sr
from swin2sr.upscale import resolve_precision
from tests.tiling_models import NearestX4


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("MAX_INPUT_SIZE", "TILE_SIZE", "FP16_ENABLE"):
        monkeypatch.delenv(name, raising=False)


def test_large_inputs_are_downscaled_first_and_the_user_is_told(caplog):
    with caplog.at_level(logging.INFO, logger="swin2sr"):
        plan = swin2sr.plan_upscale(NearestX4(), 1500, 2000)
        out = swin2sr.upscale(NearestX4(), torch.rand(1, 3, 30, 60), max_input_size=40)
    assert plan.model_input_size == (768, 1024) and plan.output_size == (3072, 4096)  # default 1024, aspect kept
    assert out.shape == (1, 3, 80, 160)
    lines = [r.getMessage() for r in caplog.records if "MAX_INPUT_SIZE" in r.getMessage()]
    assert len(lines) == 1 and "40" in lines[0] and "60x30" in lines[0] and "40x20" in lines[0]


def test_zero_keeps_full_resolution_and_env_sits_between_argument_and_default(monkeypatch):
    assert swin2sr.plan_upscale(NearestX4(), 3000, 4000, max_input_size=0).model_input_size == (3000, 4000)
    monkeypatch.setenv("MAX_INPUT_SIZE", "512")
    assert swin2sr.plan_upscale(NearestX4(), 1000, 1000).model_input_size == (512, 512)
    assert swin2sr.plan_upscale(NearestX4(), 1000, 1000, max_input_size=800).model_input_size == (800, 800)
    monkeypatch.setenv("MAX_INPUT_SIZE", "2000")  # the single-pass output side stays <= 4096
    assert swin2sr.plan_upscale(NearestX4(), 2000, 2000).output_size == (4096, 4096)


def test_tile_size_env_overrides_auto_but_not_an_argument(monkeypatch):
    monkeypatch.setenv("TILE_SIZE", "100")
    plan = swin2sr.plan_upscale(NearestX4(), 300, 300)
    assert plan.tile == 96 and plan.tile_source == "TILE_SIZE" and "[TILE_SIZE]" in str(plan)
    assert swin2sr.plan_upscale(NearestX4(), 300, 300, tile=64).tile == 64
    monkeypatch.setenv("TILE_SIZE", "big")
    with pytest.raises(ValueError, match="TILE_SIZE"):
        swin2sr.plan_upscale(NearestX4(), 300, 300)


def test_precision_auto_is_fp32_on_cpu_half_on_cuda_unless_disabled(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    model = swin2sr.Swin2SR(swin2sr.Swin2SRConfig(embed_dim=12, depths=(2,), num_heads=(2,)))
    assert resolve_precision("auto", cpu, model) == torch.float32
    assert resolve_precision("bf16", cpu, model) == torch.bfloat16  # selectable on the CPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", cuda, model) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", cuda, model) == torch.float16
    assert resolve_precision("auto", cuda, NearestX4()) == torch.float32  # foreign model without half support
    monkeypatch.setenv("FP16_ENABLE", "false")
    assert resolve_precision("auto", cuda, model) == torch.float32
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int8", cpu, model)


def test_non_finite_half_precision_output_is_redone_in_fp32():
    class HalfOverflows(NearestX4):
        def forward(self, x):
            y = super().forward(x)
            return y * float("inf") if x.dtype == torch.bfloat16 else y

    x = torch.rand(1, 3, 16, 16)
    out, report = swin2sr.upscale(HalfOverflows(), x, precision="bf16", return_report=True)
    assert report.fp32_redos == 1 and torch.isfinite(out).all()


def test_progress_counts_tiles_of_the_whole_job():
    calls = []
    swin2sr.upscale(NearestX4(), torch.rand(2, 3, 64, 64), tile=32, overlap=8, progress=lambda d, t: calls.append((d, t)))
    total = calls[-1][1]
    assert calls[-1] == (total, total) and total == 2 * 9
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_cancel_raises_between_batches_and_host_exceptions_propagate():
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 2

    one_tile = swin2sr.estimate_memory(NearestX4(), 32, 32, 1)  # one tile per batch: several batches
    with pytest.raises(swin2sr.UpscaleCancelled):
        swin2sr.upscale(NearestX4(), torch.rand(1, 3, 64, 64), tile=32, overlap=8, memory_budget=one_tile, cancel=cancel)
    assert len(seen) == 3

    class Interrupted(Exception):
        pass

    def host_cancel():
        raise Interrupted

    with pytest.raises(Interrupted):
        swin2sr.upscale(NearestX4(), torch.rand(1, 3, 64, 64), tile=32, cancel=host_cancel)


def test_the_callers_model_is_left_as_it_was():
    model = NearestX4()
    model.anchor.data.fill_(0.1234567)  # not representable in bf16: a cast and back would change it
    swin2sr.upscale(model, torch.rand(1, 3, 16, 16), precision="bf16")
    assert model.anchor.dtype == torch.float32 and model.anchor.item() == torch.tensor(0.1234567).item()


def test_sharpen_is_off_at_zero_and_adds_contrast_at_edges():
    x = torch.zeros(1, 3, 16, 16)
    x[..., 8:] = 0.5
    assert swin2sr.sharpen(x, 0) is x
    y = swin2sr.sharpen(x, 0.5)
    assert y[..., 7].max() == 0 and y[..., 8].min() > 0.5  # overshoot on the bright side, clamped on the dark
    torch.testing.assert_close(y[..., :4], x[..., :4])
    with pytest.raises(ValueError, match="0 and 0.5"):
        swin2sr.sharpen(x, 0.8)


@pytest.mark.parametrize(
    "kwargs,expected",
    [({}, (400, 600)), ({"factor": 2.5}, (250, 375)), ({"width": 300}, (200, 300)), ({"height": 50}, (50, 75)),
     ({"width": 640, "height": 480}, (480, 640))],
)  # fmt: skip
def test_target_size(kwargs, expected):
    assert swin2sr.target_size(100, 150, 4, **kwargs) == expected


def test_plan_takes_upscales_options_but_not_typos():
    plan = swin2sr.plan_upscale(NearestX4(), 100, 100, progress=print, cancel=None, return_report=True)
    assert plan.output_size == (400, 400)
    with pytest.raises(TypeError, match="tiel"):
        swin2sr.plan_upscale(NearestX4(), 100, 100, tiel=64)
