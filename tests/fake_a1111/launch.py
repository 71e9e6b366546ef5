"""The helpers an extension's install.py gets from the WebUI's `launch` module; run_pip only records."""

import importlib.metadata
import importlib.util
import os

pip_commands = []
skip_install = bool(os.environ.get("FAKE_WEBUI_SKIP_INSTALL"))


def is_installed(package):
    """As in the WebUI: an installed distribution of that name, else an importable module of that name."""
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.util.find_spec(package) is not None
        except ModuleNotFoundError:
            return False


def run_pip(command, desc=None, live=False):
    if skip_install:
        return None
    pip_commands.append(command)
    return ""
