"""Checks for the public API's arguments: a one-line TypeError or ValueError naming the argument and what it
accepts, raised before any work (a wrong `tile` must not cost a model load or a finished first stage).

TypeError: the argument has the wrong type.  ValueError: the type is right, the value is not.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping

import torch

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_NAMES = ("auto", *PRECISIONS)
PRECISION_DTYPES = tuple(PRECISIONS.values())
_DEVICE_HINT = "use 'cpu', 'cuda', 'cuda:N' or 'mps'"


def whole_number(name: str, value, *, minimum: int = 0, allow_none: bool = False) -> int | None:
    """`value` as an int >= `minimum` (bools and fractional numbers refused)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        accepted = f"a whole number >= {minimum}" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {accepted}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_tile(tile) -> None:
    """tile: "auto"/None, 0 (one untiled pass) or a positive side in input pixels."""
    if tile is None or tile == "auto":
        return
    if isinstance(tile, str):
        raise ValueError(f"tile must be 'auto', 0 (one untiled pass) or a number of pixels, got {tile!r}")
    whole_number("tile", tile)


def check_precision(precision) -> None:
    if isinstance(precision, torch.dtype):
        if precision not in PRECISION_DTYPES:
            raise ValueError(f"precision must be float32, bfloat16 or float16, got {precision}")
        return
    if precision not in PRECISION_NAMES:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISION_NAMES))}, got {precision!r}")


def precision_dtype(name: str, precision) -> torch.dtype:
    """A float torch dtype, or one of the API's precision names ('fp32', 'bf16', 'fp16'), as the torch dtype."""
    if isinstance(precision, str) and precision in PRECISIONS:
        return PRECISIONS[precision]
    if isinstance(precision, torch.dtype) and precision in PRECISION_DTYPES:
        return precision
    accepted = f"one of {', '.join(map(repr, PRECISIONS))} or a torch dtype among {', '.join(map(str, PRECISION_DTYPES))}"
    if isinstance(precision, (str, torch.dtype)):
        raise ValueError(f"{name} must be {accepted}, got {precision!r}")
    raise TypeError(f"{name} must be {accepted}, got {type(precision).__name__} {precision!r}")


def check_device(device) -> torch.device | None:
    """The device as torch.device, after checking it exists here: a one-line ValueError otherwise."""
    if device is None:
        return None
    if not isinstance(device, (str, torch.device, int)) or isinstance(device, bool):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0' or a torch.device, got {device!r}")
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {device!r} is not a device name; {_DEVICE_HINT}") from None
    if device.type == "cpu":
        return device
    if device.type == "meta":  # moving a model there would drop its weights for good
        raise ValueError(f"device 'meta' holds shapes but no values, so nothing can run on it; {_DEVICE_HINT}")
    backend = torch.backends.mps if device.type == "mps" else getattr(torch, device.type, None)
    if not hasattr(backend, "is_available"):
        return device  # a backend torch knows and we do not (DirectML's privateuseone, ...): torch will judge
    if not backend.is_available():
        raise ValueError(f"device {str(device)!r} is not available on this machine{_why_not(device.type)}; use 'cpu'")
    count = getattr(backend, "device_count", lambda: 1)()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {str(device)!r} does not exist: this machine has {count} {device.type} device(s)")
    return device


def _why_not(device_type: str) -> str:
    if device_type == "mps":
        return " (Apple's Metal backend needs macOS 12.3+ and a PyTorch build with MPS)"
    if device_type != "cuda":
        return ""
    if torch.version.cuda is None:
        return f" (torch {torch.__version__} is built without CUDA: install a CUDA build of torch)"
    return " (no CUDA GPU is visible: check the driver and CUDA_VISIBLE_DEVICES)"


def check_upscale_options(*, tile, overlap, precision, max_input_size, memory_budget, free_memory, device) -> None:
    """Every option of `plan_upscale` / `upscale`, checked together before anything runs."""
    check_tile(tile)
    whole_number("overlap", overlap)
    check_precision(precision)
    whole_number("max_input_size", max_input_size, allow_none=True)
    whole_number("memory_budget", memory_budget, minimum=1, allow_none=True)
    if free_memory is not None and not callable(free_memory):
        whole_number("free_memory", free_memory)
    check_device(device)


def check_load_arguments(source, device, dtype) -> None:
    """load_model / load_any_model: a path, a builtin name or a state dict; a device that exists; a float dtype."""
    if not isinstance(source, (str, os.PathLike, Mapping)):
        raise TypeError(f"source must be a checkpoint path, a builtin name such as 'builtin-x4' or a state dict, "
                        f"got {type(source).__name__}")  # fmt: skip
    check_device(device)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float16, or None; got {dtype!r}")
