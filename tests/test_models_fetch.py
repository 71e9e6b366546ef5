"""Official models fetched by name (swin2sr.catalog, swin2sr.fetch, loader.release_file) against a local release.

Specifies: the catalogue describes the five releases as the loader detects them; the first use downloads with
progress and records the SHA-256, a second use sends no request; a dropped transfer is resumed (or restarted
when the release ignores Range) into a file identical to the source; an HTML page, a truncated file or a
different model is refused and leaves nothing; Cancel leaves nothing; two processes end with one good file; a
file changed on disk is refused; offline or unreachable is one line naming the URL and the folder, at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checkpoints import OFFICIAL_CONFIGS
from swin2sr import catalog, fetch, loader
from swin2sr.variants import describe_variant

ENTRY = catalog.find("lightweight-x2")
REPO_ROOT = Path(__file__).resolve().parents[1]
CATALOG_CONFIGS = {"classical-x2": "classical_x2", "classical-x4": "classical_x4",
                   "compressed-x4": "compressed_x4_48", "realworld-x4": "realworld_x4",
                   "lightweight-x2": "lightweight_x2"}  # fmt: skip


@pytest.fixture
def models(tmp_path, monkeypatch, release):
    """An empty models folder, downloads allowed, the base URL on the local release's /ok/ folder."""
    monkeypatch.setenv(catalog.MODELS_DIR_ENV, str(tmp_path / "models"))
    return tmp_path / "models"


def use_mode(monkeypatch, release, mode: str) -> None:
    monkeypatch.setenv(catalog.BASE_URL_ENV, f"{release.url}/{mode}")


def visible_files(folder: Path) -> list[str]:
    """What a user (or a host's model list) would see: everything but the hidden lock file."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


# --- the catalogue -------------------------------------------------------------------------------------


def test_the_catalogue_names_the_five_releases_by_short_and_release_file_name():
    assert catalog.names() == ["classical-x2", "classical-x4", "compressed-x4", "realworld-x4", "lightweight-x2"]
    assert catalog.find("Swin2SR_ClassicalSR_X4_64.pth") is catalog.find("classical-x4")
    assert catalog.find("builtin-x4") is None and catalog.find("photo.png") is None


@pytest.mark.parametrize("name", list(CATALOG_CONFIGS))
def test_each_entry_expects_the_variant_the_loader_detects_in_the_released_shapes(name):
    config = OFFICIAL_CONFIGS[CATALOG_CONFIGS[name]]
    entry = catalog.find(name)
    assert (entry.variant, entry.scale) == (describe_variant(config), config.scale)


def test_sources_are_the_release_then_hugging_face_and_the_base_url_replaces_both(monkeypatch):
    monkeypatch.delenv(catalog.BASE_URL_ENV, raising=False)
    monkeypatch.setenv(catalog.HF_ENDPOINT_ENV, "https://hf-mirror.example/")
    assert catalog.find("classical-x4").urls() == [
        "https://github.com/mv-lab/swin2sr/releases/download/v0.0.1/Swin2SR_ClassicalSR_X4_64.pth",
        "https://hf-mirror.example/caidas/swin2SR-classical-sr-x4-64/resolve/main/pytorch_model.bin",
    ]
    monkeypatch.setenv(catalog.BASE_URL_ENV, "http://mirror.local/models/")
    assert catalog.find("classical-x4").urls() == ["http://mirror.local/models/Swin2SR_ClassicalSR_X4_64.pth"]


def test_the_models_folder_is_the_environment_variable_else_a_per_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.MODELS_DIR_ENV, str(tmp_path / "m"))
    assert catalog.models_dir() == tmp_path / "m"
    monkeypatch.delenv(catalog.MODELS_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if sys.platform.startswith("linux"):
        assert catalog.models_dir() == tmp_path / "data" / "swin2sr" / "models"


# --- downloading -------------------------------------------------------------------------------------------


def test_first_use_downloads_with_progress_and_a_second_use_sends_no_request(models, release):
    seen = []
    path = loader.release_file(ENTRY, progress=lambda done, total: seen.append((done, total)))
    assert path == models / ENTRY.file and path.read_bytes() == release.content
    assert len(seen) > 2 and seen[-1] == (len(release.content), len(release.content))
    assert fetch.recorded_hash(path) == fetch.sha256_of(path)
    assert visible_files(models) == [ENTRY.file, ENTRY.file + ".sha256"]
    requests = len(release.requests)
    assert loader.release_file(ENTRY) == path
    assert len(release.requests) == requests == 1


def test_load_model_accepts_a_catalogue_name_and_downloads_on_first_use(models, release):
    model = loader.load_model("lightweight-x2")
    assert (model.variant, model.scale) == ("Lightweight x2", 2)
    assert (models / ENTRY.file).is_file()


@pytest.mark.parametrize("mode", ["drop", "norange"])
def test_a_dropped_transfer_ends_in_a_file_identical_to_the_source(models, release, monkeypatch, mode):
    use_mode(monkeypatch, release, mode)
    path = loader.release_file(ENTRY)
    assert path.read_bytes() == release.content
    ranges = [r for _, r in release.requests_for(ENTRY.file)]
    assert ranges[0] is None and ranges[1] == f"bytes={len(release.content) // 2}-"  # resumed where it broke
    assert visible_files(models) == [ENTRY.file, ENTRY.file + ".sha256"]


@pytest.mark.parametrize(
    ("mode", "name", "complaint"),
    [("html", "lightweight-x2", "HTML page"), ("truncated", "lightweight-x2", "truncated"),
     ("ok", "classical-x2", "holds a Lightweight x2 model, not classical-x2's ClassicalSR x2")],
)  # fmt: skip
def test_a_bad_file_is_refused_and_leaves_nothing(models, release, monkeypatch, mode, name, complaint):
    use_mode(monkeypatch, release, mode)
    with pytest.raises(fetch.FetchError, match=complaint) as caught:
        loader.release_file(catalog.find(name))
    assert "\n" not in str(caught.value) and "nothing was kept" in str(caught.value)
    assert visible_files(models) == []


def test_cancel_from_the_progress_callback_leaves_no_partial_file(models, release):
    class Cancelled(Exception):
        pass

    def cancel_half_way(done, total):
        if done > total // 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        loader.release_file(ENTRY, progress=cancel_half_way)
    assert visible_files(models) == []


def test_the_hugging_face_conversion_is_the_second_source(models, release, monkeypatch):
    monkeypatch.delenv(catalog.BASE_URL_ENV)
    monkeypatch.setattr(catalog, "RELEASE_URL", f"{release.url}/missing")
    monkeypatch.setenv(catalog.HF_ENDPOINT_ENV, f"{release.url}/hf")
    path = loader.release_file(ENTRY)
    assert path.read_bytes() == release.hf_content
    assert [p for p, _ in release.requests][-1] == f"/hf/{ENTRY.hf_repo}/resolve/main/pytorch_model.bin"
    assert loader.load_model(str(path)).variant == "Lightweight x2"


def test_two_processes_at_once_end_with_one_good_file(models, release):
    script = "import sys; from swin2sr import catalog, loader; print(loader.release_file(catalog.find(sys.argv[1])))"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    runs = [subprocess.Popen([sys.executable, "-c", script, ENTRY.name], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert {out.strip() for out, _ in results} == {str(models / ENTRY.file)}
    assert (models / ENTRY.file).read_bytes() == release.content
    assert len(release.requests_for(ENTRY.file)) == 1  # one transfer; the other process waited and used it
    assert visible_files(models) == [ENTRY.file, ENTRY.file + ".sha256"]


# --- integrity of files already here -----------------------------------------------------------------------


def test_a_file_changed_after_download_is_refused(models, release):
    path = loader.release_file(ENTRY)
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(fetch.FetchError, match="has changed since it was verified.*swin2sr models get lightweight-x2"):
        loader.release_file(ENTRY)


def test_a_file_put_in_place_by_hand_is_verified_once_then_recorded_without_any_request(models, release):
    models.mkdir()
    (models / ENTRY.file).write_bytes(release.content)
    assert loader.release_file(ENTRY) == models / ENTRY.file
    assert fetch.recorded_hash(models / ENTRY.file) == fetch.sha256_of(models / ENTRY.file)
    assert release.requests == []


def test_a_wrong_file_put_in_place_by_hand_is_refused(models, release):
    models.mkdir()
    (models / catalog.find("classical-x4").file).write_bytes(release.content)
    with pytest.raises(ValueError, match="not classical-x4's ClassicalSR x4"):
        loader.release_file(catalog.find("classical-x4"))


def test_a_pinned_hash_refuses_a_download_that_differs(models, release, monkeypatch):
    pinned = catalog.ReleaseModel(**{**ENTRY.__dict__, "sha256": "0" * 64})
    with pytest.raises(fetch.FetchError, match="is not the published 0000"):
        loader.release_file(pinned)
    assert visible_files(models) == []


# --- no network ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", fetch.OFFLINE_ENVS)
def test_offline_is_one_line_naming_the_url_and_the_folder_without_any_request(models, release, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    with pytest.raises(fetch.FetchError) as caught:
        loader.release_file(ENTRY)
    message = str(caught.value)
    assert f"{release.url}/ok/{ENTRY.file}" in message and f"{models}{os.sep} as {ENTRY.file}" in message
    assert variable in message and "\n" not in message
    assert release.requests == []


def test_an_unreachable_server_is_one_line_within_seconds(models, monkeypatch):
    monkeypatch.setenv(catalog.BASE_URL_ENV, "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.monotonic()
    with pytest.raises(fetch.FetchError, match=r"cannot download lightweight-x2 from http://127.0.0.1:9/") as caught:
        loader.release_file(ENTRY)
    assert time.monotonic() - start < 5
    assert str(models) in str(caught.value) and visible_files(models) == []
