"""Session fixtures for the real-host tests: each ComfyUI and each AUTOMATIC1111-family WebUI, one server per host.

`comfy` is parametrized over COMFYUI_HOSTS (0.3.64, 0.8.0) and `a1111` over WEBUI_HOSTS (A1111 1.10.1, Forge), so
a test that asks for one of them runs once per host version. pytest groups the tests by host: each server starts
on first use (6-17 s), serves all tests of its host, and stops before the next version of the same family starts.
Without built hosts ($SWIN2SR_TEST_HOSTS, see real_hosts.py) every test here is skipped locally and fails in CI.

For a server set up differently (extra environment variables, other model files), `launch_comfy(setup)` and
`launch_a1111(setup)` start one more server of the same host with its own folders; it stops with the host.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from real_hosts import (
    COMFYUI_HOSTS,
    OOM_ABOVE_PIXELS,
    REALESRGAN,
    TEST_OOM_ENV,
    WEBUI_HOSTS,
    A1111Client,
    ComfyClient,
    Host,
    HostSetup,
    Server,
    a1111_server,
    comfy_server,
    link_repository,
    photo,
    png_bytes,
)

PACK_NAME = "swin2sr-upscaler"
PROBES = Path(__file__).resolve().parent


@pytest.fixture(scope="session", params=COMFYUI_HOSTS, ids=str)
def comfyui_host(request) -> Host:
    return request.param


@pytest.fixture(scope="session", params=WEBUI_HOSTS, ids=str)
def webui_host(request) -> Host:
    return request.param


def _servers(host: Host, folders, start: Callable[[Host, Path, dict[str, str]], Server],
             prepare: Callable[[Path], None], client_class: type) -> Iterator[Callable[[HostSetup], Any]]:
    """Yields `launch(setup)` for `host`, then stops every server it started. Each launch gets a fresh folder,
    prepared with the pack and the test probe by `prepare`, then `setup`'s files, and a server with `setup`'s env."""
    servers: list[Server] = []

    def launch(setup: HostSetup):
        folder = folders.mktemp(host.name) / "home"
        prepare(folder)
        setup.place_files(folder)
        servers.append(start(host, folder, setup.env))
        servers[-1].start()
        return client_class(servers[-1])

    try:
        yield launch
    finally:
        for server in servers:
            server.stop()


def _prepare_comfy(base: Path) -> None:
    """ComfyUI's --base-directory: the pack and the test probe in custom_nodes/."""
    link_repository(base / "custom_nodes", PACK_NAME)
    link_repository(base / "custom_nodes", "swin2sr-test-probe", PROBES / "comfy_probe")


def _prepare_a1111(data: Path) -> None:
    """The WebUI's --data-dir: the extension and the test probe in extensions/."""
    link_repository(data / "extensions", "sd-webui-swin2sr")
    link_repository(data / "extensions", "swin2sr-test-probe", PROBES / "a1111_probe")


@pytest.fixture(scope="session")
def launch_comfy(comfyui_host, tmp_path_factory) -> Iterator[Callable[[HostSetup], ComfyClient]]:
    yield from _servers(comfyui_host, tmp_path_factory, comfy_server, _prepare_comfy, ComfyClient)


@pytest.fixture(scope="session")
def launch_a1111(webui_host, tmp_path_factory) -> Iterator[Callable[[HostSetup], A1111Client]]:
    yield from _servers(webui_host, tmp_path_factory, a1111_server, _prepare_a1111, A1111Client)


@pytest.fixture(scope="session")
def comfy_setup(realesrgan_compact_path) -> HostSetup:
    """The shared ComfyUI's inputs (example.png: the name every shipped workflow loads; large.png: 165 tiles of
    32 px, about 10 batches), Real-ESRGAN in upscale_models/, and the probe's out-of-memory limit."""
    return HostSetup(
        env={TEST_OOM_ENV: str(OOM_ABOVE_PIXELS)},
        files={"input/example.png": png_bytes(photo(32, 24)), "input/large.png": png_bytes(photo(256, 192)),
               f"models/upscale_models/{REALESRGAN}": realesrgan_compact_path},
    )


@pytest.fixture(scope="session")
def a1111_setup() -> HostSetup:
    """The shared WebUI's models/Swin2SR/: tiny4.pth (a seeded random Swin2SR x4 in the official format) and
    broken.pth (random bytes)."""
    from checkpoints import TINY_CONFIGS, random_official_state_dict

    tiny = io.BytesIO()
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x4"], seed=7), tiny)
    return HostSetup(files={"models/Swin2SR/tiny4.pth": tiny.getvalue(),
                            "models/Swin2SR/broken.pth": np.random.default_rng(0).bytes(4096)})


@pytest.fixture(scope="session")
def comfy(launch_comfy, comfy_setup) -> ComfyClient:
    """The shared server of each ComfyUI version."""
    return launch_comfy(comfy_setup)


@pytest.fixture(scope="session")
def a1111(launch_a1111, a1111_setup) -> A1111Client:
    """The shared server of each AUTOMATIC1111-family WebUI (A1111, Forge)."""
    return launch_a1111(a1111_setup)


@pytest.fixture(scope="session")
def a1111_data(a1111) -> Path:
    """The shared WebUI's --data-dir (its models/Swin2SR/ holds a1111_setup's files)."""
    return a1111.server.home
