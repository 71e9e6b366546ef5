"""pyproject.toml as the Comfy Registry and ComfyUI-Manager read it (docs.comfy.org/registry/specifications).

Specification: the registry's own tool, comfy-cli, validates the file offline without an error or a warning, and
reads every field the registry needs with the values we mean; the rules the registry documents but comfy-cli does
not check (node id, semantic version, icon format and size, a repository URL the icon lives in) hold too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
comfy_cli = pytest.importorskip("comfy_cli", reason="comfy-cli (the test extra) is not installed")

# The registry's node-id rule: < 100 characters of letters, digits, '-', '_', '.'; starts with a letter; no two
# special characters in a row.
NODE_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|[-_.](?![-_.]))*$")
ICON_FORMATS = {"PNG", "JPEG", "GIF"}  # SVG is allowed too; ours is a PNG
ICON_MAX = (800, 400)  # width x height, as the registry documents it


@pytest.fixture(scope="module")
def config():
    from comfy_cli.registry.config_parser import extract_node_configuration

    return extract_node_configuration(str(ROOT / "pyproject.toml"))


def test_comfy_node_validate_passes_without_a_warning():
    """`comfy node validate`: the check `comfy node publish` runs first (parsing, version, ruff security rules)."""
    result = subprocess.run([sys.executable, "-m", "comfy_cli", "--skip-prompt", "--no-enable-telemetry", "node",
                             "validate"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All validation checks passed" in output and "warning" not in output.lower(), output


def test_the_registry_reads_the_fields_it_needs(config):
    assert NODE_ID.match(config.project.name) and len(config.project.name) < 100
    assert "comfyui" not in config.project.name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", config.project.version)
    assert config.project.license.text or config.project.license.file
    assert config.project.urls.repository.startswith("https://github.com/")
    assert config.tool_comfy.publisher_id and config.tool_comfy.display_name == "Swin2SR Upscaler"
    assert config.project.supported_os == ["OS Independent"]
    assert config.project.supported_comfyui_version == ">=0.3.64"


def test_the_icon_is_a_file_of_this_repository_in_a_format_and_size_the_registry_accepts(config):
    repository = config.project.urls.repository.removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{repository}/main/"
    assert config.tool_comfy.icon.startswith(prefix)
    with Image.open(ROOT / config.tool_comfy.icon.removeprefix(prefix)) as icon:
        assert icon.format in ICON_FORMATS
        assert icon.width <= ICON_MAX[0] and icon.height <= ICON_MAX[1]


def test_includes_name_existing_folders(config):
    """`includes` adds folders .gitignore hides to the registry's package; each must exist."""
    assert all((ROOT / folder).is_dir() for folder in config.tool_comfy.includes)
