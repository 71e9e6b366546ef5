"""`swin2sr info CHECKPOINT` prints the detected variant and configuration; errors are one line."""

from __future__ import annotations

import subprocess
import sys

import torch
from checkpoints import OFFICIAL_CONFIGS, TINY_CONFIGS, random_official_state_dict

from swin2sr.cli import main


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
