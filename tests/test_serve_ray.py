"""`swin2sr serve --ray`: the same API on a local Ray Serve with 2 upscaling replicas (issue 18).

One server for the whole module (Ray Serve takes some 20 s to start here): a result equal to the local
path's, live progress, DELETE reaching the replica, and SIGTERM leaving no files.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from serve_helpers import ServeProcess, decoded, png_bytes, require_serve_packages

require_serve_packages()
if os.environ.get("CI") != "true":
    pytest.importorskip("ray.serve")
import requests

TIMEOUT = 120
SLOW = png_bytes(160, 160, seed=9)  # with --tile 32 at full resolution: dozens of tile batches


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("ray-data")
    process = ServeProcess(data, "--ray", "--ray-replicas", "2", "--tile", "32", "--max-input-size", "0",
                           start_seconds=180)
    yield process
    process.stop(TIMEOUT)


def job_status(server, job_id: str) -> dict:
    return requests.get(f"{server.url}/v1/jobs/{job_id}", timeout=TIMEOUT).json()


def test_two_replicas_serve_the_same_pixels_as_the_local_path(ray_server):
    import swin2sr

    assert requests.get(f"{ray_server.url}/healthz", timeout=TIMEOUT).json()["devices"] == ["replica-0", "replica-1"]
    data = png_bytes(20, 12, seed=1)
    response = requests.post(f"{ray_server.url}/v1/upscale?wait=true", files={"image": ("a.png", data)},
                             timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    expected = swin2sr.upscale(swin2sr.load_any_model("builtin-x4", device="cpu"), decoded(data))
    np.testing.assert_array_equal(np.asarray(decoded(response.content)), np.asarray(expected))


def test_progress_comes_back_from_the_replica_and_delete_cancels_it(ray_server):
    job = requests.post(f"{ray_server.url}/v1/upscale", files={"image": ("s.png", SLOW)}, timeout=TIMEOUT).json()
    deadline = time.monotonic() + TIMEOUT
    while (status := job_status(ray_server, job["id"]))["progress"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < status["progress"] < 1 and status["status"] == "running", status
    requests.delete(f"{ray_server.url}/v1/jobs/{job['id']}", timeout=TIMEOUT)
    while (status := job_status(ray_server, job["id"]))["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status["status"] == "cancelled" and status["progress"] < 1, status


def test_bad_uploads_are_refused_on_ray_too(ray_server):
    response = requests.post(f"{ray_server.url}/v1/upscale", files={"image": ("x.png", b"not a picture")},
                             timeout=TIMEOUT)
    assert response.status_code == 400 and "not an image" in response.json()["error"]


def test_sigterm_shuts_ray_serve_down_and_leaves_no_files(ray_server):
    requests.post(f"{ray_server.url}/v1/upscale", files={"image": ("s.png", SLOW)}, timeout=TIMEOUT)
    assert ray_server.stop(TIMEOUT) == 0, ray_server.output()
    assert list(ray_server.data_dir.iterdir()) == []
