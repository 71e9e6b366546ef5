"""The per-device tuning, and the CUDA code path run on the CPU: same results, bias precision, planner decisions.

The CUDA path is SDPA with the head dim zero-padded to a multiple of 8 and
chunks of up to 2**18 tokens; `tuning.override` forces it on the CPU, where
it must compute what the matmul path computes (fp64 to 1e-6, fp32 within the
parity tolerance of tests/test_engine_parity.py against spandrel).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import swin2sr
from swin2sr import engine, memory, tuning
from swin2sr.arch import Swin2SR
from swin2sr.attention import WindowAttention, cosine_qk
from tests.checkpoints import OFFICIAL_CONFIGS, model_from_official
from tests.test_engine_parity import ALL_CONFIGS, FP32_ERROR_FACTOR, FP64_TOLERANCE, reference_model, state_dict

CUDA_PATH = {"attention": "sdpa", "head_multiple": 8, "chunk_tokens": tuning.CUDA_MAX_CHUNK_TOKENS}
HELD_OUT = Path(__file__).parent / "data" / "chelsea_crop.png"
MIN_PSNR_DB = 45.0
GB = 10**9


# ---------------------------------------------------------------- the tuning table and its overrides


def test_each_device_type_gets_its_measured_choice():
    assert tuning.for_device("cpu") == tuning.Tuning(attention="matmul", chunk_tokens=8192, head_multiple=1)
    cuda = tuning.for_device("cuda")
    assert (cuda.attention, cuda.head_multiple, cuda.compile) == ("sdpa", 8, False)
    assert cuda.chunk_tokens == tuning.CUDA_MAX_CHUNK_TOKENS
    assert tuning.for_device("mps").attention == "sdpa"


def test_cuda_chunks_are_bounded_by_the_budget_but_never_tiny():
    assert tuning.chunk_tokens("cuda", budget_tokens=10**9) == tuning.CUDA_MAX_CHUNK_TOKENS
    assert tuning.chunk_tokens("cuda", budget_tokens=50_000) == 50_000
    assert tuning.chunk_tokens("cuda", budget_tokens=10) == tuning.MIN_CHUNK_TOKENS
    assert tuning.chunk_tokens("cpu", budget_tokens=10) == 8192  # the CPU keeps its measured size


def test_environment_and_override_replace_the_defaults(monkeypatch):
    monkeypatch.setenv("SWIN2SR_ATTENTION", "SDPA")
    monkeypatch.setenv("SWIN2SR_CHUNK_TOKENS", "4096")
    assert tuning.for_device("cpu").attention == "sdpa"
    assert tuning.chunk_tokens("cuda", budget_tokens=10**9) == 4096  # explicit: no budget bound
    with tuning.override(attention="matmul", compile=True):
        assert tuning.for_device("cuda").attention == "matmul" and tuning.for_device("cpu").compile
    assert tuning.for_device("cpu").attention == "sdpa" and not tuning.for_device("cpu").compile


def test_bad_choices_are_refused_with_the_variable_named(monkeypatch):
    monkeypatch.setenv("SWIN2SR_ATTENTION", "flash")
    with pytest.raises(ValueError, match="SWIN2SR_ATTENTION"):
        tuning.for_device("cpu")
    monkeypatch.delenv("SWIN2SR_ATTENTION")
    monkeypatch.setenv("SWIN2SR_CHUNK_TOKENS", "lots")
    with pytest.raises(ValueError, match="SWIN2SR_CHUNK_TOKENS must be a whole number"):
        tuning.for_device("cpu")
    with pytest.raises(TypeError, match="unknown tuning choices"):
        with tuning.override(kernel="sdpa"):
            pass



def test_a_models_own_chunk_tokens_is_the_override_upscale_plans_and_runs_with():
    model = swin2sr.load_model("builtin-x2")
    model.chunk_tokens = 64  # the user's override: one window per chunk
    during_run = []
    model.register_forward_pre_hook(lambda module, args: during_run.append(module.chunk_tokens))
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    _, report = swin2sr.upscale(model, image, tile=16, device="cpu", return_report=True)
    assert report.plan.chunk_tokens == 64
    assert during_run and set(during_run) == {64}
    assert model.chunk_tokens == 64

def test_compilation_is_opt_in_and_compiles_each_function_once():
    assert engine.maybe_compiled(cosine_qk, "cpu") is cosine_qk
    with tuning.override(compile=True):
        assert engine.maybe_compiled(cosine_qk, "cpu") is cosine_qk  # autograd recording: eager
        with torch.no_grad():
            compiled = engine.maybe_compiled(cosine_qk, "cpu")  # lazy: compiles on its first call only
            assert compiled is not cosine_qk and engine.maybe_compiled(cosine_qk, "cuda") is compiled


# ---------------------------------------------------------------- the CUDA path on the CPU


def test_padded_head_dim_sdpa_is_the_matmul_kernel():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(7, 6, 64, 30, generator=gen, dtype=torch.float64) for _ in range(3))
    tables = torch.randn(4, 6, 64, 64, generator=gen, dtype=torch.float64)
    runs = [(0, 2, 0), (2, 3, 1), (3, 7, 3)]
    with tuning.override(attention="matmul"):
        expected = engine.window_attention(q, k, v, tables, runs)
    padded = engine.sdpa_attention(q, k, v, tables, runs, head_multiple=8)
    assert padded.shape == expected.shape == (7, 6, 64, 30)
    assert (padded - expected).abs().max() <= 1e-12


# One chunk for the whole batch (CUDA's size), or chunks of 3 windows that cut across the shift-mask runs.
@pytest.mark.parametrize(("name", "batch", "height", "width", "chunk_tokens"), [
    ("classical_x4", 2, 12, 20, 3 * 64),
    ("lightweight_x2", 1, 37, 53, tuning.CUDA_MAX_CHUNK_TOKENS),
    ("jpeg_car_gray", 1, 12, 17, tuning.CUDA_MAX_CHUNK_TOKENS),
])  # fmt: skip
def test_cuda_path_forced_on_cpu_matches_the_reference(name, batch, height, width, chunk_tokens):
    config = ALL_CONFIGS[name]
    ours, ref = model_from_official(config, state_dict(name)), reference_model(name)
    x = torch.rand(batch, config.in_chans, height, width, generator=torch.Generator().manual_seed(7))
    out = {}
    with torch.no_grad(), tuning.override(**{**CUDA_PATH, "chunk_tokens": chunk_tokens}):
        for dtype in (torch.float64, torch.float32):
            out["ours", dtype] = ours.to(dtype)(x.to(dtype)).double()
    with torch.no_grad():
        for dtype in (torch.float64, torch.float32):
            out["ref", dtype] = ref.to(dtype)(x.to(dtype)).double()
    assert (out["ours", torch.float64] - out["ref", torch.float64]).abs().max() <= FP64_TOLERANCE
    ref_rounding = (out["ref", torch.float32] - out["ref", torch.float64]).abs().max()
    assert (out["ours", torch.float32] - out["ref", torch.float32]).abs().max() <= FP32_ERROR_FACTOR * ref_rounding


@pytest.mark.parametrize("name", ["lightweight_x2", "classical_x2"])
def test_cuda_forecast_matches_the_cuda_path_with_a_score_free_kernel(name, monkeypatch):
    """SDPA's fused kernels keep no scores: a stand-in that keeps none either shows what the rest of the path needs."""
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda q, k, v, attn_mask, scale: torch.empty_like(q))
    config = ALL_CONFIGS[name]
    model = model_from_official(config, state_dict(name))
    x = torch.rand(1, 3, 64, 64)
    with tuning.override(**CUDA_PATH), torch.inference_mode():
        model(x[:, :, :16, :16])  # caches (prepacked weights, bias tables) are not activations
        peak = memory.measured_peak(lambda: model(x), torch.device("cpu"))
    predicted = swin2sr.estimate_memory(config, 64, 64, 1, torch.float32, "cuda") - memory.parameter_count(config) * 4
    assert abs(predicted - peak - x.numel() * 4) <= 0.15 * peak


@pytest.fixture(scope="module")
def builtin_x4_case():
    torch.set_num_threads(1)
    model = swin2sr.load_model("builtin-x4")
    image = np.asarray(Image.open(HELD_OUT).convert("RGB"))[:64, :96]
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        reference = model(x)
    return model, x, reference


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of a against b, values in 0..1 (no clamping: raw network outputs)."""
    mse = (a.double() - b.double()).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_bias_as_sdpa_gets_it_costs_little_on_trained_weights(builtin_x4_case, dtype, monkeypatch):
    """The fp32 model with the bias tables rounded exactly as `sdpa_attention` hands them to SDPA."""
    model, x, reference = builtin_x4_case
    exact = WindowAttention.bias_tables

    def rounded(self, shift, table_dtype):
        return engine.sdpa_mask(exact(self, shift, table_dtype), dtype).to(table_dtype) + engine.BIAS_CENTRE

    monkeypatch.setattr(WindowAttention, "bias_tables", rounded)
    with torch.no_grad():
        assert psnr(model(x), reference) >= MIN_PSNR_DB


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_cuda_path_stays_close_to_fp32_on_trained_weights(builtin_x4_case, dtype):
    model, x, reference = builtin_x4_case
    half = swin2sr.load_model("builtin-x4", dtype=dtype)
    with torch.no_grad():
        matmul_half = half(x.to(dtype)).float()
        with tuning.override(**CUDA_PATH):
            sdpa_half = half(x.to(dtype)).float()
    assert psnr(sdpa_half, reference) >= MIN_PSNR_DB
    assert psnr(sdpa_half, reference) >= psnr(matmul_half, reference) - 1.0  # the bias rounding is no worse


# ---------------------------------------------------------------- the planner's CUDA decisions


@pytest.fixture
def cuda_with_free(monkeypatch):
    """A pretend CUDA device: `set(free_bytes, bf16=True)` makes the memory and capability queries answer so."""

    def set_free(free: int, bf16: bool = True) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, free))
        monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return set_free


@pytest.fixture(scope="module")
def classical_x4_meta() -> Swin2SR:
    with torch.device("meta"):  # the planner needs the structure, not the weights
        return Swin2SR(OFFICIAL_CONFIGS["classical_x4"]).eval()


def plan_4k(model, **options) -> swin2sr.UpscalePlan:
    return swin2sr.plan_upscale(model, 4096, 4096, device="cuda", max_input_size=0, **options)


# ClassicalSR x4, 4096x4096 input: the largest tile side is the safe single-pass size for that card
# (docs/tiling-and-memory.md); the grid then shares the image evenly (balanced side) and batches as many tiles as
# still fit.
@pytest.mark.parametrize(("free_gb", "largest", "balanced", "per_batch"), [
    (8, 1152, 1040, 1), (12, 1416, 1376, 1), (24, 2008, 1376, 2), (80, 3664, 2056, 3),
])  # fmt: skip
def test_cuda_plan_for_a_4096_square_input(cuda_with_free, classical_x4_meta, free_gb, largest, balanced, per_batch):
    cuda_with_free(free_gb * GB)
    plan = plan_4k(classical_x4_meta)
    assert plan.dtype == torch.bfloat16
    assert plan.budget_bytes == int(free_gb * GB * memory.CUDA_SAFETY) and plan.free_bytes == free_gb * GB
    assert (plan.tile, plan.tile_h, plan.tiles_per_batch) == (largest, balanced, per_batch)
    assert plan.predicted_bytes <= plan.budget_bytes
    assert plan.chunk_tokens == tuning.CUDA_MAX_CHUNK_TOKENS


def test_cuda_plan_uses_the_largest_tile_that_fits(cuda_with_free, classical_x4_meta):
    for free_gb in (8, 12, 24, 80):
        cuda_with_free(free_gb * GB)
        plan = plan_4k(classical_x4_meta)
        bigger = plan.tile + classical_x4_meta.tile_multiple
        one_bigger = memory.estimate_memory(classical_x4_meta.config, bigger, bigger, 1, plan.dtype, "cuda")
        assert plan.tile == 4096 or one_bigger > plan.budget_bytes, free_gb


def test_cuda_precision_follows_the_device_and_fp16_enable(cuda_with_free, classical_x4_meta, monkeypatch):
    cuda_with_free(12 * GB, bf16=False)
    assert plan_4k(classical_x4_meta).dtype == torch.float16
    monkeypatch.setenv("FP16_ENABLE", "false")
    fp32 = plan_4k(classical_x4_meta)
    assert fp32.dtype == torch.float32
    assert fp32.tile < plan_4k(classical_x4_meta, precision="bf16").tile  # twice the bytes: a smaller tile


def test_small_budgets_shrink_cuda_chunks(cuda_with_free, classical_x4_meta):
    cuda_with_free(2 * GB)
    plan = plan_4k(classical_x4_meta)
    per_token = memory.CHUNK_PER_CHANNEL * 180 * 2
    assert plan.chunk_tokens == int(plan.budget_bytes * tuning.CHUNK_BUDGET_SHARE) // per_token
    assert plan.chunk_tokens < tuning.CUDA_MAX_CHUNK_TOKENS
