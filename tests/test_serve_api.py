"""`swin2sr serve`'s HTTP API against a real uvicorn process on 127.0.0.1 (issue 18).

One server with the defaults (plus a 1 MB upload limit and a second model) answers results, options and bad uploads; the queue,
cancellation, token and shutdown tests use a second one (queue of 2, small tiles so a job takes seconds).
"""

from __future__ import annotations

import struct
import threading
import time
import zlib

import numpy as np
import pytest
from serve_helpers import ServeProcess, decoded, gif_bytes, png_bytes, require_serve_packages

require_serve_packages()
import requests

TIMEOUT = 60  # seconds any one request or wait may take
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve-data")
    process = ServeProcess(data, "--max-upload-mb", "1", "--model", "builtin-x4", "--model", "builtin-x2")
    yield process
    assert process.stop() == 0, process.output()
    assert list(data.iterdir()) == [], "the data folder is left empty"


def post(server, data: bytes, name: str = "in.png", wait: bool = False, headers=None, **fields):
    return requests.post(
        f"{server.url}/v1/upscale", params={"wait": "true"} if wait else None, headers=headers,
        files={"image": (name, data, "application/octet-stream")}, data=fields, timeout=TIMEOUT,
    )  # fmt: skip


def wait_until(server, job_id: str, statuses=("done", "failed", "cancelled"), headers=None) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status = requests.get(f"{server.url}/v1/jobs/{job_id}", headers=headers, timeout=TIMEOUT).json()
        if status["status"] in statuses:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {status} after {TIMEOUT} s")


def assert_error(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "\n" not in message and message, message
    for word in words:
        assert word in message, message


# --- results ---------------------------------------------------------------------------------------------


def test_a_png_comes_back_at_4x_equal_to_swin2sr_upscale(server):
    import swin2sr

    data = png_bytes(20, 12, seed=1)
    accepted = post(server, data)
    assert accepted.status_code == 202
    job = accepted.json()
    assert set(job) == {"id", "status_url", "result_url"}
    assert wait_until(server, job["id"])["status"] == "done"
    result = requests.get(server.url + job["result_url"], timeout=TIMEOUT)
    assert result.headers["content-type"] == "image/png"
    expected = swin2sr.upscale(swin2sr.load_any_model("builtin-x4", device="cpu"), decoded(data))
    got = decoded(result.content)
    assert got.size == (80, 48)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_wait_true_answers_with_the_image_itself(server):
    response = post(server, png_bytes(16, 16, seed=2), wait=True)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert decoded(response.content).size == (64, 64)


def test_the_job_status_has_the_fixed_shape(server):
    job = post(server, png_bytes(16, 16, seed=3)).json()
    status = wait_until(server, job["id"])
    assert status == {"id": job["id"], "status": "done", "progress": 1.0, "queue_position": 0, "error": None}


@pytest.mark.parametrize(
    ("fields", "size"),
    [({"factor": "2"}, (40, 24)), ({"width": "30"}, (30, 18)), ({"width": "33", "height": "7"}, (33, 7)),
     ({"faces": "true"}, (80, 48)), ({"model": "builtin-x2"}, (40, 24))],
)  # fmt: skip
def test_size_options_give_the_asked_size(server, fields, size):
    response = post(server, png_bytes(20, 12, seed=4), wait=True, **fields)
    assert response.status_code == 200, response.text
    assert decoded(response.content).size == size


def test_sharpen_changes_the_pixels_not_the_size(server):
    plain = decoded(post(server, png_bytes(20, 12, seed=5), wait=True).content)
    sharp = decoded(post(server, png_bytes(20, 12, seed=5), wait=True, sharpen="0.5").content)
    assert sharp.size == plain.size
    assert np.abs(np.asarray(sharp, np.int16) - np.asarray(plain, np.int16)).mean() > 1


def test_an_animated_gif_comes_back_animated(server):
    response = post(server, gif_bytes(12, 10, frames=3), name="anim.gif", wait=True)
    assert response.headers["content-type"] == "image/gif"
    result = decoded(response.content)
    assert (result.format, result.n_frames, result.size) == ("GIF", 3, (48, 40))


@pytest.mark.parametrize(
    ("fields", "words"),
    [({"model": "classical-x4"}, ["classical-x4", "builtin-x4, builtin-x2"]), ({"factor": "abc"}, ["factor"]),
     ({"factor": "-1"}, ["positive"]), ({"sharpen": "0.9"}, ["sharpen", "0.5"]), ({"faces": "maybe"}, ["faces"]),
     ({"factor": "2", "width": "10"}, ["either"]), ({"factor": "1000"}, ["4096"])],
)  # fmt: skip
def test_bad_options_are_400_with_one_line(server, fields, words):
    assert_error(post(server, png_bytes(20, 12), **fields), 400, *words)


def test_options_on_an_animation_are_refused(server):
    assert_error(post(server, gif_bytes(8, 8, 2), name="a.gif", factor="2"), 400, "animation")


# --- bad uploads -----------------------------------------------------------------------------------------


def header_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header promises width x height RGB pixels, with no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


@pytest.mark.parametrize(
    ("data", "name", "status", "words"),
    [(b"", "empty.png", 400, ["empty"]),
     (png_bytes(32, 32)[:90], "cut.png", 400, ["truncated"]),
     (b"%PDF-1.4 not a picture at all", "doc.png", 400, ["not an image"]),
     (header_bomb(), "bomb.png", 413, ["900 megapixels", "limit of 40 megapixels"]),
     (png_bytes(16, 16), "../../etc/passwd", 400, ["path"]),
     (png_bytes(16, 16), "..\\..\\x.png", 400, ["path"]),
     (b"\0" * (2 << 20), "big.png", 413, ["1 MB"])],
    ids=["empty", "truncated", "not-an-image", "header-bomb", "path-name", "windows-path-name", "oversized"],
)  # fmt: skip
def test_bad_uploads_get_their_4xx_and_the_server_keeps_serving(server, data, name, status, words):
    assert_error(post(server, data, name=name), status, *words)
    assert post(server, png_bytes(8, 8), wait=True).status_code == 200


def test_an_oversized_body_without_a_length_is_cut_off(server):
    def chunked_body():  # no Content-Length: the limit is counted as the body arrives
        boundary = b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
        yield boundary
        for _ in range(40):
            yield b"\0" * (64 << 10)
        yield b"\r\n--xyz--\r\n"

    response = requests.post(f"{server.url}/v1/upscale", data=chunked_body(), timeout=TIMEOUT,
                             headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(response, 413, "1 MB")


def test_a_body_that_is_not_multipart_is_415(server):
    response = requests.post(f"{server.url}/v1/upscale", data=png_bytes(8, 8), timeout=TIMEOUT,
                             headers={"Content-Type": "image/png"})
    assert_error(response, 415, "multipart/form-data", "image")


def test_a_form_without_the_image_field_is_400(server):
    response = requests.post(f"{server.url}/v1/upscale", files={"picture": ("a.png", png_bytes(8, 8))},
                             timeout=TIMEOUT)
    assert_error(response, 400, "'image'")


def test_unknown_jobs_and_addresses_are_404_json(server):
    assert_error(requests.get(f"{server.url}/v1/jobs/nope", timeout=TIMEOUT), 404, "nope")
    assert_error(requests.get(f"{server.url}/v1/jobs/nope/result", timeout=TIMEOUT), 404)
    assert_error(requests.get(f"{server.url}/v2/upscale", timeout=TIMEOUT), 404, "/v1")


def test_a_finished_job_deleted_is_gone(server):
    job = post(server, png_bytes(8, 8)).json()
    wait_until(server, job["id"])
    assert requests.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=TIMEOUT).status_code == 200
    assert_error(requests.get(server.url + job["result_url"], timeout=TIMEOUT), 404)


def test_health_and_metrics(server):
    health = requests.get(f"{server.url}/healthz", timeout=TIMEOUT).json()
    assert health["status"] == "ok" and health["models"] == ["builtin-x4", "builtin-x2"] and health["devices"] == ["cpu"]
    post(server, png_bytes(8, 8), wait=True)
    text = requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text
    for line in ('swin2sr_serve_jobs{status="done"}', "swin2sr_serve_queue_length 0.0",
                 'swin2sr_serve_jobs_finished_total{status="done"}', "swin2sr_serve_job_seconds_count",
                 "swin2sr_serve_peak_rss_bytes"):  # fmt: skip
        assert line in text
    assert 'swin2sr_serve_refused_total{code="400"}' in text  # the bad uploads above were counted


# --- queue, cancellation, token, shutdown ------------------------------------------------------------------

SLOW = dict(data=png_bytes(160, 160, seed=9))  # with --tile 32 at full resolution: dozens of tile batches


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("busy-data")
    process = ServeProcess(data, "--queue", "2", "--tile", "32", "--max-input-size", "0", "--drain-seconds", "1",
                           env={"SWIN2SR_SERVE_TOKEN": TOKEN})
    yield process
    process.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_the_token_is_required_on_the_api_not_on_health(busy_server):
    assert_error(post(busy_server, png_bytes(8, 8)), 401, "Authorization: Bearer")
    assert_error(post(busy_server, png_bytes(8, 8), headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(requests.get(f"{busy_server.url}/v1/jobs/x", timeout=TIMEOUT), 401)
    assert requests.get(f"{busy_server.url}/healthz", timeout=TIMEOUT).json()["token_required"] is True


def test_a_full_queue_answers_429_and_loses_no_job(busy_server):
    running = post(busy_server, **SLOW, headers=AUTH).json()
    wait_until(busy_server, running["id"], ("running",), AUTH)
    waiting = [post(busy_server, png_bytes(8, 8, seed=i), headers=AUTH) for i in range(2)]
    assert [r.status_code for r in waiting] == [202, 202]
    assert [requests.get(busy_server.url + r.json()["status_url"], headers=AUTH, timeout=TIMEOUT).json()
            ["queue_position"] for r in waiting] == [1, 2]  # fmt: skip
    refused = post(busy_server, png_bytes(8, 8), headers=AUTH)
    assert_error(refused, 429, "queue is full")
    assert int(refused.headers["Retry-After"]) >= 1

    cancel = requests.delete(f"{busy_server.url}/v1/jobs/{running['id']}", headers=AUTH, timeout=TIMEOUT)
    assert cancel.status_code == 200
    cancelled = wait_until(busy_server, running["id"], headers=AUTH)
    assert cancelled["status"] == "cancelled" and cancelled["progress"] < 1
    for response in waiting:  # accepted jobs all finish
        assert wait_until(busy_server, response.json()["id"], headers=AUTH)["status"] == "done"
    folders = {p.name for p in busy_server.data_dir.glob("*/*")}
    assert running["id"] not in str(folders) and len(folders) == 2  # the cancelled job's files are gone


def test_delete_cancels_a_queued_job(busy_server):
    running = post(busy_server, **SLOW, headers=AUTH).json()
    queued = post(busy_server, png_bytes(8, 8), headers=AUTH).json()
    response = requests.delete(f"{busy_server.url}/v1/jobs/{queued['id']}", headers=AUTH, timeout=TIMEOUT)
    assert response.json()["status"] == "cancelled"
    assert_error(requests.get(busy_server.url + queued["result_url"], headers=AUTH, timeout=TIMEOUT), 409, "cancel")
    requests.delete(f"{busy_server.url}/v1/jobs/{running['id']}", headers=AUTH, timeout=TIMEOUT)
    assert wait_until(busy_server, running["id"], headers=AUTH)["status"] == "cancelled"


def test_a_client_that_goes_away_cancels_its_job(busy_server):
    def cancelled_count() -> float:
        text = requests.get(f"{busy_server.url}/metrics", headers=AUTH, timeout=TIMEOUT).text
        prefix = 'swin2sr_serve_jobs_finished_total{status="cancelled"}'
        line = next((line for line in text.splitlines() if line.startswith(prefix)), "")
        return float(line.split()[-1]) if line else 0.0

    before = cancelled_count()
    with pytest.raises(requests.ReadTimeout):
        post_timeout = dict(files={"image": ("s.png", SLOW["data"])}, headers=AUTH, timeout=(5, 1.5))
        requests.post(f"{busy_server.url}/v1/upscale?wait=true", **post_timeout)
    deadline = time.monotonic() + TIMEOUT
    while cancelled_count() == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cancelled_count() == before + 1


def test_sigterm_drains_and_leaves_no_files(busy_server):
    running = post(busy_server, **SLOW, headers=AUTH).json()
    wait_until(busy_server, running["id"], ("running",), AUTH)
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(post(busy_server, png_bytes(8, 8), wait=True,
                                                                 headers=AUTH)))
    waiter.start()
    time.sleep(0.5)  # the waiting job is queued behind the running one
    assert busy_server.stop() == 0, busy_server.output()
    waiter.join(TIMEOUT)
    assert_error(answers[0], 503, "shutting down")
    assert list(busy_server.data_dir.iterdir()) == []
