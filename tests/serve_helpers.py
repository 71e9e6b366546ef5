"""A real `swin2sr serve` process on 127.0.0.1 and a free port, for the service's tests, plus small images.

The server runs with one torch thread (like the tests), so its pixels can be compared with `swin2sr.upscale`
run here.  `ServeProcess.stop()` sends SIGTERM and waits; every start is bounded in time.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60


def require_serve_packages() -> None:
    for name in ("fastapi", "uvicorn", "python_multipart", "prometheus_client", "requests"):
        if os.environ.get("CI") == "true":
            __import__(name)  # CI installs the test extra: a missing package is a failure there
        else:
            pytest.importorskip(name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """`python -m swin2sr serve ARGS --port <free>` with its data folder; `url` once healthy."""

    def __init__(
        self, data_dir: Path, *args: str, env: dict | None = None, start_seconds: float = START_SECONDS
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir.parent / f"serve-{self.port}.log", "w+")
        clean = {k: v for k, v in os.environ.items() if k not in ("MAX_INPUT_SIZE", "TILE_SIZE", "FP16_ENABLE")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "swin2sr", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--device", "cpu", "--data-dir", str(data_dir), *args],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**clean, "OMP_NUM_THREADS": "1", **(env or {})}, start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_until_healthy(start_seconds)
        except BaseException:
            self.stop()
            raise

    def _wait_until_healthy(self, seconds: float) -> None:
        import requests

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"swin2sr serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or (Ray Serve) its proxy not routing yet
                time.sleep(0.2)
        raise RuntimeError(f"swin2sr serve did not answer within {seconds} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait (bounded); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def png_bytes(width: int, height: int, seed: int = 0, mode: str = "RGB") -> bytes:
    """A small noise picture (deterministic) as PNG bytes."""
    channels = len(mode)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels if channels > 1 else pixels[..., 0], mode).save(buffer, "PNG")
    return buffer.getvalue()


def gif_bytes(width: int, height: int, frames: int) -> bytes:
    """An animated GIF: frames of different flat colours, 100 ms each, looping."""
    images = [Image.new("RGB", (width, height), (60 * i % 256, 200 - 40 * i, 90)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
