"""Fake folder_paths: ComfyUI's model-folder registry rooted at a test directory (see `set_base_path`)."""

from __future__ import annotations

import os

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
base_path = ""
models_dir = ""
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}


def set_base_path(path) -> None:
    """Lay out <path>/models/{upscale_models,checkpoints} and <path>/input like a ComfyUI install."""
    global base_path, models_dir
    base_path = str(path)
    models_dir = os.path.join(base_path, "models")
    folder_names_and_paths.clear()
    for name in ("upscale_models", "checkpoints"):
        folder_names_and_paths[name] = ([os.path.join(models_dir, name)], set(supported_pt_extensions))


def get_input_directory() -> str:
    return os.path.join(base_path, "input")


def add_model_folder_path(folder_name, full_folder_path, is_default=False) -> None:
    if folder_name in folder_names_and_paths:
        paths = folder_names_and_paths[folder_name][0]
        if full_folder_path not in paths:
            paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)
    else:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())  # empty set: every file


def get_folder_paths(folder_name) -> list[str]:
    return folder_names_and_paths[folder_name][0][:]


def get_filename_list(folder_name) -> list[str]:
    paths, extensions = folder_names_and_paths[folder_name]
    names = set()
    for folder in paths:
        for root, _, files in os.walk(folder, followlinks=True):
            for file in files:
                if not extensions or os.path.splitext(file)[1].lower() in extensions:
                    names.add(os.path.relpath(os.path.join(root, file), folder).replace(os.sep, "/"))
    return sorted(names)


def get_full_path(folder_name, filename):
    if folder_name not in folder_names_and_paths:
        return None
    for folder in folder_names_and_paths[folder_name][0]:
        path = os.path.join(folder, os.path.relpath(os.path.join("/", filename), "/"))
        if os.path.isfile(path):
            return path
    return None


def get_full_path_or_raise(folder_name, filename) -> str:
    path = get_full_path(folder_name, filename)
    if path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return path
