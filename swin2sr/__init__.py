"""Swin2SR Upscaler: the host-independent core (network, loader, tiling, memory planning, pipelines)."""

from .arch import Swin2SR, Swin2SRConfig
from .foreign import SpandrelModel, load_any_model
from .loader import BUILTIN_MODELS, CheckpointError, load_model

__all__ = [
    "BUILTIN_MODELS",
    "CheckpointError",
    "SpandrelModel",
    "Swin2SR",
    "Swin2SRConfig",
    "load_any_model",
    "load_model",
]
