"""Everything that ties the Swin2SR core to ComfyUI, kept out of `nodes.py` so the node classes stay declarative.

Host contracts used here (tested in the real ComfyUI 0.3.64 and 0.8.0, and against a stand-in of later upstream;
every difference between versions is detected by feature, never by version number):

* `folder_paths`: the `upscale_models` folder plus our own `swin2sr` folder, registered at import (cheap).
* `comfy.model_management`: device, free memory, `load_models_gpu` with a forecast, OOM recognition, precision flags.
* `comfy.model_patcher`: `CoreModelPatcher` when it exists (upstream after 0.8.0), else `ModelPatcher` (0.3.64,
  0.8.0).
* `model_management.is_oom` when it exists (upstream after 0.8.0), else `OOM_EXCEPTION` (0.3.64, 0.8.0).
* `comfy.utils.ProgressBar`: one bar for all tiles of all images; ComfyUI's progress hook raises the interruption
  when the user presses Cancel, and `cancel=` polls the same flag between tile batches.

The UPSCALE_MODEL we hand out is what ComfyUI's own "Load Upscale Model" returns, a spandrel
`ImageModelDescriptor`, wrapping our fast module and carrying a `.patcher` attribute like later upstream's loader
does, so the built-in "Upscale Image (using Model)" accepts it in every version. A model from the built-in loader
may or may not carry a `.patcher` (0.3.64 and 0.8.0: none); `model_patcher` uses it only when it is there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import folder_paths

from . import comfy_models
from . import swin2sr as core
from .swin2sr.io import images as core_images
from .swin2sr import pipelines

log = logging.getLogger("swin2sr")

FOLDER = "swin2sr"
BUILTIN_MODELS = tuple(core.BUILTIN_MODELS)  # the embedded checkpoints: "builtin-x4", "builtin-x2"
_BUILTIN_PATHS = core.builtin_model_files().values()
_BUILTIN_FILES = {path.name for path in _BUILTIN_PATHS}  # swin2sr-builtin-x4.safetensors, ...
_BUILTIN_FOLDER = next(iter(_BUILTIN_PATHS)).parent  # holds only those files
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CHECKPOINT_EXTENSIONS = (".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".sft")

# Attribute names we attach to an UPSCALE_MODEL object (ours or one from the built-in loader); the module the
# core runs for it is cached by the core itself (core.foreign.CORE_MODEL_ATTR).
_PRECISION_ATTR = "swin2sr_precision"
_PATCHER_ATTR = "swin2sr_patcher"


def register_model_folder() -> None:
    """Add models/swin2sr to ComfyUI's model folders (extra_model_paths.yaml may add more under the same name), and
    the embedded models' folder to upscale_models, after the user's own: the built-in Load Upscale Model then
    offers swin2sr-builtin-x4/x2.safetensors (spandrel reads them)."""
    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))
    folder_paths.add_model_folder_path("upscale_models", str(_BUILTIN_FOLDER))


# --------------------------------------------------------------------------------------------------------------------
# Checkpoint listing and loading


def list_checkpoints() -> list[str]:
    """Embedded defaults first, then models/swin2sr, then models/upscale_models (duplicates shown once; the
    embedded models' own files, registered there for the built-in loader, only under their builtin-x4/x2 names),
    then the official models not downloaded yet, marked "(download)"."""
    names = list(BUILTIN_MODELS)
    for folder in comfy_models.MODEL_FOLDERS:
        for name in folder_paths.get_filename_list(folder):
            if name.lower().endswith(CHECKPOINT_EXTENSIONS) and name not in names and name not in _BUILTIN_FILES:
                names.append(name)
    return names + comfy_models.download_labels()


def resolve_checkpoint(name: str) -> str:
    """Path of a listed checkpoint (an official model is verified, and downloaded first if need be), or the
    builtin name itself (the core resolves those)."""
    if name in BUILTIN_MODELS:
        return name
    official = comfy_models.official_entry(name)
    if official is not None:
        return comfy_models.official_file(official)
    path = comfy_models.find_in_model_folders(name)
    if path is not None:
        return path
    raise FileNotFoundError(_not_found(name))


def validate_checkpoint_name(name: str) -> bool | str:
    """The loader's VALIDATE_INPUTS: a listed name or any official model name (downloaded on run), else why not.

    Defining it makes ComfyUI skip its own "value not in list" check, so a workflow naming an official model
    runs before the file is here, and a "(download)" label saved before it arrived still runs after."""
    return name in list_checkpoints() or comfy_models.official_entry(name) is not None or _not_found(name)


def _not_found(name: str) -> str:
    return (f"Swin2SR checkpoint {name!r} is not in models/{FOLDER} or models/upscale_models; "
            "put the file there and press R (refresh) in ComfyUI.")  # fmt: skip


def load_upscale_model(name: str, precision: str = "auto") -> Any:
    """Load a checkpoint as ComfyUI's UPSCALE_MODEL: Swin2SR through our loader, anything else through spandrel."""
    model = core.load_any_model(resolve_checkpoint(name))
    handle = as_upscale_model(model)
    setattr(handle, _PRECISION_ATTR, precision)
    return handle


def as_upscale_model(model: torch.nn.Module) -> Any:
    """Wrap a core model object in the descriptor type ComfyUI's upscale nodes expect, with a patcher attached."""
    if model.config is not None:
        descriptor = _describe_swin2sr(model)
    else:  # a foreign (spandrel) model: it is an nn.Module with .scale already
        descriptor = PlainUpscaleModel(model)
    setattr(descriptor, core.foreign.CORE_MODEL_ATTR, model)
    if getattr(descriptor, "patcher", None) is None:
        descriptor.patcher = _new_patcher(descriptor.model)
    return descriptor


def _describe_swin2sr(model: torch.nn.Module) -> Any:
    """A spandrel ImageModelDescriptor around our module (spandrel imported only now), else a look-alike."""
    try:
        from spandrel import ImageModelDescriptor, SizeRequirements
        from spandrel.architectures.Swin2SR import Swin2SRArch
    except ImportError:
        return PlainUpscaleModel(model)
    return ImageModelDescriptor(
        model,
        model.state_dict(),
        Swin2SRArch(),
        purpose="SR",
        tags=[model.variant],
        supports_half=False,
        supports_bfloat16=True,
        scale=model.scale,
        input_channels=3,
        output_channels=3,
        size_requirements=SizeRequirements(minimum=1),
        call_fn=_call_in_model_dtype,
    )


def _call_in_model_dtype(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """ComfyUI's built-in node feeds float32 tiles; run them in whatever dtype the weights are in."""
    dtype = next(model.parameters()).dtype
    return model(image.to(dtype)).to(image.dtype)


class PlainUpscaleModel:
    """The subset of spandrel's ImageModelDescriptor ComfyUI's upscale node uses, for when spandrel is missing."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.scale = model.scale

    def to(self, *args: Any, **kwargs: Any) -> "PlainUpscaleModel":
        self.model.to(*args, **kwargs)
        return self

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return _call_in_model_dtype(self.model, image).clamp_(0, 1)


def _new_patcher(module: torch.nn.Module) -> Any:
    """ComfyUI's patcher for a plain nn.Module: CoreModelPatcher where it exists, else ModelPatcher."""
    patcher_class = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    return patcher_class(module, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def core_model(upscale_model: Any) -> torch.nn.Module:
    """The module our pipeline runs for any UPSCALE_MODEL (the core converts a built-in loader's descriptor once:
    a Swin2SR becomes our fast module with the same official weights, any other architecture a foreign model)."""
    return core.as_model(upscale_model, "upscale_model")


def model_patcher(upscale_model: Any) -> Any:
    """The patcher managing the weights we run: the object's own when it has one covering them (ours; a built-in
    loader's after 0.8.0), else one we create and cache on the object."""
    model = core_model(upscale_model)
    own = getattr(upscale_model, "patcher", None)
    if own is not None and any(own.model is module for module in (model, getattr(model, "model", None))):
        return own
    patcher = getattr(upscale_model, _PATCHER_ATTR, None)
    if patcher is None:
        patcher = _new_patcher(model)
        setattr(upscale_model, _PATCHER_ATTR, patcher)
    return patcher


def model_precision(upscale_models: list[Any]) -> str:
    """The precision chosen on our loader node; the first explicit choice wins when a run uses several models
    (a model from ComfyUI's built-in loader has none: "auto")."""
    chosen = [getattr(m, _PRECISION_ATTR, "auto") for m in upscale_models]
    return next((p for p in chosen if p != "auto"), "auto")


# --------------------------------------------------------------------------------------------------------------------
# Device, precision, memory


def resolve_precision(requested: str, device: torch.device) -> str:
    """ComfyUI's --force-fp32 / --force-fp16 win over the node; "auto" asks ComfyUI whether bf16 suits this device."""
    if getattr(mm, "FORCE_FP32", False):
        return "fp32"
    if getattr(getattr(mm, "args", None), "force_fp16", False):
        return "fp16"
    if requested != "auto":
        return requested
    return "bf16" if mm.should_use_bf16(device) else "fp32"


def is_oom(exc: BaseException) -> bool:
    """Recognise ComfyUI's notion of out-of-memory and release the cached blocks before the core retries smaller.

    `model_management.is_oom` (after 0.8.0) also counts accelerator errors; 0.3.64 and 0.8.0 only have OOM_EXCEPTION,
    which falls back to plain `Exception` on builds without CUDA, so there the message decides.
    """
    if hasattr(mm, "is_oom"):
        oom = mm.is_oom(exc)
    elif mm.OOM_EXCEPTION is not Exception:
        oom = isinstance(exc, mm.OOM_EXCEPTION)
    else:
        oom = "out of memory" in str(exc).lower()
    if oom:
        mm.soft_empty_cache()
    return oom


def load_for_run(upscale_models: list[Any], forecast_bytes: int, device: torch.device) -> None:
    """Make room through ComfyUI (it offloads SD models as needed) and bring our weights and buffers to `device`.

    force_full_load: the partial-load path only moves leaf modules ComfyUI built itself, which would leave plain
    torch layers and Swin's buffers on the offload device. The explicit move afterwards covers a model that another
    node (e.g. the built-in upscale node of 0.3.64 and 0.8.0) moved back to the CPU behind ComfyUI's back.
    """
    patchers = [model_patcher(m) for m in upscale_models]
    mm.load_models_gpu(patchers, memory_required=forecast_bytes, force_full_load=True)
    for upscale_model in upscale_models:
        core_model(upscale_model).to(device)


# --------------------------------------------------------------------------------------------------------------------
# Progress and cancel


class RunProgress:
    """One ComfyUI ProgressBar across all tiles of all images of a node run.

    The core reports (done, total) per image; every image in an IMAGE batch has the same size, so the run's total is
    images x tiles per image. ComfyUI's progress hook raises InterruptProcessingException on Cancel; `cancel`
    polls the same flag so a run without progress updates (one tile per image) stops between images too.
    """

    def __init__(self, images: int) -> None:
        self.images = images
        self.image_index = 0
        self.bar = comfy.utils.ProgressBar(images)

    def start_image(self, index: int) -> None:
        self.image_index = index
        self.cancel()

    def __call__(self, done: int, total: int) -> None:
        self.bar.update_absolute(self.image_index * total + done, self.images * total)

    @staticmethod
    def cancel() -> bool:
        mm.throw_exception_if_processing_interrupted()
        return False


# --------------------------------------------------------------------------------------------------------------------
# IMAGE / MASK tensors


@dataclass
class SplitImage:
    """One ComfyUI image as the core wants it: RGB channels-first in 0..1, plus alpha kept aside."""

    rgb: torch.Tensor  # [1, 3, H, W]
    alpha: torch.Tensor | None  # [1, 1, H, W]


def split_image(batch: torch.Tensor, index: int) -> SplitImage:
    """Image `index` of a [B, H, W, C] batch, clamped, read the core's way (grey becomes RGB, alpha kept aside);
    only this one image is copied."""
    bchw, kind = core_images.read_batch(batch[index : index + 1], "BHWC")
    return SplitImage(*core_images.split_alpha(bchw, kind))


def as_mask_batch(mask: torch.Tensor | None) -> torch.Tensor | None:
    """ComfyUI masks come as [B, H, W] or [H, W]; always hand out [B, H, W]."""
    if mask is None:
        return None
    return mask.unsqueeze(0) if mask.dim() == 2 else mask


class OutputBatch:
    """A node output ([B, ...]) allocated once on ComfyUI's intermediate device when the first item's shape is known.

    Video batches are written frame by frame into it, so a 140-frame run never holds a second full-size copy.
    """

    def __init__(self, items: int) -> None:
        self.items = items
        self.tensor: torch.Tensor | None = None

    def put(self, index: int, item: torch.Tensor) -> None:
        if self.tensor is None:
            self.tensor = torch.empty(
                (self.items, *item.shape), dtype=torch.float32, device=mm.intermediate_device()
            )
        self.tensor[index].copy_(item)


def to_comfy_image(rgb: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """[1, 3, H, W] RGB (+ [1, 1, H, W] alpha) back to one clamped [H, W, C] ComfyUI image."""
    channels = rgb if alpha is None else torch.cat((rgb, alpha.to(rgb)), dim=1)
    return channels[0].movedim(0, -1).clamp(0, 1)


# --------------------------------------------------------------------------------------------------------------------
# Node runs


def device_capacity(device: torch.device) -> int:
    """What the device could offer once ComfyUI evicts its models: total memory less ComfyUI's reserve."""
    return int(mm.get_total_memory(device) - mm.extra_reserved_memory())


class ManagedRun:
    """One node execution: device, precision, memory forecast and loading, progress, cancel and OOM hooks.

    Planning happens twice. First against the device's capacity (what ComfyUI could free by evicting its models),
    to learn what the best plan needs; ComfyUI is asked for that much and offloads SD models as needed. Then the
    core plans each image against ComfyUI's free-memory figure (`free_memory=`, re-read per image).
    With several models (pipelines) all are loaded together and the largest forecast at the input size is asked for
    (later stages see larger images; their own planning against free memory keeps them safe).
    """

    def __init__(self, upscale_models: list[Any], images: torch.Tensor, **options: Any) -> None:
        core_images.check_upscalable(images)  # an empty batch or NaN pixels: say so before loading anything
        self.models = [core_model(m) for m in upscale_models]
        self.device = mm.get_torch_device()
        precision = resolve_precision(model_precision(upscale_models), self.device)
        self.options = dict(options, precision=precision, device=self.device)
        height, width = images.shape[1:3]
        capacity = device_capacity(self.device)
        forecast = max(core.plan_upscale(model, height, width, free_memory=capacity, **self.options).predicted_bytes
                       for model in self.models)
        load_for_run(upscale_models, forecast, self.device)
        self.progress = RunProgress(images.shape[0])

    @property
    def model(self) -> torch.nn.Module:
        return self.models[0]

    def free_memory(self) -> int:
        return mm.get_free_memory(self.device)

    def start_image(self, index: int) -> dict[str, Any]:
        """Keyword arguments for a core call on image `index`: run options, ComfyUI's memory figure, callbacks."""
        self.progress.start_image(index)
        return dict(self.options, layout="BCHW", free_memory=self.free_memory, progress=self.progress,
                    cancel=self.progress.cancel, is_oom=is_oom)

    def upscale(self, index: int, rgb: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """One [1, 3, H, W] image through the core."""
        return core.upscale(self.model, rgb, return_report=True, **self.start_image(index))


def upscale_images(upscale_model: Any, images: torch.Tensor, *, tile: int | str, max_input_size: int,
                   overlap: int = 16, target: str = "model scale", factor: float = 2.0, width: int = 0,
                   height: int = 0, sharpen: float = 0.0) -> tuple[torch.Tensor, str]:
    """Upscale every image of an IMAGE batch, one at a time; returns the batch and the plan summary."""
    run = ManagedRun([upscale_model], images, tile=tile, overlap=overlap, max_input_size=max_input_size)
    size = target_size(images, run.model.scale, target, factor, width, height)
    output = OutputBatch(images.shape[0])
    for index in range(images.shape[0]):
        image = split_image(images, index)
        rgb, report = run.upscale(index, image.rgb)
        if sharpen > 0:
            rgb = core.sharpen(rgb, sharpen)
        output.put(index, with_alpha(rgb if size is None else core_images.resize(rgb, *size), image.alpha))
    log.info("Swin2SR: %s", report)
    return output.tensor, str(report)


def target_size(images: torch.Tensor, scale: int, target: str, factor: float, width: int,
                height: int) -> tuple[int, int] | None:
    """The (height, width) the target widgets ask for, relative to the input; None: the model's own scale
    (of the input as the core ran it, i.e. after a Smart-Safe downscale)."""
    in_h, in_w = images.shape[1:3]
    if target == "factor":
        return core.target_size(in_h, in_w, scale, factor=factor)
    if target == "size":
        return core.target_size(in_h, in_w, scale, width=width or None, height=height or None)
    return None


def refine_faces(upscale_model: Any, images: torch.Tensor, *, face_model: Any = None, base: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, **settings: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Face Region Refine over an IMAGE batch, one image at a time; returns (images, face masks [B, H', W']).

    `settings` are the pipeline's own (detector, max_faces, face_size, feather, ...).
    """
    models = [upscale_model] if face_model is None else [upscale_model, face_model]
    run = ManagedRun(models, images, tile="auto", max_input_size=0)
    masks = as_mask_batch(mask)
    output, face_masks = OutputBatch(images.shape[0]), OutputBatch(images.shape[0])
    for index in range(images.shape[0]):
        image = split_image(images, index)
        refined, face_mask, _ = pipelines.refine_faces(
            image.rgb, run.model, face_model=run.models[-1], base=_nth_rgb(base, index), mask=_nth(masks, index),
            **settings, **run.start_image(index),
        )
        output.put(index, with_alpha(refined, image.alpha))
        face_masks.put(index, face_mask[0])
    return output.tensor, face_masks.tensor


def two_stage(stage1_model: Any, stage2_model: Any, images: torch.Tensor, *, regions: str,
              mask: torch.Tensor | None = None, **settings: Any) -> torch.Tensor:
    """Two-Stage over an IMAGE batch, one image at a time. regions: "everywhere", "faces" or "mask" (the MASK input).

    `settings` are the pipeline's own (scale, detector, ...).
    """
    if regions == "mask" and mask is None:
        raise ValueError("Two-Stage: regions is 'mask' but no MASK is connected; connect one or pick another option.")
    run = ManagedRun([stage1_model, stage2_model], images, tile="auto", max_input_size=0)
    masks = as_mask_batch(mask)
    output = OutputBatch(images.shape[0])
    for index in range(images.shape[0]):
        image = split_image(images, index)
        where = {"everywhere": None, "faces": "faces", "mask": _nth(masks, index)}[regions]
        options = run.start_image(index)
        del options["max_input_size"]  # the pipeline always runs at full resolution
        upscaled = pipelines.two_stage(image.rgb, *run.models, regions=where, **settings, **options)
        output.put(index, with_alpha(upscaled, image.alpha))
    return output.tensor


def with_alpha(rgb: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """One [H, W, C] ComfyUI image from a [1, 3, H, W] result and the input's alpha resized to match (if any)."""
    return to_comfy_image(rgb, None if alpha is None else core_images.resize_alpha(alpha, *rgb.shape[-2:]))


def _nth(batch: torch.Tensor | None, index: int) -> torch.Tensor | None:
    """Item `index` of an optional batch input; a shorter batch repeats (ComfyUI's convention for masks)."""
    return None if batch is None else batch[index % batch.shape[0]]


def _nth_rgb(images: torch.Tensor | None, index: int) -> torch.Tensor | None:
    return None if images is None else split_image(images, index % images.shape[0]).rgb
