"""Reading checkpoint files safely, and telling what a file is when it is not a checkpoint.

The format is recognised from the first bytes, not the extension: PyTorch
zip archives and legacy pickles go through `torch.load(weights_only=True)`
(a pickle that wants to run code is refused, never executed), safetensors
through `safe_open`.  Every failure becomes a `CheckpointError` that names
the problem (truncated download, HTML page, Git LFS pointer, ...) and what
to do, instead of a traceback from deep inside torch.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from pathlib import Path

import torch

StateDict = dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A file or state dict that is not a loadable Swin2SR checkpoint; the message says what it is and what to do."""


def read_file(path: Path, notes: list[str]) -> tuple[object, dict[str, str]]:
    """The object stored in a .pth / .safetensors file, and the safetensors metadata (empty for .pth).

    The format is recognised from the first bytes, not the extension, so a
    mislabelled file still loads and a non-checkpoint gets a precise message.
    """
    with open(path, "rb") as f:
        head = f.read(512)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the download or copy failed; fetch the file again")
    if head.startswith(b"PK\x03\x04"):
        notes.append("PyTorch zip archive")
        return _torch_load(path, "a PyTorch zip archive"), {}
    if head[:1] == b"\x80":
        notes.append("legacy PyTorch pickle")
        return _torch_load(path, "a legacy PyTorch pickle"), {}
    if _looks_like_safetensors(head):
        notes.append("safetensors")
        return _safetensors_load(path)
    raise CheckpointError(f"{path} is not a model checkpoint: it {_describe_foreign_bytes(head)}")


def _torch_load(path: Path, kind: str) -> object:
    try:
        # torch.serialization.load, not torch.load: A1111 replaces the torch.load attribute with a checker that
        # returns None for archives written by current torch (AUTOMATIC1111/stable-diffusion-webui#16350).
        return torch.serialization.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_refused_pickle_message(path, str(exc))) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"{path} looks like {kind} but cannot be read ({_first_line(exc)}): it is probably truncated or "
            "corrupted (an interrupted download?); download it again"
        ) from None


def _refused_pickle_message(path: Path, error: str) -> str:
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)|unsupported GLOBAL ([\w.]+)", error)
    what = f" ({found.group(1) or found.group(2)})" if found else ""
    if "Weights only load failed" not in error:
        return f"{path} looks like a PyTorch file but its pickle is damaged ({_first_line(error)}); download it again"
    return (
        f"{path} contains pickled Python objects, not only tensors{what}; it was not loaded, for safety, because "
        "unpickling them can run code (torch.load with weights_only=True refused it). If you trust its source, "
        "load it once in a separate "
        "Python with torch.load(..., weights_only=False) and save the state dict with "
        "safetensors.torch.save_file(state_dict, 'model.safetensors'), then use that file"
    )


def _looks_like_safetensors(head: bytes) -> bool:
    """An 8-byte little-endian header length followed by the JSON header."""
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and header_len < (1 << 28)


def _safetensors_load(path: Path) -> tuple[StateDict, dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{path} looks like a safetensors file but cannot be read ({_first_line(exc)}): it is probably "
            "truncated or corrupted; download it again"
        ) from None


# transformers config.json fields whose other values build a network the original code cannot (the weights
# alone would not show it): field -> the value the original network has.
_HF_FIXED_FIELDS = {"hidden_act": "gelu", "layer_norm_eps": 1e-5, "patch_size": 1, "qkv_bias": True,
                    "use_absolute_embeddings": False}  # fmt: skip


def reject_unsupported_hf_config(config: dict, config_file: Path) -> None:
    """Refuse, naming the option, a transformers config.json that the original network cannot follow."""
    for name, original in _HF_FIXED_FIELDS.items():
        if name in config and config[name] != original:
            raise CheckpointError(
                f"{config_file} sets {name}={config[name]!r}; the original Swin2SR network (which this package "
                f"implements) has {name}={original!r} only, so these weights cannot be run faithfully; not supported"
            )
    channels_out = config.get("num_channels_out")
    if channels_out is not None and channels_out != config.get("num_channels", 3):
        raise CheckpointError(
            f"{config_file} sets num_channels_out={channels_out} but num_channels={config.get('num_channels', 3)}; "
            "the original network has one channel count for both; not supported"
        )
    if config.get("resi_connection") == "3conv":
        raise CheckpointError(
            f"{config_file} sets resi_connection='3conv': transformers' variant ends the body with one conv where "
            "the original has three, so the original network cannot build it; not supported"
        )
    window, image = config.get("window_size", 8), config.get("image_size", 64)
    if isinstance(image, int) and isinstance(window, int) and image <= window:
        raise CheckpointError(
            f"{config_file} sets image_size={image}, not above window_size={window}: the network is then built with "
            "one unshifted window of the image size, unlike every release; not supported"
        )


def _describe_foreign_bytes(head: bytes) -> str:
    """What a file that is neither a PyTorch nor a safetensors file appears to be."""
    text = head.decode("utf-8", errors="replace").lstrip().lower()
    if text.startswith("version https://git-lfs"):
        return "is a Git LFS pointer, not the weights; run `git lfs pull` or download the file itself"
    if text.startswith(("<!doctype html", "<html")) or "<html" in text[:200]:
        return (
            "is an HTML page (probably a saved error or download page); download the raw file "
            "(on GitHub the release asset link, on Hugging Face a 'resolve/main/' link, not 'blob/main/')"
        )
    if text.startswith(("{", "[")):
        return "is JSON text (a config file?); pass the weights file (.pth or .safetensors) instead"
    if head.count(b"\x00") == 0 and "\ufffd" not in text:
        return "is a text file; pass the weights file (.pth or .safetensors) instead"
    return "is in an unknown binary format (expected a .pth PyTorch file or a .safetensors file)"


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def hf_config_metadata(path: Path) -> dict[str, str]:
    """What a Hugging Face model folder's config.json says that the weights cannot (window, img_range)."""
    config_file = path.parent / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict) or config.get("model_type") != "swin2sr":
        return {}
    reject_unsupported_hf_config(config, config_file)
    names = {"window_size": "window_size", "img_size": "image_size", "img_range": "img_range"}
    return {ours: str(config[theirs]) for ours, theirs in names.items() if theirs in config}
