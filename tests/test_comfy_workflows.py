"""The shipped workflows open in the ComfyUI frontend, queue through POST /prompt, and need no download.

Every workflows/*.json (UI format) and workflows/api/*.json (API format) is checked against the node definitions
the pack itself declares (INPUT_TYPES, loaded through the fake ComfyUI) and a table of the built-in nodes
(tests/fake_comfy/workflows.py): node ids exist, widget values are valid and in range, links connect matching types,
every required input is connected, and each API file says exactly what its UI twin says.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from fake_comfy import PACK_ROOT, comfy_environment
from fake_comfy.workflows import (
    API_DIR,
    PACK_ID,
    WORKFLOW_DIR,
    WORKFLOWS,
    node_definitions,
    twin_differences,
    validate_api,
    validate_ui,
)

UI_FILES = sorted(WORKFLOW_DIR.glob("*.json"))


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    with comfy_environment(tmp_path_factory.mktemp("comfyui")) as env:
        yield node_definitions(env.pack)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_one_workflow_per_node_plus_the_sd_example(definitions):
    used = {node["type"] for path in UI_FILES for node in load(path)["nodes"]}
    assert {"Swin2SR_ModelLoader", "Swin2SR_Upscale", "Swin2SR_TiledUpscale", "Swin2SR_FaceRefine",
            "Swin2SR_TwoStage"} <= used
    assert {path.stem for path in UI_FILES} == set(WORKFLOWS)
    assert "sd_txt2img_swin2sr_x4" in WORKFLOWS


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_workflow_is_valid(path, definitions):
    assert validate_ui(load(path), definitions) == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_api_twin_is_valid_and_says_the_same(path, definitions):
    twin = API_DIR / path.name
    prompt = load(twin)
    assert validate_api(prompt, definitions) == []
    assert twin_differences(load(path), prompt, definitions) == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_needs_no_download_beyond_declared_models(path):
    """Our loaders use the embedded models, except the one workflow made for an official model; any other file a
    node names is declared in properties.models, which the frontend's Missing Models dialog offers."""
    for node in load(path)["nodes"]:
        declared = {model["name"] for model in node["properties"].get("models", [])}
        if node["type"] == "Swin2SR_ModelLoader" and path.stem != "swin2sr_official_model":
            assert node["widgets_values"][0] in ("builtin-x4", "builtin-x2")
        if node["type"] in ("Swin2SR_ModelLoader", "CheckpointLoaderSimple"):
            assert node["widgets_values"][0] in declared | {"builtin-x4", "builtin-x2"}


def test_the_official_model_workflow_declares_the_release_file_for_the_missing_models_dialog(definitions):
    from swin2sr import catalog

    workflow = load(WORKFLOW_DIR / "swin2sr_official_model.json")
    (loader,) = [n for n in workflow["nodes"] if n["type"] == "Swin2SR_ModelLoader"]
    entry = catalog.find("classical-x4")
    assert loader["widgets_values"][0] == entry.file  # not in a fresh list: the node's VALIDATE_INPUTS accepts it
    assert loader["properties"]["models"] == [
        {"name": entry.file, "url": f"{catalog.RELEASE_URL}/{entry.file}", "directory": "upscale_models"}
    ]
    loader["widgets_values"][0] = "Swin2SR_ClassicalSR_X8_64.pth"
    assert validate_ui(workflow, definitions) == [
        f"node {loader['id']} (Swin2SR_ModelLoader): widget 'model_name': 'Swin2SR_ClassicalSR_X8_64.pth' refused "
        "by VALIDATE_INPUTS (Swin2SR checkpoint 'Swin2SR_ClassicalSR_X8_64.pth' is not in models/swin2sr or "
        "models/upscale_models; put the file there and press R (refresh) in ComfyUI.)"
    ]


def test_validator_catches_mistakes(definitions):
    """The checks above can fail: a broken copy of a real workflow is rejected for each kind of mistake."""
    good = load(WORKFLOW_DIR / "swin2sr_tiled_upscale.json")

    def broken(change) -> list[str]:
        workflow = json.loads(json.dumps(good))
        change(workflow)
        return validate_ui(workflow, definitions)

    tiled = next(i for i, n in enumerate(good["nodes"]) if n["type"] == "Swin2SR_TiledUpscale")
    assert broken(lambda w: w["nodes"][tiled].update(type="Swin2SR_Nope"))
    assert broken(lambda w: w["nodes"][tiled]["widgets_values"].__setitem__(0, 99999))  # tile_size > max
    assert broken(lambda w: w["nodes"][tiled]["widgets_values"].pop())
    assert broken(lambda w: w["links"][0].__setitem__(5, "MASK"))
    assert broken(lambda w: w["nodes"][tiled]["properties"].update(cnr_id="someone-else"))

    prompt = load(API_DIR / "swin2sr_tiled_upscale.json")
    tiled_id = str(good["nodes"][tiled]["id"])
    bad_value = json.loads(json.dumps(prompt))
    bad_value[tiled_id]["inputs"]["overlap"] = -1
    assert validate_api(bad_value, definitions)
    assert twin_differences(good, bad_value, definitions)
    bad_link = json.loads(json.dumps(prompt))
    bad_link[tiled_id]["inputs"]["image"][1] = 1  # LoadImage's MASK output into an IMAGE input
    assert validate_api(bad_link, definitions)


def test_cnr_id_is_the_registry_name():
    """properties.cnr_id must be pyproject's [project].name, or the frontend offers the wrong pack to install."""
    pyproject = PACK_ROOT / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("pyproject.toml (owned by the loader area) is not in this tree yet")
    assert tomllib.loads(pyproject.read_text())["project"]["name"] == PACK_ID
