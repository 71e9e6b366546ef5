"""Fake comfy.model_patcher: ModelPatcher's constructor contract and the bookkeeping load_models_gpu relies on."""

from __future__ import annotations

import comfy.model_management


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        comfy.model_management._record("ModelPatcher", model=model, load_device=load_device,
                                        offload_device=offload_device, patcher_class=type(self).__name__)
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.size = size
        self.parent = None
        if getattr(model, "device", None) is None:  # the real patcher sets this on any nn.Module
            model.device = offload_device
        for attribute, value in (("model_loaded_weight_memory", 0), ("lowvram_patch_counter", 0),
                                 ("model_lowvram", False), ("current_weight_patches_uuid", None)):
            if not hasattr(model, attribute):
                setattr(model, attribute, value)

    def model_size(self) -> int:
        if self.size <= 0:
            self.size = comfy.model_management.module_size(self.model)
        return self.size

    def is_clone(self, other) -> bool:
        return getattr(other, "model", None) is self.model

    def model_patches_models(self) -> list:
        return []

    def detach(self, unpatch_all=True):
        self.model.to(self.offload_device)
        self.model.device = self.offload_device
        return self.model


class CoreModelPatcher(ModelPatcher):
    """Current upstream's patcher for non-diffusion models (absent in 0.3.6x; the harness removes it there)."""
