"""install.py: installs only missing runtime dependencies, with the WebUI's pip helper, and never torch.

Specification: nothing happens when everything is present; a missing package is installed without its
dependencies (so nothing present is upgraded); torch and torchvision are never named; every third-party module
the core imports at module level is either provided by the WebUI (torch) or covered by install.py.
"""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_a1111.harness import FAKE_DIR, REPO_ROOT, forget_fake_modules

WEBUI_PROVIDES = {"torch", "torchvision"}
IMPORT_NAMES = {"Pillow": "PIL"}  # distribution -> module, where they differ
# The web app of the optional [serve] extra: only `swin2sr serve` imports it, after checking that its packages
# are installed (tests/test_serve_command.py checks that everything else imports without them).
SERVE_EXTRA_APP = REPO_ROOT / "swin2sr" / "serve" / "app.py"


@pytest.fixture
def launch(monkeypatch):
    """The WebUI's `launch` module as install.py sees it (the WebUI runs it with its root on PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    forget_fake_modules()
    import launch

    yield launch
    forget_fake_modules()


def run_installer() -> dict:
    return runpy.run_path(str(REPO_ROOT / "install.py"))


def test_nothing_is_installed_when_everything_is_present(launch):
    run_installer()
    assert launch.pip_commands == []


def test_only_missing_packages_are_installed_without_dependencies(launch, monkeypatch):
    present = launch.is_installed
    monkeypatch.setattr(launch, "is_installed", lambda name: name != "safetensors" and present(name))

    run_installer()

    assert launch.pip_commands == ["install --no-deps safetensors"]


def test_torch_is_never_installed_even_when_missing(launch, monkeypatch):
    monkeypatch.setattr(launch, "is_installed", lambda name: False)
    installer = run_installer()
    named = {word for command in launch.pip_commands for word in command.split()}
    assert not named & WEBUI_PROVIDES
    assert len(launch.pip_commands) == len(installer["REQUIREMENTS"])


def test_does_nothing_outside_the_webui(tmp_path):
    """ComfyUI-Manager runs a node pack's install.py too; without the WebUI's `launch` it must be a no-op."""
    result = subprocess.run([sys.executable, str(REPO_ROOT / "install.py")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_requirements_cover_every_third_party_import_of_the_core(launch):
    covered = {IMPORT_NAMES.get(name, name) for name in run_installer()["REQUIREMENTS"]}
    imported = set()
    for path in (REPO_ROOT / "swin2sr").rglob("*.py"):
        if path != SERVE_EXTRA_APP:
            imported |= top_level_imports(path)
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "swin2sr"}
    assert third_party - WEBUI_PROVIDES <= covered


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when the file is imported (imports inside functions are optional extras, e.g. spandrel)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names
