"""Swin2SR Upscaler: the host-independent core (network, loader, tiling, memory planning, pipelines)."""

from .arch import Swin2SR, Swin2SRConfig
from .engine import run_with_fallback

__all__ = ["Swin2SR", "Swin2SRConfig", "run_with_fallback"]
