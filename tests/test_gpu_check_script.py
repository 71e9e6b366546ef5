"""benchmarks/gpu_check.py runs unattended: its sections, JSON and summary line work in quick CPU mode.

The full quick CPU run (`--device cpu --quick`, every section) takes about a minute on a busy 2-core
machine, so the suite runs the cheap sections only; the CUDA-only ones must say so, never pass silently.
"""

from __future__ import annotations

import json

from benchmarks import gpu_check


def test_quick_cpu_run_writes_json_and_a_summary(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    sections = ["memory_forecast", "sdpa_backend", "oom_recovery", "safe_table"]
    status = gpu_check.main(["--device", "cpu", "--quick", "--out", str(out), "--sections", *sections])
    result = json.loads(out.read_text())
    assert status == 0, json.dumps(result["sections"], default=str)[:2000]
    assert list(result["sections"]) == sections
    assert result["sections"]["memory_forecast"]["ok"] is True
    assert result["sections"]["sdpa_backend"]["backend"].startswith("matmul")  # the CPU's tuned kernel
    assert result["sections"]["oom_recovery"] == {"ok": None, "note": "CUDA only: not applicable on cpu",
                                                  "seconds": 0.0}  # fmt: skip
    sides = {(r["card_gb"], r["model"]): r["side"] for r in result["sections"]["safe_table"]["rows"]}
    assert sides[12, "ClassicalSR x4"] < sides[24, "ClassicalSR x4"]
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary == result["summary"] and summary.startswith("GPU_CHECK cpu") and "ALL CHECKS PASSED" in summary


def test_a_missing_gpu_is_an_error_not_a_skip(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().out


def test_a_crashing_section_fails_the_run_loudly(tmp_path, monkeypatch):
    def broken(run):
        raise RuntimeError("boom")

    monkeypatch.setattr(gpu_check, "SECTIONS", [broken])
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)]) == 1
    result = json.loads(out.read_text())
    assert result["sections"]["broken"]["error"] == "RuntimeError: boom"
    assert result["summary"].endswith("-> FAILED: broken")
