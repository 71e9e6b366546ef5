"""Test harness: run the Swin2SR node pack against the fake ComfyUI in `site/` (no ComfyUI needed).

`comfy_environment()` puts the fake `comfy` package and `folder_paths` on sys.path only while it is active, installs
a progress hook that raises on Cancel like ComfyUI's main.py, and imports the pack the way ComfyUI's
`load_custom_node` does: `spec_from_file_location` on the repo's `__init__.py` under a module name derived from its
path, so the pack's relative imports are exercised exactly as in ComfyUI. On exit every module it imported is
removed again (the pack too), so other tests never see a `comfy` module.

Flavours: "current" (upstream with `model_management.is_oom` and `CoreModelPatcher`) and "0.3.64" (neither).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

SITE = Path(__file__).resolve().parent / "site"
PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_MODULE = str(PACK_ROOT).replace(".", "_x_")  # ComfyUI's sys.modules name for a pack directory
FLAVOURS = ("current", "0.3.64")


@dataclass
class FakeComfy:
    """Handles on the fake host modules and the loaded pack, plus what the progress hook saw."""

    pack: ModuleType
    mm: ModuleType
    utils: ModuleType
    patcher: ModuleType
    folder_paths: ModuleType
    progress: list[tuple[int, int]] = field(default_factory=list)
    interrupt_after: int | None = None  # press Cancel after this many progress updates

    @property
    def nodes(self) -> dict:
        return self.pack.NODE_CLASS_MAPPINGS

    def run(self, node_id: str, **inputs):
        """Execute a node the way ComfyUI does: instantiate, call FUNCTION with keyword inputs, all under
        torch.inference_mode() (execution.py wraps every prompt in it, so tensors made there, model weights
        loaded by a loader node included, are inference tensors)."""
        node_class = self.nodes[node_id]
        with torch.inference_mode():
            return getattr(node_class(), node_class.FUNCTION)(**inputs)

    def hook(self, value, total, preview, prompt_id=None, node_id=None) -> None:
        self.progress.append((value, total))
        if self.interrupt_after is not None and len(self.progress) >= self.interrupt_after:
            self.mm.interrupt_current_processing(True)
        self.mm.throw_exception_if_processing_interrupted()  # what ComfyUI's hook does on every update


@contextmanager
def comfy_environment(base_dir: Path, flavour: str = "current"):
    """Fake ComfyUI rooted at `base_dir` (models/, input/), with the pack loaded; yields a FakeComfy."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}")
    shadowed = {name: sys.modules.pop(name) for name in list(sys.modules) if _is_host_module(name)}
    sys.path.insert(0, str(SITE))
    try:
        folder_paths = importlib.import_module("folder_paths")
        folder_paths.set_base_path(base_dir)
        mm = importlib.import_module("comfy.model_management")
        patcher = importlib.import_module("comfy.model_patcher")
        utils = importlib.import_module("comfy.utils")
        if flavour == "0.3.64":
            del mm.is_oom
            del patcher.CoreModelPatcher
        env = FakeComfy(pack=None, mm=mm, utils=utils, patcher=patcher, folder_paths=folder_paths)
        utils.set_progress_bar_global_hook(env.hook)
        env.pack = load_pack()
        yield env
    finally:
        sys.path.remove(str(SITE))
        for name in [name for name in sys.modules if _is_host_module(name) or _is_pack_module(name)]:
            del sys.modules[name]
        sys.modules.update(shadowed)


def _is_pack_module(name: str) -> bool:
    return name == PACK_MODULE or name.startswith(PACK_MODULE + ".")


def _is_host_module(name: str) -> bool:
    """Names the fake must own while active; pytest may have imported a checkout named `comfy` as that package."""
    return name in ("comfy", "folder_paths") or name.startswith("comfy.")


def load_pack() -> ModuleType:
    """Import the repo's __init__.py as ComfyUI's custom-node loader does."""
    spec = importlib.util.spec_from_file_location(PACK_MODULE, PACK_ROOT / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_MODULE] = module
    spec.loader.exec_module(module)
    return module
