"""Test-only ComfyUI custom node, linked into the test server's custom_nodes/ by tests/hosts/conftest.py (never
shipped): fault injection for the out-of-memory tests.

With $SWIN2SR_TEST_OOM_ABOVE_PIXELS set to N, every forward of the pack's Swin2SR network on an input of more than
N pixels raises torch.OutOfMemoryError inside the ComfyUI process, whichever node calls it (ours or the built-in
"Upscale Image (using Model)"). A global forward pre-hook does it, so the pack itself carries no test code and the
order in which ComfyUI loads the two custom nodes does not matter.
"""

import functools
import os

import torch

LIMIT_ENV = "SWIN2SR_TEST_OOM_ABOVE_PIXELS"
NODE_CLASS_MAPPINGS: dict = {}  # no nodes: ComfyUI loads the module, which installs the hook


def _is_pack_network(module: torch.nn.Module) -> bool:
    """The pack's network class `swin2sr.arch.Swin2SR` (spandrel's class of the same name lives elsewhere)."""
    kind = type(module)
    return kind.__name__ == "Swin2SR" and kind.__module__.endswith(".swin2sr.arch")


def _injected_oom(limit: int, module: torch.nn.Module, args: tuple) -> None:
    if not _is_pack_network(module):
        return
    height, width = args[0].shape[-2:]
    if height * width > limit:
        raise torch.OutOfMemoryError(f"out of memory (injected by {LIMIT_ENV}={limit}: {width}x{height} input)")


if os.environ.get(LIMIT_ENV):
    torch.nn.modules.module.register_module_forward_pre_hook(functools.partial(_injected_oom, int(os.environ[LIMIT_ENV])))
