"""`swin2sr info CHECKPOINT` prints the detected variant and configuration; errors are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from checkpoints import OFFICIAL_CONFIGS, TINY_CONFIGS, random_official_state_dict

from swin2sr.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_info_prints_the_variant_scale_and_configuration(tmp_path, capsys):
    path = tmp_path / "renamed.pth"
    torch.save({"params_ema": random_official_state_dict(OFFICIAL_CONFIGS["lightweight_x2"])}, path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "variant:    Lightweight x2" in out
    assert "scale:      x2" in out
    assert "embed_dim = 60" in out and "upsampler = 'pixelshuffledirect'" in out
    assert "weights taken from 'params_ema'" in out


def test_info_on_a_foreign_file_prints_what_it_is_without_a_traceback(realesrgan_compact_path, capsys):
    assert main(["info", str(realesrgan_compact_path)]) == 1
    err = capsys.readouterr().err
    assert "Real-ESRGAN Compact" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_python_dash_m_swin2sr_runs_the_command_line(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x2"]), path)
    result = subprocess.run(
        [sys.executable, "-m", "swin2sr", "info", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Swin2SR x2 (custom: embed 12, 1x2 blocks)" in result.stdout


# The command's entry (`swin2sr.cli.run`) ends the process without the native libraries' teardown; what Python
# itself cleans up at exit (atexit: Ray, logging, temporary files) must still run, and the output and exit code
# must be those of `main`.
ENTRY_WITH_A_CLEAN_UP = """
import atexit, sys
from swin2sr import cli
atexit.register(lambda: print("clean-up ran", flush=True))
sys.argv = ["swin2sr", *sys.argv[1:]]
cli.run()
"""


def test_the_command_runs_pythons_clean_up_and_keeps_its_output_and_exit_code(tmp_path):
    def command(*args):
        return subprocess.run([sys.executable, "-c", ENTRY_WITH_A_CLEAN_UP, *args], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip

    ok = command("info", "builtin-x2")
    assert ok.returncode == 0 and "variant:" in ok.stdout and ok.stdout.rstrip().endswith("clean-up ran")
    missing = command("info", str(tmp_path / "missing.pth"))
    assert missing.returncode == 1 and "swin2sr info: error:" in missing.stderr and "clean-up ran" in missing.stdout
