"""ComfyUI entry point of the Swin2SR Upscaler node pack.

ComfyUI imports custom_nodes/<pack>/__init__.py as a package named after its path, without putting custom_nodes on
sys.path, so everything here is imported relatively, including the core (`from . import swin2sr` in the adapter):
the core binds to this pack's own copy, and nothing is added to sys.path where it could shadow another pack's
modules. Importing is cheap: no model is built and spandrel is imported only when a model loads.

Outside ComfyUI there is no `folder_paths` module. pytest, for one, imports this file while collecting the
repository's tests (the root is a package because of it); the pack then exports empty mappings instead of failing.
"""

import importlib.util

if importlib.util.find_spec("folder_paths") is None:
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}
else:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
