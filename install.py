"""AUTOMATIC1111 / Forge installer hook: pip-installs the core's runtime dependencies that are missing.

The WebUI runs this file on start-up (unless --skip-install) and after "Install from URL". It never touches
torch or torchvision (the WebUI pins its own build) and never upgrades or reinstalls anything already present,
so a working WebUI environment stays as it is. `--no-deps` keeps pip from pulling in or upgrading anything else.

ComfyUI-Manager also runs an `install.py` it finds at a node pack's root; there the WebUI's `launch` module
does not exist and this file does nothing (ComfyUI-Manager installs requirements.txt itself).
"""

import importlib.util

# distribution -> why the core needs it (torch and torchvision come with the WebUI)
REQUIREMENTS = {
    "numpy": "image conversion",
    "Pillow": "image input and output",
    "pypng": "16-bit colour PNG input (Pillow holds only 8-bit colour)",
    "safetensors": "reading .safetensors checkpoints and the embedded weights",
    "psutil": "memory figures (free RAM, peak memory) on every platform",
}


def install(launch) -> None:
    for name in REQUIREMENTS:
        if not launch.is_installed(name):
            launch.run_pip(f"install --no-deps {name}", f"{name} for Swin2SR ({REQUIREMENTS[name]})")


if importlib.util.find_spec("launch") is not None:
    import launch

    install(launch)
