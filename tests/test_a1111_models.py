"""Official models in the A1111 / Forge extension (fake WebUI, local release release on 127.0.0.1).

Specifies: the five official entries are listed whether downloaded or not, as the WebUI's own SwinIR is, with
their real scale; the first upscale fetches the file through the WebUI's `modelloader.load_file_from_url` into
the extension's models folder, verified and recorded by the core; a bad download is refused and leaves nothing;
offline, choosing one is one clear error naming the folder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import swin2sr
from swin2sr import catalog
from tests.fake_a1111.harness import find_upscaler, forget_fake_modules, start_webui, upscaler_names

torch.set_num_threads(1)
ENTRY = catalog.find("lightweight-x2")
NAME = "Swin2SR Lightweight x2 (lightweight-x2)"


@pytest.fixture
def webui(monkeypatch, tmp_path, release):
    root = tmp_path / "webui"
    yield lambda: start_webui(monkeypatch, root, [])
    forget_fake_modules()


def visible(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_the_official_entries_are_listed_before_any_download_with_their_scale(webui, release):
    modules = webui()
    for entry in catalog.CATALOG:
        listed = find_upscaler(modules.shared, f"Swin2SR {entry.variant} ({entry.name})")
        assert (listed.data_path, listed.scale) == (entry.name, entry.scale)
    assert release.requests == []


def test_a_downloaded_release_file_is_listed_once_under_its_entry(webui, release, tmp_path):
    folder = tmp_path / "webui" / "models" / "Swin2SR"
    folder.mkdir(parents=True)
    (folder / ENTRY.file).write_bytes(release.content)
    names = upscaler_names(webui().shared)
    assert [name for name in names if "Lightweight" in name] == [NAME]


def test_first_upscale_downloads_through_the_webuis_downloader_then_upscales(webui, release, tmp_path, monkeypatch):
    modules = webui()
    calls = []
    host_download = modules.modelloader.load_file_from_url
    monkeypatch.setattr(modules.modelloader, "load_file_from_url",
                        lambda url, **kw: calls.append(url) or host_download(url, **kw))  # fmt: skip
    entry = find_upscaler(modules.shared, NAME)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8))

    out = entry.scaler.upscale(picture, 2, entry.data_path)

    assert out.size == (48, 32)
    folder = tmp_path / "webui" / "models" / "Swin2SR"
    assert calls == [f"{release.url}/ok/{ENTRY.file}"]
    assert visible(folder) == [ENTRY.file, ENTRY.file + ".sha256"]
    assert (folder / ENTRY.file).read_bytes() == release.content
    entry.scaler._cached_key = None  # load again: the recorded file is used, no second request
    entry.scaler.upscale(picture, 2, entry.data_path)
    assert len(release.requests) == 1


def test_a_bad_download_is_refused_and_leaves_nothing(webui, release, tmp_path, monkeypatch):
    monkeypatch.setenv(catalog.BASE_URL_ENV, f"{release.url}/html")
    entry = find_upscaler(webui().shared, NAME)
    with pytest.raises(ValueError, match="HTML page"):
        entry.scaler.upscale(Image.new("RGB", (16, 16)), 2, entry.data_path)
    assert visible(tmp_path / "webui" / "models" / "Swin2SR") == []


def test_offline_the_error_names_the_extensions_folder(webui, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = find_upscaler(webui().shared, NAME)
    folder = tmp_path / "webui" / "models" / "Swin2SR"
    with pytest.raises(swin2sr.fetch.FetchError, match=f"put it in {folder}/ as {ENTRY.file}"):
        entry.scaler.upscale(Image.new("RGB", (16, 16)), 2, entry.data_path)
