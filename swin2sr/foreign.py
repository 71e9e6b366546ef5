"""Other super-resolution architectures (Real-ESRGAN, Compact, SwinIR, HAT, ...) through spandrel.

Swin2SR files go to our own network; everything else is built by spandrel
(imported only here, only when needed) and wrapped in `SpandrelModel`, which
behaves like our model towards the tiling code and the pipelines: `.scale`,
`.variant`, `.config` (None), `.tile_multiple`, eval mode, no gradients, and
a call that returns the raw (unclamped) network output.

`as_model` is the one door every public entry point (upscale, plan_upscale,
estimate_memory, refine_faces, two_stage) passes its model through: a loaded
model, or a spandrel `ImageModelDescriptor` as ComfyUI's UPSCALE_MODEL is.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import hf_names
from .arch import Swin2SR
from .arguments import check_load_arguments
from .loader import (
    CheckpointError,
    Source,
    StateDict,
    build_model,
    check_finite_weights,
    checkpoint_from_state,
    is_swin2sr_state_dict,
    load_model,
    read_source,
    unwrap_state_dict,
)

if TYPE_CHECKING:
    from spandrel import ImageModelDescriptor

# What the public functions take as a model.
ModelLike = Union[nn.Module, "ImageModelDescriptor"]

# Where a converted descriptor keeps the module we run (hosts hand us the same object on every run).
CORE_MODEL_ATTR = "swin2sr_core_model"


def as_model(model: ModelLike, argument: str = "model", *, also: str = "") -> nn.Module:
    """The module the tiling engine runs, for whatever a caller passed as a model; checked before any work.

    * a loaded model (`load_model`, `load_any_model`, or any nn.Module with an integer `.scale`): itself;
    * a spandrel `ImageModelDescriptor` (ComfyUI's UPSCALE_MODEL): a Swin2SR one runs on our fast network
      (the same official weights, on the descriptor's device and dtype), any other architecture is wrapped
      in `SpandrelModel`; the result is cached on the descriptor, so it is converted once;
    * anything else (a name or path, None, ...): a one-line TypeError naming `argument` and what to pass
      (`also` names further accepted kinds, e.g. "a Swin2SRConfig").
    """
    if isinstance(model, nn.Module) and isinstance(getattr(model, "scale", None), int):
        return model
    converted = getattr(model, CORE_MODEL_ATTR, None)
    if converted is not None:
        return converted
    if not _is_image_descriptor(model):
        raise TypeError(_not_a_model_message(model, argument, also))
    converted = _from_descriptor(model)
    setattr(model, CORE_MODEL_ATTR, converted)
    return converted


def _is_image_descriptor(value: object) -> bool:
    """A spandrel ImageModelDescriptor (an object can only be one if spandrel is already imported)."""
    spandrel = sys.modules.get("spandrel")
    return spandrel is not None and isinstance(value, spandrel.ImageModelDescriptor)


def _from_descriptor(descriptor: "ImageModelDescriptor") -> nn.Module:
    if descriptor.architecture.id != "Swin2SR":
        return wrap_spandrel(descriptor)
    weights = next(descriptor.model.parameters())
    return load_model(descriptor.model.state_dict(), device=weights.device, dtype=weights.dtype)


def _not_a_model_message(value: object, argument: str, also: str) -> str:
    if isinstance(value, nn.Module):
        given = f"a {type(value).__name__} module without an integer .scale"
    elif isinstance(value, (str, os.PathLike)):
        given = f"{type(value).__name__} {os.fspath(value)!r}"
    else:
        given = "None" if value is None else type(value).__name__
    accepted = f"{also}, a loaded model" if also else "a loaded model"
    return (
        f"{argument} must be {accepted} (swin2sr.load_model(path)) or a spandrel ImageModelDescriptor, not {given}"
    )


class SpandrelModel(nn.Module):
    """A spandrel `ImageModelDescriptor` with the interface of our `Swin2SR` model."""

    config = None

    def __init__(self, descriptor) -> None:
        super().__init__()
        self.model = descriptor.model
        self.scale: int = descriptor.scale
        self.variant = f"{descriptor.architecture.name} x{descriptor.scale}"
        self.size_requirements = descriptor.size_requirements
        self.tile_multiple: int = descriptor.size_requirements.multiple_of
        self.supports_half: bool = descriptor.supports_half
        self.supports_bfloat16: bool = descriptor.supports_bfloat16
        # spandrel's per-architecture call (most are `model(x)`); its public __call__ would clamp to 0..1.
        self._call_fn = descriptor._call_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in 0..1 -> [B, C, H*s, W*s], padded to the model's size requirements and cropped back."""
        h, w = x.shape[-2:]
        pad_w, pad_h = self.size_requirements.get_padding(w, h)
        if pad_w or pad_h:
            x = _pad(x, pad_w, pad_h)
        out = self._call_fn(self.model, x)
        return out[..., : h * self.scale, : w * self.scale]


def _pad(x: torch.Tensor, pad_w: int, pad_h: int) -> torch.Tensor:
    """Reflect as far as the image allows, then replicate (reflect cannot pad by more than size - 1)."""
    h, w = x.shape[-2:]
    reflect_w, reflect_h = min(pad_w, w - 1), min(pad_h, h - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
    return F.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode="replicate")


def wrap_spandrel(descriptor) -> SpandrelModel:
    """Wrap an already loaded spandrel descriptor (e.g. from a host's own model loader)."""
    spandrel = _import_spandrel()
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise CheckpointError(
            f"{descriptor.architecture.name} is not an image-to-image model (purpose {descriptor.purpose}); "
            "it cannot upscale"
        )
    return SpandrelModel(descriptor).eval().requires_grad_(False)


def load_any_model(
    source: Source, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Swin2SR | SpandrelModel:
    """Swin2SR through `load_model`'s path; any other architecture spandrel knows, wrapped in SpandrelModel.

    Files are read the same safe way as by `load_model` (weights_only
    pickles, safetensors), so spandrel only ever sees a plain state dict.
    """
    check_load_arguments(source, device, dtype)
    raw, metadata, origin, notes = read_source(source)
    state = unwrap_state_dict(raw, origin, notes)
    if is_swin2sr_state_dict(state) or hf_names.is_hf_state_dict(state):
        return build_model(checkpoint_from_state(state, metadata, origin, notes), device, dtype)
    check_finite_weights(state, origin)
    return wrap_spandrel(_spandrel_descriptor(state, origin)).to(device=device, dtype=dtype)


def _spandrel_descriptor(state: StateDict, origin: str):
    spandrel = _import_spandrel()
    try:
        return spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        first = ", ".join(list(state)[:4])
        raise CheckpointError(
            f"{origin} is neither a Swin2SR checkpoint nor an architecture spandrel recognises (first keys: {first})"
        ) from None


def _import_spandrel():
    try:
        import spandrel
    except ImportError:
        raise CheckpointError(
            "this checkpoint is not Swin2SR; other architectures are loaded through spandrel, which is not "
            "installed: pip install spandrel"
        ) from None
    return spandrel
