"""`swin2sr models`, `swin2sr models get NAME...` and `--model NAME` with official models (local release only)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from swin2sr import catalog, cli

ENTRY = catalog.find("lightweight-x2")


@pytest.fixture
def models(tmp_path, monkeypatch, release):
    monkeypatch.setenv(catalog.MODELS_DIR_ENV, str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(path)
    return path


def test_models_lists_embedded_and_official_models_with_state_size_and_path(models, capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ["builtin-x4", "builtin-x2", *catalog.names()]:
        assert name in out
    assert f"not downloaded   17.6 MB  38.17 dB  quick previews, slow machines; {models / ENTRY.file}" in out
    assert f"official models are kept in {models}" in out


def test_models_get_downloads_with_a_progress_bar_then_lists_it_as_downloaded(models, release, capsys):
    assert cli.main(["models", "get", "lightweight-x2"]) == 0
    captured = capsys.readouterr()
    assert "17.6/17.6 MB" in captured.err and captured.out.strip() == f"lightweight-x2: {models / ENTRY.file}"
    assert (models / ENTRY.file).read_bytes() == release.content
    cli.main(["models"])
    assert "lightweight-x2  downloaded" in capsys.readouterr().out


def test_models_get_an_unknown_name_is_one_line_before_any_download(models, release, capsys):
    assert cli.main(["models", "get", "lightweight-x2", "classical-x8"]) == 1
    assert capsys.readouterr().err.strip() == (
        "swin2sr models: error: unknown official model 'classical-x8'; choose from classical-x2, classical-x4, "
        "compressed-x4, realworld-x4, lightweight-x2 (or 'all')"
    )
    assert release.requests == []


def test_upscale_with_an_official_name_downloads_once_then_upscales(models, release, photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert cli.main(["upscale", str(photo), "-o", str(out), "--model", "lightweight-x2", "--device", "cpu"]) == 0
    assert "downloading lightweight-x2" in capsys.readouterr().err
    with Image.open(out) as result:
        assert result.size == (20, 24)
    assert cli.main(["upscale", str(photo), "-o", str(tmp_path / "again.png"), "--model", ENTRY.file]) == 0
    assert "downloading" not in capsys.readouterr().err
    assert len(release.requests) == 1


def test_upscale_offline_is_one_line_and_exit_1_within_seconds_with_nothing_written(
    models, release, photo, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("SWIN2SR_OFFLINE", "1")
    out = tmp_path / "out.png"
    start = time.monotonic()
    assert cli.main(["upscale", str(photo), "-o", str(out), "--model", "classical-x4"]) == 1
    assert time.monotonic() - start < 5
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swin2sr upscale: error: classical-x4 is not downloaded")
    assert f"{release.url}/ok/Swin2SR_ClassicalSR_X4_64.pth" in lines[0] and str(models) in lines[0]
    assert not out.exists() and release.requests == []
