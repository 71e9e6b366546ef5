"""Loading extension files the way the WebUI does: by file path, module named after the file's basename."""

import importlib.util
import os

from modules import paths


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preload_extensions(parser):
    """Run every extension's `preload(parser)` before the command line is parsed."""
    for extension in sorted(os.listdir(paths.extensions_dir)):
        preload = os.path.join(paths.extensions_dir, extension, "preload.py")
        if os.path.isfile(preload):
            load_module(preload).preload(parser)
