"""The five ComfyUI nodes of the Swin2SR pack (classic NODE_CLASS_MAPPINGS schema: ComfyUI 0.3.x and current).

Node classes only declare inputs and outputs and call `comfy_adapter` (ComfyUI plumbing) and the `swin2sr` core.
Ids carry a `Swin2SR_` prefix: ComfyUI silently skips a custom node whose id clashes with a built-in.
"""

from __future__ import annotations

from typing import Any

import torch

from . import comfy_adapter as host
from .swin2sr.faces import DETECTORS

CATEGORY = "image/upscaling/Swin2SR"
TARGETS = ("model scale", "factor", "size")
REGIONS = ("everywhere", "faces", "mask")
MAX_SIDE = 16384


def _target_inputs() -> dict[str, tuple]:
    """Output-size and sharpening widgets shared by both upscale nodes."""
    return {
        "target": (TARGETS, {"default": "model scale", "tooltip": "model scale: the checkpoint's own x2/x4; "
                             "factor: any scale (e.g. 2.0 with an x4 model); size: exact width/height"}),
        "factor": ("FLOAT", {"default": 2.0, "min": 0.25, "max": 16.0, "step": 0.05,
                             "tooltip": "output scale when target is 'factor'"}),
        "width": ("INT", {"default": 0, "min": 0, "max": MAX_SIDE, "step": 8,
                          "tooltip": "output width when target is 'size' (0: from height, keeping the aspect)"}),
        "height": ("INT", {"default": 0, "min": 0, "max": MAX_SIDE, "step": 8,
                           "tooltip": "output height when target is 'size' (0: from width, keeping the aspect)"}),
        "sharpen": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 0.5, "step": 0.01,
                              "tooltip": "unsharp-mask strength applied after upscaling (0: off)"}),
    }


def _model_and_image() -> dict[str, tuple]:
    return {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}


class ModelLoader:
    """Loads a Swin2SR checkpoint (or any spandrel model) as ComfyUI's standard UPSCALE_MODEL."""

    DESCRIPTION = ("Swin2SR checkpoints from models/swin2sr and models/upscale_models, plus the embedded "
                   "builtin-x4/x2 models (no download) and the official releases marked '(download)', fetched into "
                   "models/upscale_models on first run. Works with the built-in 'Upscale Image (using Model)' too.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("UPSCALE_MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {
            "model_name": (host.list_checkpoints(), {"default": host.BUILTIN_MODELS[0]}),
            "precision": (host.PRECISIONS, {"default": "auto", "tooltip": "auto: bf16 where ComfyUI deems it safe, "
                                            "else fp32; --force-fp32/--force-fp16 override this"}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, model_name: str) -> bool | str:
        return host.validate_checkpoint_name(model_name)

    def load(self, model_name: str, precision: str) -> tuple[Any]:
        return (host.load_upscale_model(model_name, precision),)


class Upscale:
    """Smart-Safe single pass: caps the input size up front, then plans tiles and precision automatically."""

    DESCRIPTION = ("Upscales with automatic tiling and precision. An input whose longer side exceeds max_input_size "
                   "is first downscaled to it (and the output side kept within 4096 px), so one huge image cannot "
                   "exhaust memory; use Swin2SR Tiled Upscale to keep full resolution.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {
            **_model_and_image(),
            **_target_inputs(),
            "max_input_size": ("INT", {"default": 1024, "min": 0, "max": MAX_SIDE, "step": 8,
                                       "tooltip": "longer input sides are downscaled to this first (0: never)"}),
        }}

    def upscale(self, upscale_model: Any, image: torch.Tensor, max_input_size: int, **target: Any) -> tuple:
        output, _ = host.upscale_images(upscale_model, image, tile="auto", max_input_size=max_input_size, **target)
        return (output,)


class TiledUpscale:
    """Upscales images of any size in tiles; reports the plan it chose."""

    DESCRIPTION = "Tiled upscale for any image size; tile_size 0 picks the largest tile that fits free memory."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("image", "plan")
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {
            **_model_and_image(),
            "tile_size": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 8,
                                  "tooltip": "input tile side in pixels (0: auto, from free memory)"}),
            "overlap": ("INT", {"default": 16, "min": 0, "max": 256, "step": 1,
                                "tooltip": "input pixels shared by neighbouring tiles, blended to hide seams"}),
            **_target_inputs(),
        }}

    def upscale(self, upscale_model: Any, image: torch.Tensor, tile_size: int, overlap: int, **target: Any) -> dict:
        output, plan = host.upscale_images(
            upscale_model, image, tile=tile_size or "auto", overlap=overlap, max_input_size=0, **target
        )
        return {"ui": {"text": [plan]}, "result": (output, plan)}


class FaceRefine:
    """Upscales an image, then re-renders face regions with a (possibly different) model and blends them in."""

    DESCRIPTION = ("Face Region Refine: finds faces (detector, or the regions of the given mask), upscales each face "
                   "crop so the face reaches face_size px, and pastes it back through a feathered, colour-matched "
                   "mask. Outputs the mask it used.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "face_mask")
    FUNCTION = "refine"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                **_model_and_image(),
                "detector": (DETECTORS, {"default": "auto", "tooltip": "offline face detector; auto: the "
                                         "embedded MTCNN (haar needs OpenCV 4.x)"}),
                "threshold": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05,
                                        "tooltip": "minimum detection confidence"}),
                "max_faces": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "refine the N largest (0: all)"}),
                "face_size": ("INT", {"default": 1024, "min": 0, "max": 4096, "step": 64,
                                      "tooltip": "each face is upscaled until its crop reaches this many px "
                                      "(0: the model's own scale)"}),
                "feather": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.05,
                                      "tooltip": "soft edge of the paste-back mask, relative to the face size"}),
                "color_match": ("BOOLEAN", {"default": True, "tooltip": "match each face's colours to its "
                                            "surroundings before pasting"}),
            },
            "optional": {
                "face_model": ("UPSCALE_MODEL", {"tooltip": "model for the face crops (default: upscale_model)"}),
                "base": ("IMAGE", {"tooltip": "an already upscaled version of image to paste the faces into"}),
                "mask": ("MASK", {"tooltip": "face regions to use instead of the detector"}),
            },
        }

    def refine(self, upscale_model: Any, image: torch.Tensor, face_model: Any = None,
               base: torch.Tensor | None = None, mask: torch.Tensor | None = None, **settings: Any) -> tuple:
        return host.refine_faces(upscale_model, image, face_model=face_model, base=base, mask=mask, **settings)


class TwoStage:
    """Real-ESRGAN (or any) first stage, then Swin2SR, over the whole image or only in given regions."""

    DESCRIPTION = ("Two-Stage: stage 1 (e.g. Real-ESRGAN x2 from Load Upscale Model) removes real-world degradation "
                   "up to scale / stage 2's scale, stage 2 (Swin2SR) adds detail; regions limits stage 2 to faces "
                   "or a mask, the rest is stage 1 enlarged smoothly.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "stage1_model": ("UPSCALE_MODEL",),
                "stage2_model": ("UPSCALE_MODEL",),
                "image": ("IMAGE",),
                "scale": ("INT", {"default": 4, "min": 2, "max": 16, "tooltip": "total scale: a multiple of the "
                                  "stage-2 model's scale; stage 1 covers the rest"}),
                "regions": (REGIONS, {"default": "everywhere", "tooltip": "where stage 2 runs"}),
                "detector": (DETECTORS, {"default": "auto", "tooltip": "face detector when regions is 'faces'"}),
            },
            "optional": {"mask": ("MASK", {"tooltip": "where stage 2 runs when regions is 'mask'"})},
        }

    def upscale(self, stage1_model: Any, stage2_model: Any, image: torch.Tensor, regions: str,
                mask: torch.Tensor | None = None, **settings: Any) -> tuple:
        return (host.two_stage(stage1_model, stage2_model, image, regions=regions, mask=mask, **settings),)


NODE_CLASS_MAPPINGS = {
    "Swin2SR_ModelLoader": ModelLoader,
    "Swin2SR_Upscale": Upscale,
    "Swin2SR_TiledUpscale": TiledUpscale,
    "Swin2SR_FaceRefine": FaceRefine,
    "Swin2SR_TwoStage": TwoStage,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "Swin2SR_ModelLoader": "Swin2SR Model Loader",
    "Swin2SR_Upscale": "Swin2SR Upscale",
    "Swin2SR_TiledUpscale": "Swin2SR Tiled Upscale",
    "Swin2SR_FaceRefine": "Swin2SR Face Region Refine",
    "Swin2SR_TwoStage": "Two-Stage Real-ESRGAN → Swin2SR",
}

host.register_model_folder()
