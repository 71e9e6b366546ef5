"""The node pack inside each real ComfyUI (0.3.64 and 0.8.0, headless, --cpu), driven over HTTP as a user's script
would; every test runs once per version (the `comfy` fixture, see conftest.py).

Specification: every shipped API workflow runs and saves images of the size it promises; UPSCALE_MODEL objects
cross between our nodes and ComfyUI's built-in ones in both directions; Cancel (POST /interrupt) stops a tiled
run after the tile batch in progress; an out-of-memory error inside the server process is either recovered by our
tiler or reported as a failed prompt, and the server goes on serving.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from real_hosts import (
    OOM_ABOVE_PIXELS,
    REALESRGAN,
    X2,
    X4,
    HostSetup,
    builtin_loader,
    builtin_upscale,
    error_message,
    load_image,
    mean_difference,
    our_loader,
    photo,
    png_bytes,
    save,
    status_messages,
    tiled,
    upscale,
)

from swin2sr import catalog

API_DIR = Path(__file__).resolve().parents[2] / "workflows" / "api"
API_FILES = sorted(API_DIR.glob("*.json"))
# (width, height) of each image every output node of a shipped workflow saves or previews, for a 32x24 input.
EXPECTED_SIZES = {
    "swin2sr_upscale": {"4": X4},
    "swin2sr_model_loader": {"4": X4},  # our loader into the built-in Upscale Image (using Model)
    "swin2sr_tiled_upscale": {"4": X2},  # target "factor" 2.0 with the x4 model
    "swin2sr_two_stage": {"5": X4},
    "swin2sr_face_refine": {"4": X4, "6": X4},  # the refined image and its face mask
}
NEEDS_SD_CHECKPOINT = "sd_txt2img_swin2sr_x4"
NEEDS_RELEASE_SERVER = "swin2sr_official_model"  # downloads its model: run by test_models_real.py, from a local server


def assert_sizes(comfy, entry: dict, expected: dict[str, tuple[int, int]]) -> None:
    for node_id, size in expected.items():
        images = comfy.images(entry, node_id)
        assert [image.size for image in images] == [size], f"node {node_id}"


# --- shipped workflows ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_shipped_api_workflow_runs_and_saves_the_promised_size(comfy, path):
    if path.stem == NEEDS_SD_CHECKPOINT:
        pytest.skip("needs the SD 1.5 checkpoint it declares for download (2 GB, not available offline); "
                    "its Swin2SR half is the swin2sr_upscale workflow, which runs here")
    if path.stem == NEEDS_RELEASE_SERVER:
        pytest.skip("downloads the official model it names; test_models_real.py runs it against a local server")
    prompt = json.loads(path.read_text())
    entry = comfy.run(prompt)
    assert_sizes(comfy, entry, EXPECTED_SIZES[path.stem])


def test_every_shipped_workflow_has_expected_sizes():
    assert {path.stem for path in API_FILES} == set(EXPECTED_SIZES) | {NEEDS_SD_CHECKPOINT, NEEDS_RELEASE_SERVER}


# --- UPSCALE_MODEL interop --------------------------------------------------------------------------------------------


def test_model_from_builtin_loader_works_in_each_of_our_nodes(comfy):
    """Real-ESRGAN Compact x4 from Load Upscale Model into Upscale, Tiled Upscale, Face Refine and Two-Stage."""
    prompt = {
        "1": load_image("example.png"),
        "2": builtin_loader(REALESRGAN),
        "3": upscale("2", "1"),
        "4": tiled("2", "1", tile_size=32),
        "5": {"class_type": "Swin2SR_FaceRefine", "inputs": {
            "upscale_model": ["2", 0], "face_model": ["2", 0], "image": ["1", 0], "detector": "auto",
            "threshold": 0.5, "max_faces": 0, "face_size": 0, "feather": 0.3, "color_match": True}},
        "6": our_loader("builtin-x2"),
        "7": {"class_type": "Swin2SR_TwoStage", "inputs": {
            "stage1_model": ["2", 0], "stage2_model": ["6", 0], "image": ["1", 0], "scale": 4,
            "regions": "everywhere", "detector": "auto"}},
        "13": save("3", "interop/upscale"),
        "14": save("4", "interop/tiled"),
        "15": save("5", "interop/faces"),
        "17": save("7", "interop/two_stage"),
    }
    entry = comfy.run(prompt)
    assert_sizes(comfy, entry, {"13": X4, "14": X2, "15": X4, "17": X4})


def test_our_loader_in_builtin_upscale_node_gives_our_upscale(comfy):
    """Upscale Image (using Model) with our model returns the same pixels as our own Upscale node."""
    prompt = {
        "1": load_image("example.png"),
        "2": our_loader("builtin-x4"),
        "3": builtin_upscale("2", "1"),
        "4": upscale("2", "1"),
        "5": save("3", "ours_in_builtin/builtin_node"),
        "6": save("4", "ours_in_builtin/our_node"),
    }
    entry = comfy.run(prompt)
    (theirs,), (ours,) = comfy.images(entry, "5"), comfy.images(entry, "6")
    assert theirs.size == ours.size == X4
    assert mean_difference(theirs, ours) < 0.5  # 8-bit levels: rounding noise only


def test_builtin_loader_opens_the_embedded_models_and_matches_our_upscale(comfy):
    """Load Upscale Model lists swin2sr-builtin-x4/x2.safetensors; its x4 gives the pixels our loader's does."""
    offered = comfy.combo_options("UpscaleModelLoader", "model_name")
    assert {"swin2sr-builtin-x4.safetensors", "swin2sr-builtin-x2.safetensors", REALESRGAN} <= set(offered)
    ours_listed = comfy.combo_options("Swin2SR_ModelLoader", "model_name")
    assert "swin2sr-builtin-x4.safetensors" not in ours_listed, "our loader lists them as builtin-x4/x2 only"
    prompt = {
        "1": load_image("example.png"),
        "2": builtin_loader("swin2sr-builtin-x4.safetensors"),
        "3": builtin_upscale("2", "1"),
        "4": our_loader("builtin-x4"),
        "5": upscale("4", "1"),
        "6": builtin_loader("swin2sr-builtin-x2.safetensors"),
        "7": builtin_upscale("6", "1"),
        "13": save("3", "embedded_in_builtin/x4"),
        "15": save("5", "embedded_in_builtin/ours"),
        "17": save("7", "embedded_in_builtin/x2"),
    }
    entry = comfy.run(prompt)
    assert_sizes(comfy, entry, {"13": X4, "15": X4, "17": X2})
    (theirs,), (ours,) = comfy.images(entry, "13"), comfy.images(entry, "15")
    assert mean_difference(theirs, ours) < 0.5


def test_a_comfyui_without_model_files_offers_and_runs_the_embedded_models(launch_comfy):
    """A fresh install: nothing in models/, yet our loader lists builtin-x4/x2 first (then the official models
    offered for download) and upscales with them."""
    bare = launch_comfy(HostSetup(files={"input/example.png": png_bytes(photo(32, 24))}))
    downloads = [f"{entry.file} (download)" for entry in catalog.CATALOG]
    assert bare.combo_options("Swin2SR_ModelLoader", "model_name") == ["builtin-x4", "builtin-x2", *downloads]
    entry = bare.run({"1": load_image("example.png"), "2": our_loader("builtin-x2"), "3": upscale("2", "1"),
                      "4": save("3", "bare/x2")})
    assert_sizes(bare, entry, {"4": X2})


# --- Cancel ---------------------------------------------------------------------------------------------------------


def test_interrupt_stops_a_tiled_run_within_one_tile_batch_and_the_next_prompt_runs(comfy):
    """POST /interrupt after the first tile batch: the run ends before the next-but-one batch reports progress."""
    prompt = {"1": load_image("large.png"), "2": our_loader(), "3": tiled("2", "1", tile_size=32, overlap=16),
              "4": save("3", "interrupted/tiled")}
    socket = comfy.websocket()
    try:
        prompt_id = comfy.queue(prompt)
        progress, interrupted_at = [], None
        for kind, data in messages(socket, prompt_id):
            if kind == "progress":
                progress.append(data["value"])
                if interrupted_at is None:
                    comfy.interrupt()
                    interrupted_at, total = data["value"], data["max"]
            if kind in ("execution_interrupted", "execution_success", "execution_error"):
                break
    finally:
        socket.close()
    assert kind == "execution_interrupted", f"the run ended with {kind}"
    assert interrupted_at is not None, "no progress reported before the run ended"
    batch = max(np.diff([0, *progress]))
    # After /interrupt the batch in progress may finish and one message may already be in flight; no more.
    assert progress[-1] - interrupted_at <= 2 * batch < total - interrupted_at, (progress, total)
    assert "execution_interrupted" in status_messages(comfy.wait(prompt_id))

    after = comfy.run({"1": load_image("example.png"), "2": our_loader(), "3": upscale("2", "1"),
                       "4": save("3", "interrupted/next")})
    assert_sizes(comfy, after, {"4": X4})


def messages(socket, prompt_id: str):
    """(type, data) of the JSON messages about `prompt_id` on ComfyUI's websocket (binary previews skipped)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        raw = socket.recv()
        if isinstance(raw, bytes):
            continue
        message = json.loads(raw)
        data = message.get("data") or {}
        if data.get("prompt_id") == prompt_id:
            yield message["type"], data
    raise AssertionError("no end of execution message within 300 s")


# --- out of memory --------------------------------------------------------------------------------------------------


def test_out_of_memory_in_our_node_is_recovered_with_smaller_tiles(comfy):
    """64x48 tiles exceed the limit the test probe injects (40x40 px): the tiler halves the tile and finishes."""
    prompt = {"1": load_image("large.png"),
              "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "area",
                                                           "width": 64, "height": 48, "crop": "disabled"}},
              "3": our_loader(), "4": tiled("3", "2", tile_size=64, overlap=0, factor=4.0),
              "5": save("4", "oom/recovered")}
    entry = comfy.run(prompt)
    assert_sizes(comfy, entry, {"5": (256, 192)})
    (plan,) = entry["outputs"]["4"]["text"]
    assert "out-of-memory recovered: now tile 32" in plan


def test_out_of_memory_that_cannot_be_avoided_fails_the_prompt_and_the_server_goes_on(comfy):
    """The built-in node gives up below 128 px tiles; every 64x48 forward is over the injected limit."""
    assert 64 * 48 > OOM_ABOVE_PIXELS
    prompt = {"1": load_image("large.png"),
              "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "area",
                                                           "width": 64, "height": 48, "crop": "disabled"}},
              "3": our_loader(), "4": builtin_upscale("3", "2"), "5": save("4", "oom/failed")}
    entry = comfy.wait(comfy.queue(prompt))
    assert entry["status"]["status_str"] == "error"
    assert "OutOfMemoryError" in error_message(entry) and "injected" in error_message(entry)
    assert comfy.server.alive()

    after = comfy.run({"1": load_image("example.png"), "2": our_loader(), "3": upscale("2", "1"),
                       "4": save("3", "oom/next")})
    assert_sizes(comfy, after, {"4": X4})
