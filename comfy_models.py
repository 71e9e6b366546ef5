"""The official Swin2SR models in ComfyUI: offered by the Model Loader, downloaded into models/upscale_models.

* The loader's list ends with every catalogue entry whose file is not in models/swin2sr or
  models/upscale_models yet, as "<release file> (download)".
* Running one downloads it (the core's `loader.release_file`: verified, atomic, SHA-256 recorded) into the
  first upscale_models folder, with ComfyUI's progress bar; Cancel raises from the bar's hook (and the
  interrupt flag is polled too), which deletes the partial file.
* A workflow names an official model by its release file name; the loader's validation
  (`comfy_adapter.validate_checkpoint_name`) accepts it, and a "(download)" label saved before the file
  arrived, so such a workflow runs whether or not the file is there yet, where ComfyUI's own list check
  would refuse it.  Those workflows also declare the file in the node's `properties.models` for the
  frontend's Missing Models dialog.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import comfy.model_management as mm
import comfy.utils
import folder_paths

from .swin2sr import catalog, loader

DOWNLOAD_MARK = " (download)"
MODEL_FOLDERS = ("swin2sr", "upscale_models")  # where a release file already present may sit
DOWNLOAD_FOLDER = "upscale_models"


def download_labels() -> list[str]:
    """The label "<release file> (download)" of each catalogue model not in the model folders yet."""
    return [entry.file + DOWNLOAD_MARK for entry in catalog.CATALOG if find_in_model_folders(entry.file) is None]


def official_entry(name: str) -> catalog.ReleaseModel | None:
    """The catalogue entry a loader value means: a release file name (plain or "(download)"), or a short name."""
    return catalog.find(name.removesuffix(DOWNLOAD_MARK))


def official_file(entry: catalog.ReleaseModel) -> str:
    """The entry's verified file: where it already is, else downloaded into upscale_models with a progress bar."""
    present = find_in_model_folders(entry.file)
    folder = Path(present).parent if present else Path(folder_paths.get_folder_paths(DOWNLOAD_FOLDER)[0])
    bar = comfy.utils.ProgressBar(int(entry.size_mb * 1e6))
    return os.fspath(loader.release_file(entry, folder, progress=functools.partial(_show_progress, bar)))


def find_in_model_folders(name: str) -> str | None:
    """The path of a checkpoint file in models/swin2sr or models/upscale_models (in that order), or None."""
    for folder in MODEL_FOLDERS:
        path = folder_paths.get_full_path(folder, name)
        if path is not None:
            return path
    return None


def _show_progress(bar, done: int, total: int) -> None:
    """Bytes on ComfyUI's bar; its hook (and our own poll) raise InterruptProcessingException on Cancel."""
    bar.update_absolute(done, total or None)
    mm.throw_exception_if_processing_interrupted()
