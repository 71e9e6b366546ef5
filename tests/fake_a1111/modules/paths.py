"""Where the fake WebUI keeps its files; the harness points FAKE_WEBUI_ROOT at a temporary folder."""

import os

script_path = os.environ.get("FAKE_WEBUI_ROOT", os.getcwd())
models_path = os.path.join(script_path, "models")
extensions_dir = os.path.join(script_path, "extensions")
extensions_builtin_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "extensions-builtin")
