"""AUTOMATIC1111 / Forge adapter: Swin2SR checkpoints as WebUI upscalers (Extras, hires fix, img2img, API).

The WebUI finds upscalers as *direct* subclasses of `modules.upscaler.Upscaler` once all scripts are imported,
so this file and its class have names no other upscaler uses (a `swinir_model.py` / `UpscalerSwinIR` here would
hide the built-in SwinIR). Everything model-related (loading, tiling, memory planning, precision) is done by
the core package `swin2sr`; this adapter only finds files, names list entries, reads settings and picks the
device, precision and memory budget the WebUI's command line asks for.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple, Optional

import torch
from modules import devices, shared
from modules.upscaler import Upscaler, UpscalerData

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_core():
    """Import the core package `swin2sr` that sits at this extension's root.

    A1111 puts the extension folder on sys.path only while this file is being imported; we make sure it is there
    for this one import and take it away again if we added it, so in A1111 the repo root's other top-level names
    (ComfyUI's `nodes.py`, `tests/`) never shadow anything. Forge (dfdcbab6) instead puts every extension's folder
    at the front of sys.path before it loads any script and leaves them there: there those names stay importable
    for the whole session (Forge itself imports none of them). Once imported, the package stays in sys.modules
    and its submodules import through its own `__path__`.
    """
    added = EXTENSION_ROOT not in sys.path
    if added:
        sys.path.insert(0, EXTENSION_ROOT)
    try:
        import swin2sr
    finally:
        if added:
            sys.path.remove(EXTENSION_ROOT)
    return swin2sr


swin2sr = _import_core()

CHECKPOINT_EXTENSIONS = [".pth", ".safetensors"]
BUILTIN_LABELS = {"builtin-x4": "built-in x4", "builtin-x2": "built-in x2"}  # the core's embedded weights
SETTINGS_SECTION = ("swin2sr", "Swin2SR")
SETTINGS_CATEGORY = "postprocessing"  # a category the WebUI registers (modules/shared_options.py); others: "Uncategorized"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Share of the memory the planner may use when the WebUI runs with --medvram / --lowvram (1.0 otherwise).
REDUCED_BUDGET = {"medvram": 0.5, "lowvram": 0.25}


class Settings(NamedTuple):
    """The extension's settings after validation; `tile` is "auto" or a size in pixels.

    (A NamedTuple, not a dataclass: the WebUI imports this file without registering it in sys.modules, which
    dataclasses need to resolve postponed annotations.)
    """

    tile: int | str = "auto"
    overlap: int = 16
    precision: str = "auto"
    max_input_size: int = 0


def read_settings(opts) -> Settings:
    """Read the settings page defensively: unregistered keys (settings page not built yet) and bad values fall
    back to the defaults, so a hand-edited config.json can never break an upscale."""
    default = Settings()
    tile = _non_negative_int(opts, "swin2sr_tile", 0)
    precision = getattr(opts, "swin2sr_precision", default.precision)
    return Settings(
        tile=tile or "auto",
        overlap=_non_negative_int(opts, "swin2sr_tile_overlap", default.overlap),
        precision=precision if precision in PRECISIONS else default.precision,
        max_input_size=_non_negative_int(opts, "swin2sr_max_input_size", default.max_input_size),
    )


def _non_negative_int(opts, key: str, default: int) -> int:
    try:
        value = int(getattr(opts, key, default))
    except (TypeError, ValueError):
        return default
    return value if value >= 0 else default


def choose_precision(setting: str, cmd_opts) -> str:
    """--no-half means full precision everywhere in the WebUI, whatever the settings page says."""
    return "fp32" if getattr(cmd_opts, "no_half", False) else setting


def memory_share(cmd_opts) -> float:
    """The share of free memory the planner may use: smaller under --medvram/--lowvram or Forge's low-VRAM modes."""
    if getattr(cmd_opts, "lowvram", False) or _forge_vram_state() in ("LOW_VRAM", "NO_VRAM"):
        return REDUCED_BUDGET["lowvram"]
    if getattr(cmd_opts, "medvram", False) or getattr(cmd_opts, "medvram_sdxl", False):
        return REDUCED_BUDGET["medvram"]
    return 1.0


def _forge_vram_state() -> str | None:
    """The VRAM mode of Forge's memory manager (`backend.memory_management`), e.g. "LOW_VRAM"; None in A1111."""
    try:
        from backend import memory_management
    except ImportError:
        return None
    return getattr(getattr(memory_management, "vram_state", None), "name", None)


class UpscalerSwin2SR(Upscaler):
    """All Swin2SR checkpoints in models/Swin2SR/ (or --swin2sr-models-path), the embedded defaults, and the official
    releases, listed whether downloaded or not (like the WebUI's own SwinIR entry) and fetched on first use."""

    def __init__(self, dirname=None):
        self.name = "Swin2SR"  # before super().__init__(): gives model_path = <models>/Swin2SR
        self.model_name = "Swin2SR"  # shown as model_name by /sdapi/v1/upscalers
        self.user_path = dirname
        super().__init__(create_dirs=True)
        self._cached_key = None
        self._cached_model = None
        official = {entry.file for entry in swin2sr.catalog.CATALOG}  # listed once, under their catalogue entry
        files = [path for path in self.find_models(ext_filter=CHECKPOINT_EXTENSIONS) if Path(path).name not in official]
        labels = {**BUILTIN_LABELS, **_file_labels(files)}
        self.scalers = [self._entry(source, label) for source, label in labels.items()]
        self.scalers += [UpscalerData(f"Swin2SR {entry.variant} ({entry.name})", entry.name, self, scale=entry.scale)
                         for entry in swin2sr.catalog.CATALOG]  # fmt: skip

    def _entry(self, source: str, label: str) -> UpscalerData:
        """A list entry named after the checkpoint's variant and file, with its real scale.

        The checkpoint is read (not built into a network) to learn both. A file that cannot be read is still
        listed, so that choosing it shows the loader's explanation instead of the file silently missing. Any
        error is caught here: this runs during the WebUI's start-up, which one bad file must not stop.
        """
        try:
            checkpoint = swin2sr.loader.read_checkpoint(source)
        except Exception as exc:  # noqa: BLE001 - see docstring; the error is printed and raised again on use
            print(f"Swin2SR: cannot use {source}: {exc}", file=sys.stderr)
            return UpscalerData(f"Swin2SR unreadable ({label})", source, self, scale=4)
        scale = checkpoint.config.scale
        if source in BUILTIN_LABELS:  # our own small shape: "custom: embed 48, ..." would tell a user nothing
            return UpscalerData(f"Swin2SR x{scale} (built-in)", source, self, scale=scale)
        variant = checkpoint.variant  # "ClassicalSR x4", or "Swin2SR x4 (custom: ...)" for unreleased shapes
        title = variant if variant.startswith("Swin2SR") else f"Swin2SR {variant}"
        return UpscalerData(f"{title} ({label})", source, self, scale=scale)

    def do_upscale(self, img, selected_model):
        """One pass by the model's own factor through the core's planner and tiler.

        Loading errors propagate (the WebUI shows them); only a user's Interrupt/Skip returns the input
        unchanged, which ends the base class's loop as it does for the WebUI's own upscalers.
        """
        settings = read_settings(shared.opts)
        device = devices.get_device_for("swin2sr")
        precision = choose_precision(settings.precision, shared.cmd_opts)
        _free_forge_memory()
        model = self._model(selected_model, device, precision)
        try:
            result, report = swin2sr.upscale(
                model, img, tile=settings.tile, overlap=settings.overlap, precision=precision,
                max_input_size=settings.max_input_size, memory_budget=self._memory_budget(device),
                device=device, progress=_report_progress, cancel=_cancelled, return_report=True)
        except swin2sr.UpscaleCancelled:
            return img
        finally:
            devices.torch_gc()
        print(f"Swin2SR: {report}")
        return result

    def _model(self, source: str, device, precision: str):
        """The model for (file, device, precision), kept between calls; one at a time to spare memory.

        The core loader reads .pth with weights_only and .safetensors, and raises CheckpointError with an
        explanation; that error reaches the user (Extras, API, hires fix), never a plain resize.
        """
        key = (source, str(device), precision)
        if self._cached_key != key:
            self._cached_key = self._cached_model = None  # free the old model before loading the next
            path = self._official_file(source) or source
            self._cached_model = swin2sr.load_model(path, device=device, dtype=DTYPES.get(precision))
            self._cached_key = key
        return self._cached_model

    def _official_file(self, source: str) -> str | None:
        """For an official entry, its verified file in our models folder, fetched on first use through the WebUI's
        own downloader (`modelloader.load_file_from_url`, as its SwinIR does); None for any other source."""
        entry = swin2sr.catalog.find(source)
        if entry is None:
            return None
        folder = getattr(self, "model_download_path", None) or self.model_path
        return str(swin2sr.loader.release_file(entry, folder, transfer=_host_download))

    def _memory_budget(self, device) -> int | None:
        """A byte cap for the planner under --medvram/--lowvram; None lets it use its own safety margin."""
        share = memory_share(shared.cmd_opts)
        return None if share == 1.0 else int(swin2sr.memory.free_memory(device) * share)


def _free_forge_memory() -> None:
    """In Forge, let its memory manager unload what it must before we allocate (as its SwinIR does)."""
    try:
        from modules_forge.utils import prepare_free_memory
    except ImportError:
        return
    prepare_free_memory()


def _host_download(url: str, part: Path, progress) -> None:
    """The core's transfer step done by the WebUI's downloader (its console bar; `progress` is not called).

    It downloads into a staging folder of its own, which the file then leaves at once: the core verifies `part`
    before it is renamed into place, so a refused download never appears in the upscaler folder.
    """
    from modules import modelloader

    staging = part.with_name(part.name + ".d")
    try:
        os.replace(modelloader.load_file_from_url(url, model_dir=str(staging), file_name=part.name), part)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _cancelled() -> bool:
    return bool(shared.state.interrupted or shared.state.skipped)


def _report_progress(done: int, total: int) -> None:
    """Feed the WebUI's progress bar (it reads the sampling step fields of shared.state)."""
    shared.state.sampling_steps = total
    shared.state.sampling_step = done


def _file_labels(paths: list[str]) -> dict[str, str]:
    """The file name, or as many trailing folders as it takes to tell apart files of the same name.

    The WebUI looks upscalers up by name, so names must be unique; "Swin2SR/x.pth" and "elsewhere/x.pth" also
    tell the user which file is which.
    """
    parts = {path: Path(path).parts for path in paths}
    labels = {}
    for path, own in parts.items():
        depth = 1
        while depth < len(own) and any(other != path and p[-depth:] == own[-depth:] for other, p in parts.items()):
            depth += 1
        labels[path] = "/".join(own[-depth:])
    return labels


def register_settings() -> None:
    """The extension's own "Swin2SR" section on the Settings page, in the WebUI's Postprocessing category next to
    its own "Upscaling" section (v1.7+ convention; read back with read_settings).

    Registered when this script is imported rather than from on_ui_settings: an API-only server (--nowebui) runs
    those callbacks only after it has built the response model of GET /sdapi/v1/options from the options known
    then, so options added by a callback are missing from that answer (seen in the real A1111 1.10.1).
    """
    import gradio as gr

    options = shared.options_section((*SETTINGS_SECTION, SETTINGS_CATEGORY), {
        "swin2sr_tile": shared.OptionInfo(
            0, "Tile size (0 = automatic from free memory)", gr.Slider, {"minimum": 0, "maximum": 2048, "step": 8},
        ).info("smaller tiles use less memory; the planner also shrinks tiles after an out-of-memory error"),
        "swin2sr_tile_overlap": shared.OptionInfo(
            16, "Tile overlap in pixels", gr.Slider, {"minimum": 0, "maximum": 128, "step": 1},
        ).info("tiles are blended across the overlap; low values can show seams"),
        "swin2sr_precision": shared.OptionInfo(
            "auto", "Precision", gr.Radio, {"choices": list(PRECISIONS)},
        ).info("auto: bf16 on NVIDIA GPUs that support it, else fp16 there, fp32 on CPU; half-precision tiles that "
               "come out broken are redone in fp32; --no-half forces fp32"),
        "swin2sr_max_input_size": shared.OptionInfo(
            0, "Largest input side in pixels (0 = no limit)", gr.Slider, {"minimum": 0, "maximum": 8192, "step": 64},
        ).info("longer inputs are downscaled before upscaling; 0 keeps full resolution (tiling handles any size)"),
    })
    for key, info in options.items():
        shared.opts.add_option(key, info)
    publish_in_api_options(options)


def publish_in_api_options(options: dict) -> None:
    """Add our settings to the API's options model if the WebUI built that model before this script ran.

    GET /sdapi/v1/options answers through `modules.api.models.OptionsModel`, a pydantic model made once, when that
    module is first imported, from the options registered by then. A1111 imports it after every script, so ours are
    in it and this does nothing. Forge's built-in ControlNet imports it before user extensions load: our settings
    then work and show on the Settings page but are missing from the API's answer. Detected by that state, not by
    a version: the module is imported and its model lacks our keys. The model is then replaced by a subclass with
    our fields, typed by the rule of the WebUI's own model; the API's routes are made after all scripts have loaded,
    so they use the replacement.
    """
    models = sys.modules.get("modules.api.models")
    model = getattr(models, "OptionsModel", None)
    if model is None:
        return
    known = getattr(model, "model_fields", None) or model.__fields__  # pydantic 2 (Forge) or 1 (A1111)
    missing = {key: info for key, info in options.items() if key not in known}
    if not missing:
        return
    from pydantic import Field, create_model

    fields = {key: (_api_type(info.default), Field(default=info.default, description=info.label))
              for key, info in missing.items()}
    models.OptionsModel = create_model("Options", __base__=model, **fields)


def _api_type(default) -> object:
    """The type modules/api/models.py gives a setting with this default: optional, of the default's type through
    the options' typemap (int -> float), Any for a falsy default."""
    kind = shared.opts.typemap.get(type(default), type(default)) if default else Any
    return Optional[kind]


register_settings()
