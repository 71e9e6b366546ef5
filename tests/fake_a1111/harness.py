"""Start a fake WebUI with this repository installed as an extension, and tear it down without leaks.

`start_webui()` does what the WebUI does at start-up, in its order: extensions' preload.py adds command-line
options, the command line is parsed, every extension's scripts/*.py is imported (the extension folder on
sys.path only meanwhile), upscalers are discovered, and the settings page is built (which runs the
on_ui_settings callbacks, also in API-only mode).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

FAKE_DIR = Path(__file__).resolve().parent
REPO_ROOT = FAKE_DIR.parents[1]
EXTENSION_NAME = "sd-webui-swin2sr"
FAKE_TOP_LEVEL = ("modules", "launch", "gradio", "backend", "modules_forge")


def install_extension(webui_root: Path) -> Path:
    """A WebUI folder with this repository under extensions/, as "Install from URL" would leave it."""
    extensions = webui_root / "extensions"
    extensions.mkdir(parents=True, exist_ok=True)
    link = extensions / EXTENSION_NAME
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    (webui_root / "models").mkdir(exist_ok=True)
    (webui_root / "modules").mkdir(exist_ok=True)  # the real load_upscalers() lists it for *_model.py files
    return link


def start_webui(monkeypatch, webui_root: Path, args: list[str] = (), api_models_first: bool = False):
    """Start-up of the fake WebUI; returns the fake `modules` namespace (shared, devices, modelloader, ...).

    api_models_first: import modules.api.models (which builds the API's options model) before the extensions'
    scripts, as Forge's built-in ControlNet makes it happen; A1111 imports it after them."""
    install_extension(webui_root)
    monkeypatch.setenv("FAKE_WEBUI_ROOT", str(webui_root))
    monkeypatch.setenv("FAKE_WEBUI_ARGS", json.dumps(list(args)))
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    forget_fake_modules()
    from modules import modelloader, script_callbacks, scripts, shared

    shared.device = importlib.import_module("modules.devices").get_optimal_device()
    if api_models_first:
        importlib.import_module("modules.api.models")
    scripts.load_scripts()
    modelloader.load_upscalers()
    script_callbacks.run_ui_settings()
    return sys.modules["modules"]


def patch_torch_load_like_a1111(monkeypatch) -> None:
    """Install the fake modules/safe.py (A1111 imports the real one at start-up); torch.load is restored after."""
    import torch

    monkeypatch.setattr(torch, "load", torch.load)
    importlib.import_module("modules.safe")


def forget_fake_modules() -> None:
    """Drop every fake WebUI module (and the extension's core import, tied to it by nothing but tidiness)."""
    for name in list(sys.modules):
        if name.split(".")[0] in FAKE_TOP_LEVEL:
            del sys.modules[name]


def upscaler_names(shared) -> list[str]:
    return [entry.name for entry in shared.sd_upscalers]


def find_upscaler(shared, name: str):
    """The lookup Extras and the API do: by exact name (an unknown name is an error there too)."""
    matches = [entry for entry in shared.sd_upscalers if entry.name == name]
    assert matches, f"could not find upscaler named {name}"
    return matches[0]


def environment_paths() -> list[str]:
    return [path for path in sys.path if os.path.realpath(path) == str(REPO_ROOT)]
