"""Load Swin2SR checkpoints: read safely, recognise, infer the configuration, build the model.

What a user may hand us and how it is handled:

* official `.pth` files (bare state dicts), BasicSR/KAIR training files wrapped
  in `params` / `params_ema` / `state_dict`, DataParallel `module.` prefixes,
  `.safetensors`, and Hugging Face transformers files (`swin2sr.*` names,
  mapped by `hf_names`) all load into the same `Swin2SR` module;
* `.pth` files are read with `torch.load(weights_only=True)`: a pickle that
  wants to run code is refused, never executed;
* the configuration comes from tensor shapes and key names only (never the
  file name), so renamed files and custom trainings load too;
* anything else (Real-ESRGAN, SwinIR, an HTML error page saved as `.pth`, a
  truncated download, ...) raises `CheckpointError` saying what the file is
  and what to do, instead of a traceback from deep inside torch.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import math
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import torch

from . import hf_names
from .arch import Swin2SR, Swin2SRConfig

log = logging.getLogger("swin2sr")

StateDict = dict[str, torch.Tensor]
Source = Union[str, os.PathLike, Mapping]

# Deterministic buffers the official code stores in every file; rebuilt by the network itself.
DERIVED_BUFFER_SUFFIXES = ("attn.relative_coords_table", "attn.relative_position_index", "attn_mask")

# Checked in this order: EMA weights are the ones meant for inference (what spandrel and BasicSR's tests use).
WRAPPER_KEYS = ("params_ema", "params-ema", "params", "state_dict", "model_state_dict", "model", "net")

# Embedded models shipped inside the package (swin2sr/weights/).
BUILTIN_MODELS: dict[str, str] = {
    "builtin-x4": "builtin-x4.safetensors",
    "builtin-x2": "builtin-x2.safetensors",
}

# safetensors metadata keys (also taken from a Hugging Face config.json) for what the weights cannot tell.
METADATA_FIELDS = ("window_size", "img_size", "img_range")

_RELEASE_BODY = dict(embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, mlp_ratio=2.0, resi_connection="1conv")
# (name, fields a config must have) for the released checkpoints, most specific first.
RELEASED_VARIANTS: tuple[tuple[str, dict], ...] = (
    ("JPEG CAR", dict(_RELEASE_BODY, window_size=7, upsampler="", scale=1)),
    ("ClassicalSR x2", dict(_RELEASE_BODY, in_chans=3, window_size=8, upsampler="pixelshuffle", scale=2)),
    ("ClassicalSR x4", dict(_RELEASE_BODY, in_chans=3, window_size=8, upsampler="pixelshuffle", scale=4)),
    ("CompressedSR x4", dict(_RELEASE_BODY, in_chans=3, window_size=8, upsampler="pixelshuffle_aux", scale=4)),
    ("RealworldSR x4", dict(_RELEASE_BODY, in_chans=3, window_size=8, upsampler="nearest+conv", scale=4)),
    (
        "Lightweight x2",
        dict(
            embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4, mlp_ratio=2.0, resi_connection="1conv",
            in_chans=3, window_size=8, upsampler="pixelshuffledirect", scale=2,
        ),
    ),
)


class CheckpointError(ValueError):
    """A file or state dict that is not a loadable Swin2SR checkpoint; the message says what it is and what to do."""


@dataclass
class Checkpoint:
    """A Swin2SR state dict in official names, its inferred configuration and how it was read."""

    state: StateDict
    config: Swin2SRConfig
    variant: str
    origin: str
    notes: list[str] = field(default_factory=list)


def load_model(
    source: Source, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Swin2SR:
    """Build a ready-to-run Swin2SR (eval mode, no gradients) from a path, a state dict or a builtin name.

    The returned module has `.scale`, `.variant` (e.g. "ClassicalSR x4"),
    `.config` and `.tile_multiple`; calling it on a [B, 3, H, W] tensor in
    0..1 gives the raw [B, 3, H*s, W*s] output of the exact untiled network.
    """
    return build_model(read_checkpoint(source), device, dtype)


def read_checkpoint(source: Source) -> Checkpoint:
    """Read and recognise a Swin2SR checkpoint without building the network (what `swin2sr info` shows)."""
    raw, metadata, origin, notes = read_source(source)
    state = unwrap_state_dict(raw, origin, notes)
    return checkpoint_from_state(state, metadata, origin, notes)


def read_source(source: Source) -> tuple[object, dict[str, str], str, list[str]]:
    """(stored object, safetensors metadata, origin for messages, notes on how it was read)."""
    notes: list[str] = []
    if isinstance(source, Mapping):
        return source, {}, "the given state dict", notes
    path = resolve_source(source)
    origin = f"{source} ({path.name})" if os.fspath(source) in BUILTIN_MODELS else str(path)
    raw, metadata = read_file(path, notes)
    return raw, {**hf_config_metadata(path), **metadata}, origin, notes


def hf_config_metadata(path: Path) -> dict[str, str]:
    """What a Hugging Face model folder's config.json says that the weights cannot (window, img_range)."""
    config_file = path.parent / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict) or config.get("model_type") != "swin2sr":
        return {}
    names = {"window_size": "window_size", "img_size": "image_size", "img_range": "img_range"}
    return {ours: str(config[theirs]) for ours, theirs in names.items() if theirs in config}


def checkpoint_from_state(state: StateDict, metadata: Mapping[str, str], origin: str, notes: list[str]) -> Checkpoint:
    """Map HF names, reject foreign architectures, infer the configuration and name the variant."""
    if hf_names.is_hf_state_dict(state):
        notes.append("Hugging Face transformers names")
        state = hf_names.hf_to_official(state)
    reject_foreign(state, origin)
    try:
        config = infer_config(state, metadata)
    except KeyError as exc:
        raise CheckpointError(
            f"{origin} looks like a Swin2SR checkpoint but lacks {exc.args[0]!r}: it is incomplete; "
            "use the complete original file"
        ) from None
    return Checkpoint(drop_derived_buffers(state), config, describe_variant(config), origin, notes)


def build_model(
    checkpoint: Checkpoint, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Swin2SR:
    model = Swin2SR(checkpoint.config)
    load_weights(model, checkpoint.state, checkpoint.origin)
    model.variant = checkpoint.variant
    if not hasattr(type(model), "tile_multiple"):  # until the network defines it itself
        model.tile_multiple = checkpoint.config.window_size
    model.eval().requires_grad_(False)
    return model.to(device=device, dtype=dtype)


def resolve_source(source: str | os.PathLike) -> Path:
    """A builtin name becomes the file inside the package; anything else is a path that must exist."""
    name = os.fspath(source)
    if name in BUILTIN_MODELS:
        path = Path(str(importlib.resources.files("swin2sr") / "weights" / BUILTIN_MODELS[name]))
        if not path.is_file():
            raise CheckpointError(
                f"the embedded model {name!r} is missing from this installation (expected {path}); "
                "reinstall the package, or pass the path of a Swin2SR checkpoint instead"
            )
        return path
    if name.startswith("builtin-"):
        raise CheckpointError(f"unknown embedded model {name!r}; available: {', '.join(BUILTIN_MODELS)}")
    path = Path(name).expanduser()
    if path.is_dir():
        return _model_file_in_folder(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return path


def _model_file_in_folder(folder: Path) -> Path:
    """A downloaded Hugging Face model folder holds its weights under a fixed name."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} is a folder without model.safetensors or pytorch_model.bin; pass the file itself")


# --- reading files ---------------------------------------------------------------------------------


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
    if _looks_like_safetensors(head, size):
        notes.append("safetensors")
        return _safetensors_load(path)
    raise CheckpointError(f"{path} is not a model checkpoint: it {_describe_foreign_bytes(head)}")


def _torch_load(path: Path, kind: str) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
        f"{path} contains Python objects other than tensors{what}, such as code; it was not loaded, for safety "
        "(torch.load with weights_only=True refused it). If you trust its source, load it once in a separate "
        "Python with torch.load(..., weights_only=False) and save the state dict with "
        "safetensors.torch.save_file(state_dict, 'model.safetensors'), then use that file"
    )


def _looks_like_safetensors(head: bytes, size: int) -> bool:
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


# --- recognising the content -----------------------------------------------------------------------


def unwrap_state_dict(obj: object, origin: str, notes: list[str]) -> StateDict:
    """The tensors of a bare or wrapped state dict, with DataParallel `module.` prefixes removed."""
    while isinstance(obj, Mapping) and not _all_tensors(obj):
        inner = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None and len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
            inner = next(iter(obj))
        if inner is None:
            break
        notes.append(f"weights taken from {inner!r}")
        obj = obj[inner]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{origin} holds a {type(obj).__name__}, not a state dict of tensors")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        listed = ", ".join(map(repr, list(obj)[:5])) or "nothing"
        raise CheckpointError(f"{origin} contains no tensors (it holds {listed}); it is not a model checkpoint")
    if any(key.startswith("module.") for key in state):
        notes.append("'module.' prefix removed")
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def _all_tensors(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def is_swin2sr_state_dict(state: Mapping[str, object]) -> bool:
    """Swin2SR's signature: SwinV2 attention (`logit_scale`, `cpb_mlp`) inside residual Swin stages."""
    block = "layers.0.residual_group.blocks.0.attn."
    return "conv_first.weight" in state and (block + "logit_scale") in state


def reject_foreign(state: StateDict, origin: str) -> None:
    """Raise CheckpointError naming the architecture of a state dict that is not Swin2SR."""
    if is_swin2sr_state_dict(state):
        return
    name = identify_architecture(state)
    if name is None:
        first = ", ".join(list(state)[:4])
        raise CheckpointError(
            f"{origin} is not a Swin2SR checkpoint and its architecture is not recognised "
            f"(no 'conv_first' / 'layers.0.residual_group' keys; first keys: {first})"
        )
    raise CheckpointError(
        f"{origin} is a {name} model, not Swin2SR; load it with swin2sr.load_any_model (which uses spandrel) "
        "or use it as the first stage of a two-stage upscale"
    )


def identify_architecture(state: Mapping[str, object]) -> str | None:
    """A human name for a non-Swin2SR state dict: Real-ESRGAN by its keys, others by spandrel, else None."""
    keys = set(state)
    if {"conv_first.weight", "body.0.rdb1.conv1.weight"} <= keys or "model.1.sub.0.RDB1.conv1.0.weight" in keys:
        return "Real-ESRGAN / ESRGAN (RRDBNet)"
    if {"body.0.weight", "body.1.weight"} <= keys and getattr(state["body.1.weight"], "ndim", 0) == 1:
        return "Real-ESRGAN Compact (SRVGGNetCompact)"
    detected = _spandrel_architecture(state)
    if detected is None and any(k.endswith("attn.relative_position_bias_table") for k in keys):
        return "SwinIR-like (Swin v1 attention)"
    return detected


def _spandrel_architecture(state: Mapping[str, object]) -> str | None:
    try:
        import spandrel
    except ImportError:
        return None
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(dict(state))
    except Exception:  # spandrel raises many kinds of errors for unknown dicts; all mean "not recognised"
        return None
    return f"{descriptor.architecture.name} (detected by spandrel)"


# --- configuration ---------------------------------------------------------------------------------


def infer_config(state: StateDict, metadata: Mapping[str, str] | None = None) -> Swin2SRConfig:
    """The network configuration, from tensor shapes and key names (plus our own safetensors metadata).

    Window size comes from the stored index buffer or shift mask; files
    without buffers (Hugging Face, our safetensors) use their metadata or the
    release value 8.  img_range is 255 exactly for window 7, as in the JPEG
    releases (spandrel uses the same rule).
    """
    metadata = metadata or {}
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    depths = _stage_depths(state)
    window = int(metadata.get("window_size", 0)) or _window_size(state) or 8
    upsampler = _upsampler(state)
    _reject_unsupported(state)
    return Swin2SRConfig(
        embed_dim=int(embed_dim),
        depths=depths,
        num_heads=tuple(
            int(state[f"layers.{i}.residual_group.blocks.0.attn.logit_scale"].shape[0]) for i in range(len(depths))
        ),
        window_size=window,
        img_size=int(metadata.get("img_size", 0)) or _img_size(state, window) or window * 8,
        mlp_ratio=state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0] / embed_dim,
        upsampler=upsampler,
        img_range=float(metadata.get("img_range", 255.0 if window == 7 else 1.0)),
        in_chans=int(in_chans),
        resi_connection="3conv" if "conv_after_body.0.weight" in state else "1conv",
        scale=_scale(state, upsampler, int(in_chans)),
        patch_norm="patch_embed.norm.weight" in state,
    )


def _stage_depths(state: StateDict) -> tuple[int, ...]:
    depths = []
    while f"layers.{len(depths)}.residual_group.blocks.0.norm1.weight" in state:
        i, depth = len(depths), 0
        while f"layers.{i}.residual_group.blocks.{depth}.norm1.weight" in state:
            depth += 1
        depths.append(depth)
    return tuple(depths)


def _window_size(state: StateDict) -> int | None:
    index = state.get("layers.0.residual_group.blocks.0.attn.relative_position_index")
    if index is None:
        index = state.get("layers.0.residual_group.blocks.1.attn_mask")
    return math.isqrt(index.shape[-1]) if index is not None else None


def _img_size(state: StateDict, window: int) -> int | None:
    """The training patch size, from the number of windows in the stored shift mask."""
    mask = state.get("layers.0.residual_group.blocks.1.attn_mask")
    return math.isqrt(mask.shape[0]) * window if mask is not None else None


def _upsampler(state: StateDict) -> str:
    if "conv_bicubic.weight" in state:
        return "pixelshuffle_aux"
    if "conv_hr.weight" in state:
        return "nearest+conv"
    if "conv_before_upsample.0.weight" in state:
        return "pixelshuffle"
    if "upsample.0.weight" in state:
        return "pixelshuffledirect"
    return ""


def _scale(state: StateDict, upsampler: str, in_chans: int) -> int:
    if upsampler == "pixelshuffledirect":
        return math.isqrt(state["upsample.0.weight"].shape[0] // in_chans)
    if upsampler == "nearest+conv":
        return 4
    if upsampler == "":
        return 1
    convs = [state[k] for k in sorted(state) if re.fullmatch(r"upsample\.\d+\.weight", k)]
    if len(convs) == 1 and convs[0].shape[0] == 9 * convs[0].shape[1]:
        return 3
    return 2 ** len(convs)


def _reject_unsupported(state: StateDict) -> None:
    """Official-code options that no release uses and this network does not implement."""
    unsupported = {
        "conv_after_body_hf.weight": "the 'pixelshuffle_hf' head",
        "absolute_pos_embed": "absolute position embeddings (ape=True)",
    }
    for key, what in unsupported.items():
        if key in state:
            raise CheckpointError(f"this Swin2SR checkpoint uses {what}, which no released model uses; not supported")
    patch = state["patch_embed.proj.weight"].shape[-1] if "patch_embed.proj.weight" in state else 1
    if patch != 1:
        raise CheckpointError(f"this Swin2SR checkpoint uses patch size {patch}; only patch size 1 is supported")


def describe_variant(config: Swin2SRConfig) -> str:
    """The release name for a released configuration, an honest description otherwise."""
    for name, fields in RELEASED_VARIANTS:
        if all(getattr(config, key) == value for key, value in fields.items()):
            return name + (" (grayscale)" if config.in_chans == 1 else "")
    depths = config.depths
    blocks = f"{len(depths)}x{depths[0]}" if len(set(depths)) == 1 else "+".join(map(str, depths))
    return f"Swin2SR x{config.scale} (custom: embed {config.embed_dim}, {blocks} blocks)"


# --- weights ---------------------------------------------------------------------------------------


def drop_derived_buffers(state: StateDict) -> StateDict:
    return {k: v for k, v in state.items() if not k.endswith(DERIVED_BUFFER_SUFFIXES)}


def load_weights(model: Swin2SR, state: StateDict, origin: str) -> None:
    """Strict load; a partial or mismatched state dict names a few of the offending keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if keys:
            shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
            problems.append(f"{len(keys)} {label} ({shown})")
    if problems:
        raise CheckpointError(
            f"{origin} looks like a Swin2SR checkpoint but does not match the network it describes: "
            + "; ".join(problems)
            + ". The file is incomplete or was saved from a modified network; use the complete original file"
        )
    model.load_state_dict(state, strict=True)


def save_model(model: Swin2SR, path: str | os.PathLike) -> None:
    """Write official-named weights as .safetensors, with what the weights cannot tell in the metadata."""
    from safetensors.torch import save_file

    config = model.config
    metadata = {name: json.dumps(getattr(config, name)) for name in METADATA_FIELDS}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, os.fspath(path), metadata=metadata)
