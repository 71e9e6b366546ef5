"""Swin2SR Upscaler: the host-independent core (network, loader, tiling, memory planning, pipelines)."""

from .arch import Swin2SR, Swin2SRConfig
from .faces import FaceBox
from .pipelines import PipelineReport, RefinedRegion, TwoStageReport, refine_faces, two_stage

__all__ = [
    "FaceBox",
    "PipelineReport",
    "RefinedRegion",
    "Swin2SR",
    "Swin2SRConfig",
    "TwoStageReport",
    "refine_faces",
    "two_stage",
]
