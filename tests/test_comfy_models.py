"""Official models in the ComfyUI Model Loader (fake ComfyUI, local release release on 127.0.0.1).

Specifies: the entries not yet present are listed "(download)"; running one downloads it into
models/upscale_models with ComfyUI's progress bar and loads it; afterwards it is listed by its file name and
no longer offered for download; Cancel during the download leaves no partial file; the loader's validation
accepts official names, so a workflow naming the release file runs before the file is here.
"""

from __future__ import annotations

import pytest

from fake_comfy import comfy_environment
from swin2sr import catalog, fetch

ENTRY = catalog.find("lightweight-x2")
LABEL = f"{ENTRY.file} (download)"


@pytest.fixture
def comfy(tmp_path, monkeypatch, release):
    with comfy_environment(tmp_path) as env:
        yield env


def listed(env) -> list[str]:
    return env.nodes["Swin2SR_ModelLoader"].INPUT_TYPES()["required"]["model_name"][0]


def upscale_models(env):
    return env.folder_paths.get_folder_paths("upscale_models")[0]


def test_running_a_download_entry_fetches_it_with_comfys_progress_bar_then_lists_its_file(comfy, release, tmp_path):
    assert LABEL in listed(comfy)
    (model,) = comfy.run("Swin2SR_ModelLoader", model_name=LABEL, precision="auto")
    assert model.scale == 2
    path = tmp_path / "models" / "upscale_models" / ENTRY.file
    assert path.read_bytes() == release.content
    assert comfy.progress[-1] == (len(release.content), len(release.content)) and len(comfy.progress) > 2
    assert ENTRY.file in listed(comfy) and LABEL not in listed(comfy)
    comfy.run("Swin2SR_ModelLoader", model_name=LABEL, precision="auto")  # a workflow saved with the label
    assert len(release.requests) == 1


def test_cancel_during_the_download_leaves_no_partial_file(comfy, tmp_path):
    comfy.interrupt_after = 3
    with pytest.raises(comfy.mm.InterruptProcessingException):
        comfy.run("Swin2SR_ModelLoader", model_name=LABEL, precision="auto")
    folder = tmp_path / "models" / "upscale_models"
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == []
    assert LABEL in listed(comfy)


def test_a_file_from_the_missing_models_dialog_is_verified_on_first_use_without_any_request(comfy, release, tmp_path):
    folder = tmp_path / "models" / "upscale_models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ENTRY.file).write_bytes(release.content)
    (model,) = comfy.run("Swin2SR_ModelLoader", model_name=ENTRY.file, precision="auto")
    assert model.scale == 2 and release.requests == []
    assert fetch.recorded_hash(folder / ENTRY.file) == fetch.sha256_of(folder / ENTRY.file)


def test_validation_accepts_listed_and_official_names_and_explains_anything_else(comfy):
    validate = comfy.nodes["Swin2SR_ModelLoader"].VALIDATE_INPUTS
    assert validate(model_name="builtin-x4") is True
    assert validate(model_name="Swin2SR_ClassicalSR_X4_64.pth") is True  # not here yet: downloaded on run
    assert validate(model_name="Swin2SR_ClassicalSR_X4_64.pth (download)") is True
    assert "is not in models/swin2sr or models/upscale_models" in validate(model_name="missing.pth")


def test_offline_the_loader_says_where_to_put_the_file(comfy, monkeypatch, tmp_path):
    monkeypatch.setenv("SWIN2SR_OFFLINE", "1")
    with pytest.raises(ValueError, match=rf"put it in {tmp_path / 'models' / 'upscale_models'}/ as"):
        comfy.run("Swin2SR_ModelLoader", model_name=LABEL, precision="auto")
