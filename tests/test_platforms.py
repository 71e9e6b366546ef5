"""The platforms real users have: Windows (no POSIX-only modules, no /proc) and macOS (MPS, ru_maxrss in bytes).

Specifies: the package and the ComfyUI node modules import and upscale with `resource`, `fcntl` and /proc out of
reach of the pack's code (tests/posix_guard.py); memory figures come from psutil with the platform's units; the
Apple GPU gets a memory budget from Metal's own figures; asking for an absent device is one line, before any work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import psutil
import pytest
import torch

import swin2sr
from swin2sr import cli, memory, system

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

WINDOWS_LIKE_RUN = """
import posix_guard
posix_guard.install({root!r})
posix_guard.assert_guarded({root!r})

import torch
import swin2sr
image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
out, report = swin2sr.upscale(swin2sr.load_model("builtin-x2"), image, return_report=True)
assert out.shape == (1, 3, 32, 32) and report.peak_rss_bytes > 0 and report.plan.free_bytes > 0

from fake_comfy import comfy_environment
with comfy_environment({base!r}) as env:
    (model,) = env.run("Swin2SR_ModelLoader", model_name="builtin-x2", precision="auto")
    (node_out,) = env.run("Swin2SR_Upscale", upscale_model=model, image=image.movedim(1, -1), max_input_size=0,
                          target="model scale", factor=2.0, width=0, height=0, sharpen=0.0)
print(tuple(out.shape), tuple(node_out.shape))
"""


def test_package_and_node_modules_import_and_upscale_without_posix_only_modules_or_proc(tmp_path):
    script = WINDOWS_LIKE_RUN.format(root=str(ROOT), base=str(tmp_path))
    env = {"PYTHONPATH": os.pathsep.join((str(ROOT), str(TESTS))), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.stdout.strip() == "(1, 3, 32, 32) (1, 32, 32, 3)", result.stderr[-3000:]


def test_available_ram_is_psutils_figure():
    assert system.available_ram() == pytest.approx(psutil.virtual_memory().available, rel=0.05)


def test_peak_rss_is_in_bytes_and_at_least_the_current_resident_size():
    current = psutil.Process().memory_info().rss
    # ru_maxrss lags the current size by a few pages; KiB taken for bytes would be 1024 times too small
    assert 0.9 * current <= system.peak_rss() < 64 * current


def test_peak_rss_on_macos_takes_ru_maxrss_as_bytes(monkeypatch):
    usage = types.SimpleNamespace(ru_maxrss=3_000_000_000)
    fake_resource = types.SimpleNamespace(RUSAGE_SELF=0, getrusage=lambda who: usage)
    monkeypatch.setitem(sys.modules, "resource", fake_resource)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert system.peak_rss() == 3_000_000_000
    monkeypatch.setattr(sys, "platform", "freebsd14")
    assert system.peak_rss() == 3_000_000_000 * 1024


# A process holding BALLAST bytes execs a Python that reports its own peak and getrusage's, which Linux carries over.
BALLAST = 2_000_000_000
EXEC_FROM_A_BIG_PROCESS = f"""
import os, sys
ballast = b"x" * {BALLAST}
report = "import resource; from swin2sr import system; print(system.peak_rss(), resource.getrusage(0).ru_maxrss * 1024)"
os.execv(sys.executable, [sys.executable, "-c", report])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss carried across exec is Linux's")
def test_peak_rss_is_the_processs_own_even_when_started_from_a_bigger_one():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", EXEC_FROM_A_BIG_PROCESS], capture_output=True, text=True, env=env,
                            timeout=300)  # fmt: skip
    own, carried = map(int, result.stdout.split())
    assert carried >= BALLAST  # the trap is there: getrusage reports the ballast of the process before exec
    assert 0 < own < BALLAST / 2  # torch and the package only, well under 1 GB


@pytest.fixture
def fake_metal(monkeypatch):
    """Metal's figures as torch >= 2.3 reports them on a Mac: 12 GB recommended, 2 GB held by the driver."""
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 12 << 30, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 2 << 30, raising=False)


def test_mps_budget_is_a_share_of_what_metal_still_offers(fake_metal, monkeypatch):
    monkeypatch.setattr(system, "available_ram", lambda: 64 << 30)
    budget, free = memory.memory_budget(torch.device("mps"))
    assert free == 10 << 30
    assert budget == int(free * memory.CUDA_SAFETY)


def test_mps_budget_never_exceeds_the_shared_ram_that_is_available(fake_metal, monkeypatch):
    monkeypatch.setattr(system, "available_ram", lambda: 4 << 30)
    assert memory.memory_budget(torch.device("mps"))[1] == 4 << 30


def test_mps_budget_on_torch_without_metal_figures_is_the_available_ram(monkeypatch):
    monkeypatch.delattr(torch.mps, "recommended_max_memory", raising=False)
    monkeypatch.setattr(system, "available_ram", lambda: 6 << 30)
    assert memory.memory_budget(torch.device("mps"))[1] == 6 << 30


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_asking_for_absent_mps_is_one_line_before_any_work():
    model = swin2sr.load_model("builtin-x2")
    with pytest.raises(ValueError) as info:
        swin2sr.upscale(model, torch.rand(1, 3, 8, 8), device="mps")
    message = str(info.value)
    assert "\n" not in message and "'mps'" in message and "use 'cpu'" in message and "Metal" in message
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_the_cli_says_so_in_one_line_for_device_mps(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    assert cli.main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--device", "mps"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("swin2sr upscale: error: --device: device 'mps' is not available") and "\n" not in error
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cli_process_gets_glibcs_fixed_mmap_threshold_and_other_systems_are_left_alone(monkeypatch):
    import ctypes

    if not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"):
        pytest.skip("not glibc")
    script = "from swin2sr import system; print(system.release_freed_memory_promptly())"  # not in this process
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.stdout.strip() == "True", result.stderr[-2000:]
    monkeypatch.setattr(sys, "platform", "win32")
    assert system.release_freed_memory_promptly() is False
