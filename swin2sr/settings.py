"""The Smart-Safe knobs: environment variables with one precedence rule.

Every knob is resolved the same way: an explicit argument wins, then the
environment variable, then the default.  Hosts and the CLI pass explicit
arguments; users who cannot reach an argument (a node's hidden option, an
A1111 launch script) set the variable.

MAX_INPUT_SIZE  (default 1024)  longest input side before the single-pass entry points downscale; 0 disables.
TILE_SIZE       (default auto)  tile side in input pixels; overrides the automatic choice.
FP16_ENABLE     (default true)  on CUDA, run in bf16 (or fp16 where bf16 is missing); false forces fp32.
"""

from __future__ import annotations

import os

DEFAULT_MAX_INPUT_SIZE = 1024
# Single-pass entry points also keep the output's longest side at or below this (the seed's cap).
MAX_OUTPUT_SIDE = 4096

TRUE_WORDS = ("1", "true", "yes", "on")  # how a yes/no setting may be written (case-insensitive)
FALSE_WORDS = ("0", "false", "no", "off")


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def env_int(name: str, default: int) -> int:
    """An integer environment variable; a malformed value is an error that names the variable."""
    value = _env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"environment variable {name}={value!r} is not a boolean (use true/false)")


def max_input_size(explicit: int | None = None) -> int:
    """Longest input side allowed before downscaling (0 = never downscale)."""
    size = explicit if explicit is not None else env_int("MAX_INPUT_SIZE", DEFAULT_MAX_INPUT_SIZE)
    if size < 0:
        raise ValueError(f"max_input_size must be >= 0 (0 disables the limit), got {size}")
    return size


def tile_size(explicit: int | str | None = "auto") -> int | None:
    """The tile side to use, or None for automatic.  "auto"/None defers to TILE_SIZE, then to the planner."""
    if explicit not in (None, "auto"):
        return _positive_tile(int(explicit), "tile")
    value = env_int("TILE_SIZE", 0)
    return _positive_tile(value, "TILE_SIZE") if value else None


def _positive_tile(value: int, name: str) -> int:
    if value < 0:
        raise ValueError(f"{name} must be a positive number of pixels, got {value}")
    return value


def fp16_enabled(explicit: bool | None = None) -> bool:
    """Whether half precision may be used on CUDA."""
    return explicit if explicit is not None else env_bool("FP16_ENABLE", True)
