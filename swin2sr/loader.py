"""Load Swin2SR checkpoints: read safely, recognise, infer the configuration, build the model.

What a user may hand us and how it is handled:

* official `.pth` files (bare state dicts), BasicSR/KAIR training files wrapped
  in `params` / `params_ema` / `state_dict`, DataParallel `module.` prefixes,
  `.safetensors`, and Hugging Face transformers files (`swin2sr.*` names,
  mapped by `hf_names`) all load into the same `Swin2SR` module;
* files are read safely (`checkpoint_files`): a pickle that wants to run code
  is refused, never executed;
* the configuration comes from tensor shapes and key names only (`variants`),
  so renamed files and custom trainings load too;
* anything else (Real-ESRGAN, SwinIR, HAT, an HTML error page saved as `.pth`,
  a truncated download, ...) raises `CheckpointError` saying what the file is
  and what to do, instead of a traceback from deep inside torch.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import torch

from . import catalog, fetch, hf_names
from .arguments import check_load_arguments
from .arch import Swin2SR, Swin2SRConfig
from .attention import relative_coords_table, relative_position_index, shift_mask
from .checkpoint_files import CheckpointError, StateDict, hf_config_metadata, read_file
from .variants import METADATA_FIELDS, describe_variant, infer_config

Source = Union[str, os.PathLike, Mapping]

# Deterministic buffers the official code stores in every file; rebuilt by the network itself.
DERIVED_BUFFER_SUFFIXES = ("attn.relative_coords_table", "attn.relative_position_index", "attn_mask")

# Checked in this order: EMA weights are the ones meant for inference (what spandrel and BasicSR's tests use).
WRAPPER_KEYS = ("params_ema", "params-ema", "params", "state_dict", "model_state_dict", "model", "net")

# Embedded models shipped inside the package, alone in swin2sr/weights/upscale_models/ so that a host can add that
# folder to its upscale-model folders: the files also hold what spandrel needs (`spandrel_buffers`).
BUILTIN_FOLDER = ("weights", "upscale_models")
BUILTIN_MODELS: dict[str, str] = {
    "builtin-x4": "swin2sr-builtin-x4.safetensors",
    "builtin-x2": "swin2sr-builtin-x2.safetensors",
}


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
    check_load_arguments(source, device, dtype)
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
    except CheckpointError as exc:  # infer_config's messages say what is wrong; the user also needs which file
        raise CheckpointError(f"{origin}: {exc}") from None
    return Checkpoint(drop_derived_buffers(state), config, describe_variant(config), origin, notes)


def build_model(
    checkpoint: Checkpoint, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Swin2SR:
    """The network with the checkpoint's weights, as normal tensors even when called under inference mode.

    Hosts load under `torch.inference_mode()` (ComfyUI's executor does).  Inference tensors carry no
    version counter, so the CPU's prepacked weights would be rebuilt on every forward pass (about 10% of
    a 64-px tile's time with a release model); normal tensors keep them between passes.
    """
    with torch.inference_mode(False):
        model = Swin2SR(checkpoint.config)
        check_weights(checkpoint.state, model.state_dict(), checkpoint.origin)
        model.load_state_dict(checkpoint.state, strict=True)
        model.variant = checkpoint.variant
        model.eval().requires_grad_(False)
        return model.to(device=device, dtype=dtype)


def resolve_source(source: str | os.PathLike) -> Path:
    """A builtin name becomes the file inside the package; anything else is a path that must exist."""
    name = os.fspath(source)
    if name in BUILTIN_MODELS:
        path = builtin_model_files()[name]
        if not path.is_file():
            raise CheckpointError(
                f"the embedded model {name!r} is missing from this installation (expected {path}); "
                "reinstall the package, or pass the path of a Swin2SR checkpoint instead"
            )
        return path
    if name.startswith("builtin-"):
        raise CheckpointError(f"unknown embedded model {name!r}; available: {', '.join(BUILTIN_MODELS)}")
    path = Path(model_source(name)).expanduser()  # an official model's name: its verified, fetched file
    if path.is_dir():
        return _model_file_in_folder(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return path


def model_source(name: str, progress: fetch.Progress | None = None) -> str:
    """What a `--model` string means, ready to load: a catalogue name (short or release file name) becomes its
    verified local file, downloaded first (with `progress(bytes done, bytes total)`) if need be; anything else
    (a path, builtin-x4 / builtin-x2) is returned unchanged for `load_model` / `load_any_model`.

    The CLI calls this before any other work, so a download that cannot happen is one line within seconds;
    a service can call it the same way.
    """
    entry = catalog.find(name)
    if entry is None or Path(name).expanduser().exists():
        return name
    return str(release_file(entry, progress=progress))


def release_file(
    entry: catalog.ReleaseModel,
    folder: str | os.PathLike | None = None,
    progress: fetch.Progress | None = None,
    transfer: fetch.Transfer | None = None,
) -> Path:
    """The catalogue model's file in `folder` (default: `catalog.models_dir()`), fetched and verified on first use;
    hosts pass their own folder, progress bar and (A1111) downloader."""
    folder = Path(folder) if folder is not None else catalog.models_dir()
    return fetch.fetch(entry, folder, release_verifier(entry), progress, transfer)


def release_verifier(entry: catalog.ReleaseModel) -> fetch.Verify:
    """A check that a file is the catalogue entry's model: readable, Swin2SR, and of its variant and scale."""

    def verify(path: Path) -> None:
        checkpoint = read_checkpoint(path)
        if checkpoint.variant != entry.variant or checkpoint.config.scale != entry.scale:
            raise CheckpointError(f"{path.name} holds a {checkpoint.variant} model, not {entry.name}'s {entry.variant}")

    return verify


def builtin_model_files() -> dict[str, Path]:
    """Embedded model name -> its file (the files sit alone in one folder: `next(iter(...values())).parent`).

    spandrel reads them too, so a host's own loader (ComfyUI's Load Upscale Model) can open them.
    """
    folder = Path(str(importlib.resources.files(__package__).joinpath(*BUILTIN_FOLDER)))
    return {name: folder / file for name, file in BUILTIN_MODELS.items()}


def _model_file_in_folder(folder: Path) -> Path:
    """A downloaded Hugging Face model folder holds its weights under a fixed name."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(f"{folder} is a folder without model.safetensors or pytorch_model.bin; pass the file itself")


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
    """Swin2SR's signature: SwinV2 attention (`logit_scale`) inside residual Swin stages (SwinIR has none)."""
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


# --- weights ---------------------------------------------------------------------------------------


def drop_derived_buffers(state: StateDict) -> StateDict:
    return {k: v for k, v in state.items() if not k.endswith(DERIVED_BUFFER_SUFFIXES)}


def check_weights(state: StateDict, expected: StateDict, origin: str) -> None:
    """Refuse, naming the file and a few tensors, weights the network (its state dict: `expected`) cannot take:
    missing, unexpected or wrongly shaped tensors, integer tensors where it has floating point, NaN or infinity.

    Every load runs it (`build_model`), `swin2sr info` included, so both give the same answer.  (The network
    is not built on the meta device for this: running its constructor there imports torch's meta kernels,
    0.15 GB of the CLI's memory.)
    """
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
    for key, tensor in state.items():
        if expected[key].is_floating_point() and not tensor.is_floating_point():
            raise CheckpointError(
                f"{origin}: tensor {key!r} holds {tensor.dtype} values where the network needs floating point; "
                "the file was converted or saved wrongly: use the original checkpoint"
            )
    check_finite_weights(state, origin)


def check_finite_weights(state: StateDict, origin: str) -> None:
    """Refuse NaN or infinite weights, naming the first tensor: they would give a black or grey image."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{origin}: tensor {key!r} contains {bad} NaN or infinite values; the file is damaged or the "
                "training diverged: use another checkpoint"
            )


def spandrel_buffers(config: Swin2SRConfig) -> StateDict:
    """The derived buffers spandrel needs to read a Swin2SR file, as small as they can be; our loader drops them.

    spandrel builds the official module and loads it strictly, so every block needs its position tables and
    every shifted block its shift mask (without one, spandrel builds unshifted blocks: a different network).
    The mask is stored for a map of 2x2 windows, which already holds every pattern
    (`attention.shift_mask_patterns`); the official code computes the mask of any other input size itself.
    Values are exact in small dtypes (index < 2**15, mask 0 / -100), and load_state_dict casts as it copies.
    """
    ws = config.window_size
    mask = shift_mask(2 * ws, 2 * ws, ws, ws // 2).to(torch.int8)
    buffers = {}
    for i, depth in enumerate(config.depths):
        for j in range(depth):
            prefix = f"layers.{i}.residual_group.blocks.{j}."
            buffers[prefix + "attn.relative_coords_table"] = relative_coords_table(ws).contiguous()
            buffers[prefix + "attn.relative_position_index"] = relative_position_index(ws).to(torch.int16)
            if j % 2 == 1:
                buffers[prefix + "attn_mask"] = mask.clone()  # safetensors stores no shared tensors
    return buffers


def save_model(model: Swin2SR, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write official-named weights as .safetensors that spandrel reads too, with what the weights cannot tell
    (and any extra `metadata`) in the metadata."""
    from safetensors.torch import save_file

    config = model.config
    metadata = {**{name: json.dumps(getattr(config, name)) for name in METADATA_FIELDS}, **(metadata or {})}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file({**tensors, **spandrel_buffers(config)}, os.fspath(path), metadata=metadata)
