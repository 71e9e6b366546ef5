"""Swin2SR Upscaler: the host-independent core (network, loader, tiling, memory planning, pipelines)."""

from .arch import Swin2SR, Swin2SRConfig

__all__ = ["Swin2SR", "Swin2SRConfig"]
