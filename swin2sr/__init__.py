"""Swin2SR Upscaler: the host-independent core (network, loader, tiling, memory planning, pipelines)."""

from .arch import Swin2SR, Swin2SRConfig
from .engine import run_with_fallback
from .faces import FaceBox
from .foreign import ModelLike, SpandrelModel, as_model, load_any_model
from .loader import BUILTIN_MODELS, CheckpointError, builtin_model_files, load_model
from .memory import estimate_memory, memory_budget
from .pipelines import PipelineReport, RefinedRegion, TwoStageReport, refine_faces, two_stage
from .tiling import UpscaleCancelled, is_oom
from .upscale_files import FileReport, upscale_file
from .postprocess import sharpen, target_size
from .upscale import UpscalePlan, UpscaleReport, plan_upscale, upscale

__all__ = [
    "BUILTIN_MODELS",
    "CheckpointError",
    "FaceBox",
    "FileReport",
    "ModelLike",
    "PipelineReport",
    "RefinedRegion",
    "SpandrelModel",
    "Swin2SR",
    "Swin2SRConfig",
    "TwoStageReport",
    "UpscaleCancelled",
    "UpscalePlan",
    "UpscaleReport",
    "as_model",
    "builtin_model_files",
    "estimate_memory",
    "is_oom",
    "load_any_model",
    "load_model",
    "memory_budget",
    "plan_upscale",
    "refine_faces",
    "run_with_fallback",
    "sharpen",
    "target_size",
    "two_stage",
    "upscale",
    "upscale_file",
]
