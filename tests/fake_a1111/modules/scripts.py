"""`load_scripts()`: import every extension's scripts/*.py with the extension folder on sys.path only meanwhile."""

import os
import sys

from modules import paths, script_loading

loaded = {}


def extension_dirs():
    """Built-in extensions first, then installed ones, each sorted by name."""
    for parent in (paths.extensions_builtin_dir, paths.extensions_dir):
        for name in sorted(os.listdir(parent)):
            yield os.path.join(parent, name)


def load_scripts():
    for basedir in extension_dirs():
        scripts_dir = os.path.join(basedir, "scripts")
        if not os.path.isdir(scripts_dir):
            continue
        for filename in sorted(os.listdir(scripts_dir)):
            if not filename.endswith(".py"):
                continue
            saved = sys.path
            sys.path = [basedir] + sys.path
            try:
                path = os.path.join(scripts_dir, filename)
                loaded[path] = script_loading.load_module(path)
            finally:
                sys.path = saved
