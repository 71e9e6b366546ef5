"""Session fixtures for the real-host tests: one ComfyUI and one AUTOMATIC1111 server for the whole session.

Each server starts on first use (about 15 s each) and is stopped at the end of the session. Without built hosts
($SWIN2SR_TEST_HOSTS, see real_hosts.py) every test here is skipped locally and fails in CI.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from real_hosts import (
    OOM_ABOVE_PIXELS,
    REALESRGAN,
    TEST_OOM_ENV,
    A1111Client,
    ComfyClient,
    Server,
    a1111_server,
    comfy_server,
    hosts_dir,
    link_repository,
    photo,
)

PACK_NAME = "swin2sr-upscaler"


@pytest.fixture(scope="session")
def hosts() -> Path:
    return hosts_dir()


def _serve(server: Server, client_class):
    """Start `server`, yield a client for it, stop it afterwards (a failed start stops it too)."""
    try:
        server.start()
        yield client_class(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory, realesrgan_compact_path) -> Path:
    """ComfyUI's --base-directory: the pack in custom_nodes/, example.png in input/, Real-ESRGAN in upscale_models/."""
    base = tmp_path_factory.mktemp("comfyui") / "base"
    link_repository(base / "custom_nodes", PACK_NAME)
    (base / "input").mkdir()
    photo(32, 24).save(base / "input" / "example.png")  # the name every shipped workflow loads
    photo(256, 192).save(base / "input" / "large.png")  # 165 tiles of 32 px: about 10 batches
    (base / "models" / "upscale_models").mkdir(parents=True)
    shutil.copy(realesrgan_compact_path, base / "models" / "upscale_models" / REALESRGAN)
    return base


@pytest.fixture(scope="session")
def comfy(hosts, comfy_base) -> ComfyClient:
    yield from _serve(comfy_server(hosts, comfy_base, {TEST_OOM_ENV: str(OOM_ABOVE_PIXELS)}), ComfyClient)


@pytest.fixture(scope="session")
def a1111_data(tmp_path_factory) -> Path:
    """A1111's --data-dir: the extension and a test probe in extensions/, checkpoints in models/Swin2SR/."""
    from checkpoints import TINY_CONFIGS, random_official_state_dict

    data = tmp_path_factory.mktemp("a1111") / "data"
    link_repository(data / "extensions", "sd-webui-swin2sr")
    shutil.copytree(Path(__file__).parent / "a1111_probe", data / "extensions" / "swin2sr-test-probe")
    models = data / "models" / "Swin2SR"
    models.mkdir(parents=True)
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x4"], seed=7), models / "tiny4.pth")
    (models / "broken.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    return data


@pytest.fixture(scope="session")
def a1111(hosts, a1111_data) -> A1111Client:
    yield from _serve(a1111_server(hosts, a1111_data, {}), A1111Client)
