"""Packaging promises: torch-free requirements, the swin2sr command, and a CI that runs the README's commands."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _install_commands() -> list[str]:
    """The shell commands in the README's "## Install" section."""
    section = (ROOT / "README.md").read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_requirements_txt_is_the_package_dependency_list_without_torch():
    assert _requirements() == _pyproject()["project"]["dependencies"]
    assert not any(name.split("=")[0].startswith(("torch", "spandrel")) for name in _requirements())


# Each runtime dependency and the top-level module the core imports it as. einops was listed once and never
# imported (the window partitioning in arch.py is plain view/permute); a listed, unused package is a needless install.
IMPORTED_AS = {"numpy": "numpy", "pillow": "PIL", "pypng": "png", "safetensors": "safetensors", "psutil": "psutil"}


def _modules_imported_by_the_core() -> set[str]:
    names = set()
    for path in (ROOT / "swin2sr").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_dependency_is_imported_by_the_core():
    assert sorted(_pyproject()["project"]["dependencies"]) == sorted(IMPORTED_AS)
    assert set(IMPORTED_AS.values()) <= _modules_imported_by_the_core()


def test_the_swin2sr_console_script_is_the_cli_run():
    from swin2sr.cli import run  # main, then the process ends without the native libraries' teardown

    module, _, function = _pyproject()["project"]["scripts"]["swin2sr"].partition(":")
    assert (module, function) == (run.__module__, run.__name__)


def test_only_the_core_package_is_packaged_not_the_host_entry_points():
    assert _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"] == ["swin2sr", "swin2sr.*"]


def test_package_data_ships_the_embedded_models():
    package = ROOT / "swin2sr"
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["swin2sr"]
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    import swin2sr

    assert set(swin2sr.builtin_model_files().values()) <= shipped


def test_the_readme_sets_up_a_fresh_machine_with_one_install_and_one_test_command():
    assert _install_commands() == ["python -m pip install -r requirements-dev.txt", "python -m pytest -q"]


def test_ci_runs_exactly_the_readme_commands_and_stops_on_the_first_failure():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    commands = [line for line in script.splitlines() if line.startswith("python ")]
    assert commands == _install_commands()
