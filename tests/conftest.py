"""Shared test setup: one CPU thread (the test machine is shared) and paths to the shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# CI clones the repository next to a copy of shared/, exactly like the working checkout; $SWIN2SR_SHARED points
# elsewhere (e.g. from a git worktree in another folder).
SHARED = Path(os.environ.get("SWIN2SR_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (CI lays it next to the clone)")
    return SHARED


@pytest.fixture(scope="session")
def realesrgan_compact_path(shared_dir: Path) -> Path:
    """The real Real-ESRGAN Compact x4 model (realesr-animevideov3, BSD-3), a non-Swin2SR file."""
    path = shared_dir / "fixtures" / "realesr-animevideov3.pth"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture
def nearest_model(monkeypatch):
    """The CLI's model loader hands out one exact nearest-neighbour x2 stand-in (see input_fixtures)."""
    import swin2sr
    from input_fixtures import NearestX2

    model = NearestX2()
    monkeypatch.setattr(swin2sr, "load_any_model", lambda *args, **kwargs: model)
    return model


@pytest.fixture(scope="session")
def release_server():
    """A local stand-in for the model release server (tests/model_server.py) on 127.0.0.1, for the session."""
    from model_server import hf_file_bytes, official_file_bytes, running_server

    with running_server(official_file_bytes(), hf_file_bytes()) as state:
        yield state


@pytest.fixture
def release(release_server, monkeypatch):
    """Downloads allowed, from `release_server`'s /ok/ folder (SWIN2SR_MODEL_BASE_URL); its request log cleared."""
    from swin2sr import catalog, fetch

    for name in fetch.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(catalog.BASE_URL_ENV, f"{release_server.url}/ok")
    release_server.requests.clear()
    release_server.dropped.clear()
    return release_server
