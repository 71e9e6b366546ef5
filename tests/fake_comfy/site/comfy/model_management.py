"""Fake comfy.model_management: a CPU "device", configurable memory, and a model registry that records calls.

Like the real module, load_models_gpu keeps a list of loaded patchers, moves a model fully to its load device only
with force_full_load (the real partial path leaves plain torch layers behind), and free_memory evicts loaded models
to their offload device until enough memory is free.
"""

from __future__ import annotations

import threading

import torch

from comfy.cli_args import args

calls: list[tuple[str, dict]] = []  # (function name, arguments) of every call the pack makes
current_loaded_models: list = []  # patchers, most recently loaded first

DEVICE = torch.device("cpu")
free_bytes = 8 << 30
total_bytes = 16 << 30
bf16_ok = False

FORCE_FP32 = args.force_fp32
OOM_EXCEPTION = torch.cuda.OutOfMemoryError  # what 0.3.64 binds on any torch build that has torch.cuda


def _record(name: str, **arguments) -> None:
    calls.append((name, arguments))


def calls_to(name: str) -> list[dict]:
    return [arguments for called, arguments in calls if called == name]


def get_torch_device() -> torch.device:
    return DEVICE


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    return torch.device("cpu")


def get_free_memory(dev=None, torch_free_too=False):
    _record("get_free_memory", dev=dev)
    return (free_bytes, 0) if torch_free_too else free_bytes


def get_total_memory(dev=None, torch_total_too=False):
    _record("get_total_memory", dev=dev)
    return (total_bytes, 0) if torch_total_too else total_bytes


def extra_reserved_memory() -> int:
    return 400 * 1024 * 1024


def minimum_inference_memory() -> float:
    return (1024 * 1024 * 1024) * 0.8 + extra_reserved_memory()


def module_size(module: torch.nn.Module) -> int:
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


def free_memory(memory_required, device, keep_loaded=[]):
    _record("free_memory", memory_required=memory_required, device=device)
    unloaded = [p for p in current_loaded_models if p not in keep_loaded]
    for patcher in unloaded:
        patcher.detach()
        current_loaded_models.remove(patcher)
    return unloaded


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False):
    _record("load_models_gpu", models=list(models), memory_required=memory_required,
            force_full_load=force_full_load)
    for patcher in models:
        if patcher in current_loaded_models:
            continue
        if force_full_load:
            patcher.model.to(patcher.load_device)
            patcher.model.device = patcher.load_device
        current_loaded_models.insert(0, patcher)


def loaded_models(only_currently_used=False):
    return list(current_loaded_models)


def unload_all_models():
    free_memory(1e30, get_torch_device())


def soft_empty_cache(force=False):
    _record("soft_empty_cache", force=force)


def is_device_cpu(device) -> bool:
    return torch.device(device).type == "cpu"


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    return False


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    _record("should_use_bf16", device=device)
    return bf16_ok and not FORCE_FP32


def is_oom(e: Exception) -> bool:
    """Current upstream only (feature-detected by the pack)."""
    return isinstance(e, OOM_EXCEPTION) or "out of memory" in str(e).lower()


class InterruptProcessingException(Exception):
    pass


_interrupt_lock = threading.RLock()
_interrupt = False


def interrupt_current_processing(value=True):
    global _interrupt
    with _interrupt_lock:
        _interrupt = value


def processing_interrupted() -> bool:
    with _interrupt_lock:
        return _interrupt


def throw_exception_if_processing_interrupted():
    global _interrupt
    with _interrupt_lock:
        if _interrupt:
            _interrupt = False
            raise InterruptProcessingException()
