"""Memory forecaster and budget: how many bytes a batch of tiles needs, and how many we may use.

The forecast is weights + activations.  Activation memory grows linearly with
the padded input pixels ("tokens") of the tiles in a batch, so it is modelled as
elements per token, derived from this package's engine (swin2sr/arch.py) and
calibrated against it with the torch profiler (benchmarks/bench_tiling.py
calibrate; tests/test_tiling_memory.py keeps it within 20%):

* body (the Swin stages): the residual stream and its regathered copies and the
  long skip, STREAM_PER_CHANNEL * C per token, plus one chunk of at most
  `tuning.chunk_tokens` tokens in flight: qkv, MLP hidden, outputs
  (CHUNK_PER_CHANNEL * C) and the attention kernel's own: with the CPU's
  matmul kernel the h * M^2 attention scores per token (C = embed_dim,
  h = heads, M = window); with SDPA (CUDA), which keeps no scores, the padded
  q/k/v copies and outputs, SDPA_PER_CHANNEL * C + SDPA_PER_HEAD * h (a fit,
  on the CPU with the CUDA path forced and a score-free stand-in for the
  kernel: within 1% for the released configurations, +8% for the builtin shape;
  benchmarks/gpu_check.py measures the real kernels).
* head: the upsampler's full-resolution tensors, HEAD_FACTOR * 64 * s^2 per
  token (pixelshuffle: conv output + shuffled copy + layout copies).
  The peak is max(body, head): the body's tensors are freed before the head runs.
* input and output of the tiles: 3 + 3 * s^2 per token.

Models without a Swin2SR config (foreign architectures) get a conservative
generic figure; `measured_peak` can measure one instead (a one-off probe).
"""

from __future__ import annotations

from typing import Callable

import torch

from . import system, tuning
from .arguments import precision_dtype, whole_number
from .arch import Swin2SR, Swin2SRConfig
from .foreign import ModelLike, as_model

NUM_FEAT = 64
STREAM_PER_CHANNEL = 2.5
CHUNK_PER_CHANNEL = 7
SDPA_PER_CHANNEL = 2.5
SDPA_PER_HEAD = 40
# Per-upsampler head multiplier of 64*s^2 elements per token (measured on this engine, see module docstring).
HEAD_FACTOR = {"pixelshuffle": 2.27, "pixelshuffle_aux": 3.5, "nearest+conv": 3.2, "pixelshuffledirect": 0.1, "": 0.0}
# Foreign models: elements per LR pixel, conservative for ESRGAN/Compact-style heads at full resolution.
GENERIC_BASE_ELEMENTS = 1024
GENERIC_HEAD_ELEMENTS = 4 * NUM_FEAT  # times scale^2
# Share of the free device memory (CUDA, MPS) the planner may use (the rest: fragmentation, workspaces, display).
CUDA_SAFETY = 0.8
# On the CPU bigger tiles are not faster (attention is windowed), so RAM use is kept modest.
CPU_SAFETY = 0.25
CPU_BUDGET_CAP = 512 << 20


def dtype_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def activation_elements(
    config, pixels: int, batch: int = 1, device_type: str = "cpu", chunk_tokens: int | None = None
) -> int:
    """Peak activation elements for `batch` tiles of `pixels` padded input pixels each.

    `chunk_tokens`: the chunk size the run will use (default: the device's, `tuning.chunk_tokens`).
    """
    c, m, s = config.embed_dim, config.window_size, config.scale
    tokens = pixels * batch
    if tuning.for_device(device_type).attention == "sdpa":
        attention = SDPA_PER_CHANNEL * c + SDPA_PER_HEAD * max(config.num_heads)
    else:
        attention = max(config.num_heads) * m * m
    chunk = min(tokens, chunk_tokens or tuning.chunk_tokens(device_type))
    body = STREAM_PER_CHANNEL * c * tokens + (CHUNK_PER_CHANNEL * c + attention) * chunk
    head = HEAD_FACTOR.get(config.upsampler, 3.5) * NUM_FEAT * s * s * tokens
    return int(max(body, head) + (3 + 3 * s * s) * tokens)


def padded(side: int, multiple: int) -> int:
    return -(-side // multiple) * multiple


def estimate_memory(
    config: Swin2SRConfig | ModelLike,
    tile_h: int,
    tile_w: int,
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
    device="cpu",
    chunk_tokens: int | None = None,
) -> int:
    """Predicted peak device bytes (weights + activations) for one forward of `batch` tiles on `device`.

    `config` is a Swin2SRConfig, or a model (anything `foreign.as_model` takes, e.g. ComfyUI's
    UPSCALE_MODEL): for a model without a config the generic estimate (parameter bytes + a
    conservative per-pixel figure) is used.  `dtype`: a torch dtype or a precision name ('fp32', 'bf16', 'fp16').
    Sizes and counts below 1 are refused (a one-line ValueError), not turned into a meaningless figure.
    """
    for name, value in (("tile_h", tile_h), ("tile_w", tile_w), ("batch", batch)):
        whole_number(name, value, minimum=1)
    whole_number("chunk_tokens", chunk_tokens, minimum=1, allow_none=True)
    size = dtype_size(precision_dtype("dtype", dtype))
    if not isinstance(config, Swin2SRConfig):
        model = as_model(config, "config", also="a Swin2SRConfig")
        weights = sum(p.numel() for p in model.parameters()) * size
        config = getattr(model, "config", None)
        if config is None:
            scale = int(getattr(model, "scale", 4))
            per_px = GENERIC_BASE_ELEMENTS + GENERIC_HEAD_ELEMENTS * scale * scale
            return weights + per_px * tile_h * tile_w * batch * size
    else:
        weights = parameter_count(config) * size
    pixels = padded(tile_h, config.window_size) * padded(tile_w, config.window_size)
    return weights + activation_elements(config, pixels, batch, torch.device(device).type, chunk_tokens) * size


def budget_chunk_tokens(config: Swin2SRConfig | torch.nn.Module, dtype: torch.dtype, device, budget: int) -> int:
    """Tokens per chunk for a run under `budget` bytes: the device's choice, on CUDA at most a share of the budget.

    A model's own `chunk_tokens` attribute, when set, is the user's override (swin2sr.tuning) and wins: the
    run uses it, so the forecast must too.
    """
    device_type = torch.device(device).type
    if not isinstance(config, Swin2SRConfig):
        if getattr(config, "chunk_tokens", None):
            return int(config.chunk_tokens)
        config = getattr(config, "config", None)
    if config is None:  # a foreign model: no chunks
        return tuning.chunk_tokens(device_type)
    per_token = CHUNK_PER_CHANNEL * config.embed_dim * dtype_size(dtype)
    return tuning.chunk_tokens(device_type, int(budget * tuning.CHUNK_BUDGET_SHARE) // per_token)


def parameter_count(config) -> int:
    """Parameters of a Swin2SR with this config (built on the meta device: no memory, no time)."""
    return _parameter_count(config)


def _parameter_count(config, _cache: dict = {}) -> int:  # noqa: B006 - deliberate memo
    if config not in _cache:
        with torch.device("meta"):
            _cache[config] = sum(p.numel() for p in Swin2SR(config).parameters())
    return _cache[config]


def free_memory(device: torch.device) -> int:
    """Free bytes on `device`: CUDA's free plus what torch has cached, the Apple GPU's (system.mps_free_memory),
    or the host's available RAM (the CPU, and devices torch reports nothing for)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + cached
    if device.type == "mps":
        return system.mps_free_memory()
    return system.available_ram()


def memory_budget(
    device: torch.device,
    cap: int | None = None,
    free: int | Callable[[], int] | None = None,
) -> tuple[int, int]:
    """(budget, free) in bytes: free device memory times a safety factor, capped by the user's `cap`.

    `free` is the host's figure (bytes or a callable returning bytes), used
    instead of our own measurement when a host manages the device (ComfyUI's
    get_free_memory knows what it can evict).
    """
    if callable(free):
        free = free()
    if free is None:
        free = free_memory(device)
    free = int(free)
    if device.type == "cpu":
        budget = min(int(free * CPU_SAFETY), CPU_BUDGET_CAP)
    else:
        budget = int(free * CUDA_SAFETY)
    if cap is not None:
        budget = min(budget, int(cap))
    return budget, free


def measured_peak(run: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated on `device` while `run()` executes, above what was allocated before.

    CUDA: the allocator's max_memory_allocated.  CPU: the torch profiler's allocation
    events, replayed in order (what torch itself allocates; not allocator slack).
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def human_bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
