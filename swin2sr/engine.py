"""Compute kernels of the fast path, chosen per device, and the half-precision fallback.

The network code in `arch.py` / `attention.py` calls the primitives below, so
that the choice of kernel lives in one place:

* `linear`: on CPU in fp32/bf16 without autograd, a oneDNN matmul on a weight
  reordered ("prepacked") once and cached.  PyTorch's default `F.linear` goes
  to MKL, which runs AVX2 code on AMD processors; the prepacked oneDNN kernel
  measured about 2x faster for these shapes (4096 x 180 x 540 matmuls).
  GELU is fused into the matmul the same way.
* `window_attention`: the kernel `swin2sr.tuning` chooses per device: on CUDA
  `F.scaled_dot_product_attention` with the head dim padded to 32 (its
  memory-efficient kernel keeps no score tensor); on CPU batched matmul +
  in-place softmax + matmul, which measured 3-5x faster than SDPA for these
  shapes (64 tokens, head dim 30, a per-head bias).
* `add_`: residual additions, in place when nothing records a graph.
* `conv_layout`: the memory layout convolutions run in (see its docstring).

Every primitive falls back to plain differentiable PyTorch ops while autograd
is recording, so `model.train()` + backward goes through the same module.

Caches keyed on weights (prepacked weights here, bias tables in `attention.py`)
take their key from `weight_version`, which works for every kind of tensor a
host hands us: ComfyUI loads and runs models under `torch.inference_mode()`,
whose tensors have no version counter.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from . import tuning

logger = logging.getLogger("swin2sr")

HALF_DTYPES = (torch.float16, torch.bfloat16)
_PACKED: WeakIdKeyDictionary = WeakIdKeyDictionary()  # weight parameter -> (version key, packed weight)
_PACK_ROWS_HINT = 4096  # oneDNN picks the blocked layout for this many rows; any row count works
_forward_pass = 0  # counts forward passes; see weight_version


def begin_forward_pass() -> None:
    """Mark the start of a forward pass (called by the network), so caches keyed on inference tensors expire."""
    global _forward_pass
    _forward_pass += 1


def weight_version(weight: torch.Tensor) -> tuple:
    """A key that changes whenever `weight` may have changed: storage, dtype and version.

    Normal tensors and parameters count their in-place changes in `_version`.
    Inference tensors (made under `torch.inference_mode()`) count nothing and
    can still be changed in place inside that mode, so for them the key is the
    forward pass: what is cached from them is rebuilt once per pass, never
    reused across passes.
    """
    version = ("pass", _forward_pass) if weight.is_inference() else weight._version
    return (weight.data_ptr(), weight.dtype, version)


def _use_onednn(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16)
        and torch.backends.mkldnn.is_available()
        and not torch.is_grad_enabled()
    )


def _packed_weight(weight: torch.Tensor) -> torch.Tensor:
    """The oneDNN-reordered copy of `weight` (2-D view of a Linear or 1x1 Conv weight), rebuilt if it changed."""
    key = weight_version(weight)
    cached = _PACKED.get(weight)
    if cached is None or cached[0] != key:
        w2d = weight.detach().reshape(weight.shape[0], -1)
        cached = (key, torch.ops.mkldnn._reorder_linear_weight(w2d, _PACK_ROWS_HINT))
        _PACKED[weight] = cached
    return cached[1]


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False) -> torch.Tensor:
    """x @ weight.T + bias (then exact GELU if asked); `weight` may be a 1x1 conv weight [out, in, 1, 1]."""
    if _use_onednn(x):
        return torch.ops.mkldnn._linear_pointwise(
            x, _packed_weight(weight), bias, "gelu" if gelu else "none", [], "none" if gelu else ""
        )
    y = F.linear(x, weight.reshape(weight.shape[0], -1), bias)
    return F.gelu(y) if gelu else y


def add_(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + y, written into x unless autograd is recording (x is then often a view of the residual stream)."""
    return x + y if torch.is_grad_enabled() else x.add_(y)


def conv_layout(x: torch.Tensor) -> torch.Tensor:
    """`x` [B, C, H, W] in the layout its convolution should run in: channels-last for half precision only.

    oneDNN's channels-last kernels measured ~1.4x faster than its NCHW ones,
    but they sum in another order and their fp32 rounding error is ~5x larger,
    which breaks fp32 parity on the JPEG model (pixel range 255).  fp32 is the
    exactness reference, so it keeps NCHW; bf16/fp16 are approximate anyway.
    """
    if x.dtype in HALF_DTYPES:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tables: torch.Tensor, runs: list[tuple[int, int, int]]
) -> torch.Tensor:
    """softmax(q @ k^T + bias) @ v over [windows, heads, N, d]; q already carries the logit scale.

    Windows [a, b) take the bias `tables[t]` [heads, N, N] for each (a, b, t)
    in `runs`: the position bias plus, for shifted windows, their shift-mask
    pattern.  The kernel is the device's (`tuning.for_device`).  The tables are
    float32 when q is half precision: logits reach +-100, where a bf16 step is
    0.5, so the matmul kernel adds the bias and takes the softmax in float32.
    SDPA takes the bias in q's dtype (see `sdpa_attention`).
    """
    choice = tuning.for_device(q.device.type)
    if choice.attention == "sdpa":
        return sdpa_attention(q, k, v, tables, runs, choice.head_multiple)
    if choice.compile and not torch.is_grad_enabled():
        core = _compiled(_attention_core)  # the conditions of maybe_compiled hold here
        return torch.cat([core(q[a:b], k[a:b], v[a:b], tables[t]) for a, b, t in runs])
    scores = _add_bias(torch.matmul(q, k.transpose(-2, -1)), tables, runs)
    if torch.is_grad_enabled():
        return torch.softmax(scores, dim=-1).to(v.dtype) @ v
    torch.ops.aten._softmax.out(scores, -1, False, out=scores)  # in place: the kernel works row by row
    return torch.matmul(scores.to(v.dtype), v)


def _attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The matmul kernel for one run of windows sharing `table`, written for torch.compile to fuse."""
    scores = torch.matmul(q, k.transpose(-2, -1)).to(table.dtype) + table
    return torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), v)


def maybe_compiled(fn: Callable, device_type: str) -> Callable:
    """`fn`, or its torch.compile'd twin when the device's tuning asks for it (opt-in) and autograd is off."""
    if tuning.for_device(device_type).compile and not torch.is_grad_enabled():
        return _compiled(fn)
    return fn


@functools.cache
def _compiled(fn: Callable) -> Callable:
    """`fn` compiled once per process; sizes are dynamic, so chunks and tiles of any size reuse the kernels."""
    return torch.compile(fn, dynamic=True)


BIAS_CENTRE = 8.0  # middle of the position bias range (16 * sigmoid): see sdpa_attention


def sdpa_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    tables: torch.Tensor,
    runs: list[tuple[int, int, int]],
    head_multiple: int = 1,
) -> torch.Tensor:
    """`window_attention` through `F.scaled_dot_product_attention`, head dim zero-padded to `head_multiple`.

    Zero columns in q and k add nothing to q.k, and zero columns in v give
    zero output columns, which are cut off: the padding changes no value, it
    only makes the head dim eligible for the memory-efficient CUDA kernel (30 -> 32).
    SDPA wants the bias in q's dtype; the kernels add it to float32 scores, so
    only the bias itself is rounded.  In half precision it is first centred
    (minus BIAS_CENTRE: the position bias is 16 * sigmoid, in 0..16, so this
    halves its magnitude and its rounding error; softmax ignores a constant).
    On the trained builtin-x4 the rounded bias alone costs 90 dB (bf16) / 107 dB
    (fp16) uncentred and 103 / 121 dB centred, against 57 / 76 dB for the whole
    model in bf16 / fp16 (`tests/test_engine_tuning.py` keeps it >= 45 dB).
    Masked entries (near -100) weigh exp(-84) or less whatever their rounding.
    """
    d = q.shape[-1]
    pad = -d % head_multiple
    if pad:
        q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
    masks = sdpa_mask(tables, q.dtype)
    out = torch.cat(
        [F.scaled_dot_product_attention(q[a:b], k[a:b], v[a:b], attn_mask=masks[t], scale=1.0) for a, b, t in runs]
    )
    return out[..., :d] if pad else out


def sdpa_mask(tables: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The bias tables as SDPA takes them: in `dtype`, centred first when that rounds them (see sdpa_attention)."""
    return tables if tables.dtype == dtype else (tables - BIAS_CENTRE).to(dtype)


def _add_bias(scores: torch.Tensor, tables: torch.Tensor, runs: list[tuple[int, int, int]]) -> torch.Tensor:
    if torch.is_grad_enabled():
        return torch.cat([scores[a:b] + tables[t] for a, b, t in runs])
    scores = scores.to(tables.dtype)
    for a, b, t in runs:
        scores[a:b].add_(tables[t])
    return scores


def model_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


class NonFiniteOutput(ValueError):
    """The model gave NaN or infinite values in float32: its weights (or the model code) are broken."""


def run_with_fallback(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """model(x) in the model's dtype; a half-precision result that is not finite is redone in fp32.

    fp16 overflows on some inputs (large activations in the MLP); bf16 rarely
    does.  The model is cast to fp32 and back for the retry, which is lossless
    (every fp16/bf16 value is exact in fp32), so no second copy of the weights
    is kept.  Returns the output in the dtype that produced it.  A result that is
    still not finite in fp32 raises NonFiniteOutput: written out, it would be a
    black or grey image with nothing said.
    """
    dtype = model_dtype(model)
    out = model(x.to(dtype))
    if torch.isfinite(out).all():
        return out
    if dtype in HALF_DTYPES:
        logger.warning("%s output is not finite; redoing this batch in float32", dtype)
        model.float()
        try:
            out = model(x.float())
        finally:
            model.to(dtype)
        if torch.isfinite(out).all():
            return out
    bad = int((~torch.isfinite(out)).sum())
    raise NonFiniteOutput(
        f"the model's output has {bad} NaN or infinite values even in float32, so nothing was written; "
        "its weights are probably damaged or badly trained: try another checkpoint"
    )
