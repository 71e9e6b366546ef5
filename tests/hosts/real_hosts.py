"""Start the real hosts built by tools/setup_hosts.sh (ComfyUI 0.3.64 and 0.8.0, AUTOMATIC1111 1.10.1 and Forge),
and talk to them over HTTP.

The hosts live outside the repository, in the folder named by $SWIN2SR_TEST_HOSTS (.ci/run builds it and sets it).
Each server is one child process listening on 127.0.0.1 on a free port, with every folder it writes to moved into
a test folder (--base-directory / --data-dir), and this repository linked in as a custom node / extension.
Clients use only the public HTTP API, as a user's script would: urllib for requests, websocket-client for
ComfyUI's progress messages.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HOSTS_ENV = "SWIN2SR_TEST_HOSTS"
DONE_MARK = ".setup-complete"  # tools/setup_hosts.sh writes it into each host's folder once that host is built
REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # 6-17 s on an idle 2-core machine; generous for a busy one
DATA = REPO_ROOT / "tests" / "data"
REALESRGAN = "realesr-animevideov3.pth"  # shared/fixtures: Real-ESRGAN Compact x4, copied into upscale_models/
# The ComfyUI test probe (comfy_probe/) makes every forward of the pack's network on more than this many pixels
# raise out-of-memory. Every other ComfyUI test keeps model inputs at or below 32x32 (1,024 px).
TEST_OOM_ENV = "SWIN2SR_TEST_OOM_ABOVE_PIXELS"
OOM_ABOVE_PIXELS = 40 * 40


@dataclass(frozen=True)
class Host:
    """One host version as tools/setup_hosts.sh builds it: $SWIN2SR_TEST_HOSTS/<name>/{<tree>, venv}."""

    name: str  # the build folder, also the test id: "comfyui-0.8.0"
    tree: str  # the extracted source folder the server starts in
    flags: tuple[str, ...] = ()  # start flags this version needs beyond its family's

    def __str__(self) -> str:
        return self.name


COMFYUI_HOSTS = (Host("comfyui-0.3.64", "ComfyUI"), Host("comfyui-0.8.0", "ComfyUI"))
# Forge refuses to start on a machine without an NVIDIA driver unless told to stay on the CPU.
WEBUI_HOSTS = (Host("a1111-1.10.1", "stable-diffusion-webui"),
               Host("forge-dfdcbab6", "stable-diffusion-webui-forge", ("--always-cpu",)))


def host_dir(host: Host) -> Path:
    """The built host; skips locally when $SWIN2SR_TEST_HOSTS is unset or lacks this host, fails in CI (CI=true)
    so that a broken host setup can never pass as a green run."""
    value = os.environ.get(HOSTS_ENV)
    reason = None
    if not value:
        reason = f"${HOSTS_ENV} is not set (build the hosts with tools/setup_hosts.sh, see docs/development.md)"
    elif not (Path(value) / host.name / DONE_MARK).is_file():
        reason = f"${HOSTS_ENV}={value} holds no finished build of {host.name} (tools/setup_hosts.sh)"
    if reason is None:
        return Path(value) / host.name
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must test the real hosts, but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class HostSetup:
    """What a test server starts with besides the pack: extra environment variables for the server process, and
    files to place in its folder (--base-directory / --data-dir) before the start, e.g.
    {"models/upscale_models/x.pth": Path(...)} or {"input/a.png": b"..."}."""

    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path | bytes] = field(default_factory=dict)

    def place_files(self, folder: Path) -> None:
        for relative, source in self.files.items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes):
                target.write_bytes(source)
            else:
                shutil.copy(source, target)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo(width: int, height: int) -> Image.Image:
    """A real photo (the cat crop in tests/data) at the given size: smooth areas and edges, unlike noise."""
    return Image.open(DATA / "chelsea_crop.png").convert("RGB").resize((width, height), Image.LANCZOS)


# --------------------------------------------------------------------------------------------------------------------
# HTTP


class HttpError(Exception):
    """A non-2xx answer, with the body the server sent (the host's own error message)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def http(url: str, payload: dict | None = None, timeout: float = 120) -> bytes:
    """GET (no payload) or POST JSON; returns the body, raises HttpError on an error status."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise HttpError(exc.code, exc.read().decode(errors="replace")) from None


def http_json(url: str, payload: dict | None = None, timeout: float = 120):
    return json.loads(http(url, payload, timeout) or b"null")


# --------------------------------------------------------------------------------------------------------------------
# Server processes


@dataclass
class Server:
    """One host process started in its source tree `cwd`, with every folder it writes to under `home`; `log`
    (beside `home`) keeps its console output for the failure messages."""

    name: str
    command: list[str]
    cwd: Path
    home: Path
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.home.parent / f"{self.name}.log"

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} at start:\n{self.tail()}")
            try:
                http(self.ready_url, timeout=5)
                return
            except (OSError, HttpError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT_S} s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


def link_repository(folder: Path, name: str, target: Path = REPO_ROOT) -> Path:
    """This repository (or a test probe) as custom_nodes/<name> or extensions/<name>, as a git clone into that
    folder leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    link.symlink_to(target, target_is_directory=True)
    return link


def comfy_server(host: Host, base: Path, env: dict[str, str]) -> Server:
    """A ComfyUI on the CPU with its folders under `base` (custom_nodes, input, output, models, user).

    Its database is a file beside `base`: an in-memory one logs SQLite thread errors on every prompt."""
    built, port = host_dir(host), free_port()
    command = [str(built / "venv" / "bin" / "python"), "main.py", "--cpu", "--listen", "127.0.0.1",
               "--port", str(port), "--base-directory", str(base),
               "--database-url", f"sqlite:///{base.parent / 'comfyui.db'}", *host.flags]
    return Server(host.name, command, built / host.tree, base, f"http://127.0.0.1:{port}/system_stats", env)


def a1111_server(host: Host, data: Path, env: dict[str, str]) -> Server:
    """An AUTOMATIC1111-family WebUI (A1111, Forge), API only, on the CPU, no SD model, its data folders under `data`.

    --skip-prepare-environment: otherwise launch.py runs git in repositories/ (no .git in the tarballs) and
    pip-installs from the internet."""
    built, port = host_dir(host), free_port()
    command = [str(built / "venv" / "bin" / "python"), "launch.py", "--api", "--nowebui", "--server-name",
               "127.0.0.1", "--port", str(port), "--skip-prepare-environment", "--skip-torch-cuda-test",
               "--no-download-sd-model", "--skip-load-model-at-start", "--use-cpu", "all", "--no-half",
               "--data-dir", str(data), *host.flags]
    return Server(host.name, command, built / host.tree, data, f"http://127.0.0.1:{port}/sdapi/v1/upscalers", env)


# --------------------------------------------------------------------------------------------------------------------
# Clients


class ComfyClient:
    """What a script driving ComfyUI does: POST /prompt, follow progress on /ws, read /history, fetch /view."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.ready_url.rsplit("/", 1)[0]
        self.client_id = uuid.uuid4().hex

    def queue(self, prompt: dict) -> str:
        try:
            answer = http_json(f"{self.url}/prompt", {"prompt": prompt, "client_id": self.client_id})
        except HttpError as exc:
            raise AssertionError(f"ComfyUI refused the prompt: {exc}\n{self.server.tail()}") from None
        return answer["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        """The prompt's /history entry once it has finished (successfully or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = http_json(f"{self.url}/history/{prompt_id}").get(prompt_id)
            if entry and entry["status"].get("completed") is not None and entry["status"]["status_str"] in (
                    "success", "error"):
                return entry
            time.sleep(0.2)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s\n{self.server.tail()}")

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        """Queue, wait, and insist on success (the failure shows ComfyUI's own error message and log)."""
        entry = self.wait(self.queue(prompt), timeout)
        assert entry["status"]["status_str"] == "success", (
            f"prompt failed: {error_message(entry)}\n--- ComfyUI log ---\n{self.server.tail()}")
        return entry

    def images(self, entry: dict, node_id: str) -> list[Image.Image]:
        """The images a SaveImage/PreviewImage node wrote, downloaded through GET /view."""
        images = []
        for item in entry["outputs"][node_id]["images"]:
            query = urllib.parse.urlencode({k: item[k] for k in ("filename", "subfolder", "type")})
            images.append(Image.open(io.BytesIO(http(f"{self.url}/view?{query}"))))
        return images

    def interrupt(self) -> None:
        http(f"{self.url}/interrupt", {})

    def object_info(self, node_class: str) -> dict:
        return http_json(f"{self.url}/object_info/{node_class}")[node_class]

    def combo_options(self, node_class: str, input_name: str) -> list[str]:
        """The choices a node's required combo input offers, as /object_info describes it."""
        return combo_options(self.object_info(node_class)["input"]["required"][input_name])

    def websocket(self):
        """A websocket on /ws for this client id: progress and execution messages of our prompts."""
        import websocket  # websocket-client, the library ComfyUI's own API example script uses

        return websocket.create_connection(f"{self.url.replace('http', 'ws', 1)}/ws?clientId={self.client_id}",
                                           timeout=60)


def combo_options(spec: list) -> list[str]:
    """A combo input's choices in either /object_info form: the classic `[[choices...], {options}]` or the new
    node schema's `["COMBO", {"options": [choices...], ...}]` (ComfyUI 0.8.0's built-in upscale nodes)."""
    kind, options = spec[0], spec[1] if len(spec) > 1 else {}
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return options["options"]
    raise AssertionError(f"not a combo input: {spec!r}")


def error_message(entry: dict) -> str:
    """ComfyUI's execution_error message (exception type and text) from a /history entry, or ''."""
    for kind, data in entry["status"].get("messages", []):
        if kind == "execution_error":
            return f"{data['exception_type']}: {data['exception_message']}"
    return ""


def status_messages(entry: dict) -> list[str]:
    return [kind for kind, _ in entry["status"].get("messages", [])]


class A1111Client:
    """What a script driving the WebUI's API does: JSON in and out of /sdapi/v1/..."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = server.ready_url.split("/sdapi/")[0]

    def get(self, path: str):
        return http_json(f"{self.url}{path}")

    def post(self, path: str, payload: dict):
        return http_json(f"{self.url}{path}", payload, timeout=300)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_base64(image: Image.Image) -> str:
    return base64.b64encode(png_bytes(image)).decode()


def image_from_base64(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference in 8-bit levels."""
    assert a.size == b.size
    return float(np.abs(pixels(a) - pixels(b)).mean())


# --- ComfyUI prompt nodes (API format) shared by the ComfyUI host tests ---------------------------------------------

X4, X2 = (128, 96), (64, 48)  # (width, height) of example.png (32x24, see conftest.comfy_setup) upscaled x4, x2


def load_image(name: str) -> dict:
    return {"class_type": "LoadImage", "inputs": {"image": name}}


def our_loader(name: str = "builtin-x4") -> dict:
    return {"class_type": "Swin2SR_ModelLoader", "inputs": {"model_name": name, "precision": "auto"}}


def builtin_loader(name: str) -> dict:
    return {"class_type": "UpscaleModelLoader", "inputs": {"model_name": name}}


def builtin_upscale(model: str, image: str) -> dict:
    return {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": [model, 0], "image": [image, 0]}}


def upscale(model: str, image: str) -> dict:
    return {"class_type": "Swin2SR_Upscale", "inputs": {
        "upscale_model": [model, 0], "image": [image, 0], "target": "model scale", "factor": 2.0, "width": 0,
        "height": 0, "sharpen": 0.0, "max_input_size": 1024}}


def tiled(model: str, image: str, tile_size: int, overlap: int = 8, factor: float = 2.0) -> dict:
    return {"class_type": "Swin2SR_TiledUpscale", "inputs": {
        "upscale_model": [model, 0], "image": [image, 0], "tile_size": tile_size, "overlap": overlap,
        "target": "factor", "factor": factor, "width": 0, "height": 0, "sharpen": 0.0}}


def save(image: str, prefix: str) -> dict:
    return {"class_type": "SaveImage", "inputs": {"images": [image, 0], "filename_prefix": prefix}}
