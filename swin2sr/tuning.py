"""Per-device tuning of the engine, in one place: attention kernel, chunk size, head-dim padding, compilation.

What each device type gets, and why:

* **cpu** -- batched matmul + in-place softmax + matmul (`F.scaled_dot_product_attention`
  measured 3-5x slower for 64-token windows with head dim 30 on a 2-core AMD EPYC);
  chunks of 8192 tokens (half the kernel launches of 4096, which halved the time on
  a busy CPU; 16384 was slower again); no head padding.
* **cuda** -- SDPA (the memory-efficient kernel never materialises the scores);
  the head dimension zero-padded to a multiple of 8, the alignment that kernel
  needs in half precision (Swin2SR's 180 channels / 6 heads = 30 -> 32; zero
  columns add nothing to q.k and give zero output columns that are cut off, so
  the result is identical); chunks of up to 2**18 tokens (a 512x512 tile in one
  chunk: at 1024x1024 4 chunks per block instead of 128, so kernel launches do not
  dominate), and never more than `CHUNK_BUDGET_SHARE` of the planner's memory
  budget (`chunk_tokens(..., budget_tokens=...)`).
* **anything else** (mps, xpu, ...) -- SDPA, unpadded, 8192 tokens: not measured.

Every choice can be overridden, for tests and measurements:

* environment: ``SWIN2SR_ATTENTION=matmul|sdpa``, ``SWIN2SR_CHUNK_TOKENS=<n>``,
  ``SWIN2SR_HEAD_MULTIPLE=<n>``, ``SWIN2SR_COMPILE=1`` (all devices);
* in code: ``with tuning.override(attention="sdpa", chunk_tokens=1 << 18): ...``
  (wins over the environment), or a model's own ``chunk_tokens`` attribute (wins over both: `upscale`
  plans and runs with it and leaves it as it was).

``compile`` (off by default, never required): the attention core runs through
`torch.compile`, compiled once per input shape and dtype.  The first call at a new
shape pays the compilation (tens of seconds on a CPU, needs a C++ compiler);
see docs/performance.md for what it buys.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, fields, replace
from typing import Iterator

from .settings import TRUE_WORDS

ATTENTION_KERNELS = ("matmul", "sdpa")
CUDA_MAX_CHUNK_TOKENS = 1 << 18
MIN_CHUNK_TOKENS = 8192
# Share of the planner's budget one chunk's intermediates (qkv, MLP hidden, outputs) may take on CUDA.
CHUNK_BUDGET_SHARE = 0.25


@dataclass(frozen=True)
class Tuning:
    """The engine's choices for one device type."""

    attention: str  # "matmul" or "sdpa"
    chunk_tokens: int  # tokens per attention/MLP chunk (upper bound)
    head_multiple: int  # SDPA: q, k, v zero-padded to a head dim that is a multiple of this
    compile: bool = False  # attention core through torch.compile (opt-in)


DEFAULTS = {
    "cpu": Tuning(attention="matmul", chunk_tokens=8192, head_multiple=1),
    "cuda": Tuning(attention="sdpa", chunk_tokens=CUDA_MAX_CHUNK_TOKENS, head_multiple=8),
}
OTHER_DEVICES = Tuning(attention="sdpa", chunk_tokens=8192, head_multiple=1)
ENVIRONMENT = {
    "attention": "SWIN2SR_ATTENTION",
    "chunk_tokens": "SWIN2SR_CHUNK_TOKENS",
    "head_multiple": "SWIN2SR_HEAD_MULTIPLE",
    "compile": "SWIN2SR_COMPILE",
}
_overrides: dict[str, object] = {}


def for_device(device_type: str) -> Tuning:
    """The tuning for `device_type` ("cpu", "cuda", ...): defaults, then the environment, then `override`."""
    tuning = DEFAULTS.get(device_type, OTHER_DEVICES)
    return replace(tuning, **{**_from_environment(), **_overrides})


def chunk_tokens(device_type: str, budget_tokens: int | None = None) -> int:
    """Tokens per chunk on `device_type`; on CUDA at most `budget_tokens` (the chunks a budget share allows).

    An explicit override (environment or `override`) is taken as is.
    """
    tokens = for_device(device_type).chunk_tokens
    explicit = "chunk_tokens" in _overrides or ENVIRONMENT["chunk_tokens"] in os.environ
    if device_type == "cuda" and budget_tokens is not None and not explicit:
        tokens = max(MIN_CHUNK_TOKENS, min(tokens, int(budget_tokens)))
    return tokens


@contextlib.contextmanager
def override(**choices: object) -> Iterator[None]:
    """Force tuning choices for every device inside the block, e.g. ``override(attention="sdpa")``."""
    _check(choices)
    saved = dict(_overrides)
    _overrides.update(choices)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)


def _from_environment() -> dict[str, object]:
    values: dict[str, object] = {}
    for name, variable in ENVIRONMENT.items():
        raw = os.environ.get(variable, "").strip()
        if not raw:
            continue
        if name == "attention":
            values[name] = raw.lower()
        elif name == "compile":
            values[name] = raw.lower() in TRUE_WORDS
        else:
            try:
                values[name] = int(raw)
            except ValueError:
                raise ValueError(f"{variable} must be a whole number, got {raw!r}") from None
    _check(values, source="environment")
    return values


def _check(choices: dict[str, object], source: str = "override") -> None:
    known = {f.name for f in fields(Tuning)}
    unknown = set(choices) - known
    if unknown:
        raise TypeError(f"unknown tuning choices {sorted(unknown)}; expected some of {sorted(known)}")
    if "attention" in choices and choices["attention"] not in ATTENTION_KERNELS:
        hint = f" (set {ENVIRONMENT['attention']} to one of them)" if source == "environment" else ""
        raise ValueError(f"attention kernel must be one of {ATTENTION_KERNELS}, got {choices['attention']!r}{hint}")
    for name in ("chunk_tokens", "head_multiple"):
        if name in choices and int(choices[name]) < 1:  # type: ignore[call-overload]
            raise ValueError(f"{name} must be at least 1, got {choices[name]}")
