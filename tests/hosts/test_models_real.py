"""Official models fetched by name inside each real host, from a local release server on 127.0.0.1.

Every host gets its own server process (`launch_comfy` / `launch_a1111`) whose SWIN2SR_MODEL_BASE_URL points at
the local server (tests/model_server.py: seeded random weights in the official format), so nothing reaches the
internet and the shared servers of the other host tests are untouched.

Specification: in ComfyUI the Model Loader lists the official entries not yet present as "(download)"; the
shipped swin2sr_official_model workflow (the release file named in properties.models) runs on a fresh install,
downloading the file into models/upscale_models and upscaling; a "(download)" entry does the same and the file is
then listed by its name. In A1111/Forge the five entries are listed before any download, and Extras with one
downloads it through the WebUI's own downloader into models/Swin2SR and returns the model's output; a second
use sends no request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_server import hf_file_bytes, official_file_bytes, running_server
from real_hosts import (
    X2,
    X4,
    HostSetup,
    builtin_upscale,
    image_from_base64,
    load_image,
    our_loader,
    photo,
    png_base64,
    png_bytes,
    save,
)
from swin2sr import catalog

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "api" / "swin2sr_official_model.json"
CLASSICAL_X4 = catalog.find("classical-x4")
LIGHTWEIGHT = catalog.find("lightweight-x2")


@pytest.fixture(scope="module")
def host_release():
    """Lightweight x2 under every release name, and a classical x4 for the shipped workflow's file."""
    files = {CLASSICAL_X4.file: official_file_bytes("classical_x4", seed=1)}
    with running_server(official_file_bytes(), hf_file_bytes(), files) as state:
        yield state


def setup_for(server, files: dict | None = None) -> HostSetup:
    return HostSetup(env={catalog.BASE_URL_ENV: f"{server.url}/ok", "SWIN2SR_OFFLINE": "", "HF_HUB_OFFLINE": ""},
                     files=files or {})


@pytest.fixture(scope="module")
def comfy_models(launch_comfy, host_release):
    return launch_comfy(setup_for(host_release, {"input/example.png": png_bytes(photo(32, 24))}))


@pytest.fixture(scope="module")
def a1111_models(launch_a1111, host_release):
    return launch_a1111(setup_for(host_release))


def test_comfyui_lists_official_models_then_downloads_them_on_first_run(comfy_models, host_release):
    before = len(host_release.requests_for(LIGHTWEIGHT.file))  # the server is shared by every host version
    labels = [f"{entry.file} (download)" for entry in catalog.CATALOG]
    assert comfy_models.combo_options("Swin2SR_ModelLoader", "model_name")[-5:] == labels

    entry = comfy_models.run(json.loads(WORKFLOW.read_text()))  # a fresh install: the release file is not there
    assert [image.size for image in comfy_models.images(entry, "4")] == [X4]
    folder = comfy_models.server.home / "models" / "upscale_models"
    assert (folder / CLASSICAL_X4.file).read_bytes() == host_release.content_for(CLASSICAL_X4.file)

    prompt = {"1": load_image("example.png"), "2": our_loader(f"{LIGHTWEIGHT.file} (download)"),
              "3": builtin_upscale("2", "1"), "4": save("3", "official/x2")}
    assert [image.size for image in comfy_models.images(comfy_models.run(prompt), "4")] == [X2]
    options = comfy_models.combo_options("Swin2SR_ModelLoader", "model_name")
    assert {CLASSICAL_X4.file, LIGHTWEIGHT.file} <= set(options)
    assert f"{LIGHTWEIGHT.file} (download)" not in options
    comfy_models.run({**prompt, "4": save("3", "b")})
    assert len(host_release.requests_for(LIGHTWEIGHT.file)) == before + 1  # the saved label runs from the file


def test_webui_lists_official_models_and_extras_downloads_one_through_the_host(a1111_models, host_release):
    before = len(host_release.requests_for(LIGHTWEIGHT.file))
    names = [entry["name"] for entry in a1111_models.get("/sdapi/v1/upscalers")]
    for entry in catalog.CATALOG:
        assert f"Swin2SR {entry.variant} ({entry.name})" in names

    def extras() -> tuple[int, int]:
        answer = a1111_models.post("/sdapi/v1/extra-single-image", {
            "image": png_base64(photo(32, 24)), "upscaler_1": f"Swin2SR Lightweight x2 ({LIGHTWEIGHT.name})",
            "upscaling_resize": 2})
        return image_from_base64(answer["image"]).size

    assert extras() == X2
    folder = a1111_models.server.home / "models" / "Swin2SR"
    assert (folder / LIGHTWEIGHT.file).read_bytes() == host_release.content
    assert (folder / (LIGHTWEIGHT.file + ".sha256")).is_file()
    assert extras() == X2
    assert len(host_release.requests_for(LIGHTWEIGHT.file)) == before + 1
