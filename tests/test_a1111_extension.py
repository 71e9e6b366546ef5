"""The A1111 / Forge extension, run inside a fake WebUI that reproduces the WebUI's upscaler contracts.

Specification: a person who installs the extension sees Swin2SR upscalers (the embedded defaults at least, and
one per checkpoint with variant, file and real scale) in every upscaler list, and upscaling with one goes through
the core's planner and tiler with the extension's settings, the WebUI's device/precision/memory policy, Interrupt,
and loud loading errors instead of a plain resize.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import swin2sr
from tests.checkpoints import TINY_CONFIGS, random_official_state_dict
from tests.fake_a1111.harness import (
    FAKE_DIR,
    find_upscaler,
    forget_fake_modules,
    patch_torch_load_like_a1111,
    start_webui,
    upscaler_names,
)

torch.set_num_threads(1)
BUILTIN_SOURCES = ("builtin-x4", "builtin-x2")


@pytest.fixture
def checkpoints(tmp_path):
    """models/Swin2SR/ holding a tiny x4 .pth written by current torch.save and a tiny x2 .safetensors."""
    folder = tmp_path / "webui" / "models" / "Swin2SR"
    folder.mkdir(parents=True)
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x4"], seed=1), folder / "tiny4.pth")
    tensors = random_official_state_dict(TINY_CONFIGS["tiny_x2"], seed=2)
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(folder / "tiny2.safetensors"))
    return folder


@pytest.fixture
def webui(monkeypatch, tmp_path, checkpoints):
    """Call with WebUI command-line arguments; returns the started fake WebUI's `modules` package.

    Its models/Swin2SR/ holds the `checkpoints` files."""
    root = tmp_path / "webui"

    def start(*args: str):
        return start_webui(monkeypatch, root, list(args))

    start.root = root
    yield start
    forget_fake_modules()


def image(width: int = 24, height: int = 16, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def script_module(modules):
    """The loaded scripts/swin2sr_upscaler.py (the WebUI names it after the file)."""
    loaded = [module for path, module in modules.scripts.loaded.items() if path.endswith("swin2sr_upscaler.py")]
    assert len(loaded) == 1
    return loaded[0]


def swin2sr_entries(modules):
    return [entry for entry in modules.shared.sd_upscalers if entry.name.startswith("Swin2SR")]


class CallSpy:
    """Wraps a core function to record its arguments while still doing the real work."""

    def __init__(self, function):
        self.function = function
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.function(*args, **kwargs)


# --- registration -------------------------------------------------------------------------------------------


def test_embedded_defaults_are_listed_with_their_real_scale(webui):
    for source in BUILTIN_SOURCES:
        try:
            swin2sr.loader.resolve_source(source)
        except swin2sr.CheckpointError as exc:
            pytest.skip(f"the embedded weights are not in this checkout yet: {exc}")
    modules = webui()
    by_source = {entry.data_path: entry for entry in swin2sr_entries(modules) if entry.data_path in BUILTIN_SOURCES}
    assert set(by_source) == set(BUILTIN_SOURCES)
    for source, entry in by_source.items():
        model = swin2sr.load_model(source)
        assert entry.name == f"Swin2SR x{model.scale} (built-in)"
        assert entry.scale == model.scale
    assert (webui.root / "models" / "Swin2SR").is_dir(), "the folder users drop checkpoints into is created"


def test_each_checkpoint_is_one_entry_named_by_variant_and_file(webui, checkpoints, tmp_path):
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x4"], seed=3), extra / "tiny4.pth")
    (checkpoints / "notes.txt").write_text("not a checkpoint")

    modules = webui("--swin2sr-models-path", str(extra))

    entries = {entry.data_path: entry for entry in swin2sr_entries(modules)}
    files = {path: entry for path, entry in entries.items()
             if path not in BUILTIN_SOURCES and swin2sr.catalog.find(path) is None}  # fmt: skip
    assert sorted(files) == sorted([str(extra / "tiny4.pth"), str(checkpoints / "tiny4.pth"),
                                    str(checkpoints / "tiny2.safetensors")])
    for path, entry in files.items():
        model = swin2sr.load_model(path)
        assert entry.scale == model.scale
        assert entry.name.startswith("Swin2SR ") and f"{model.variant} (" in entry.name
    assert files[str(checkpoints / "tiny2.safetensors")].name.endswith("(tiny2.safetensors)")
    assert files[str(checkpoints / "tiny4.pth")].name.endswith("(Swin2SR/tiny4.pth)"), "same file name: folder shown"
    assert files[str(extra / "tiny4.pth")].name.endswith("(elsewhere/tiny4.pth)")
    names = upscaler_names(modules.shared)
    assert len(names) == len(set(names)), "the WebUI finds upscalers by name, so names must be unique"


def test_discovered_next_to_the_builtin_swinir_and_sorted_like_the_webui(webui):
    modules = webui()
    names = upscaler_names(modules.shared)
    assert names[:3] == ["None", "Lanczos", "Nearest"]
    assert "SwinIR 4x" in names, "our upscaler must not hide the built-in SwinIR"
    rest = names[3:]
    assert rest == sorted(rest, key=str.lower)
    assert type(swin2sr_entries(modules)[0].scaler).__name__ == "UpscalerSwin2SR"


def test_reload_ui_finds_new_files_without_duplicating_entries(webui, checkpoints):
    """Reload UI re-imports the scripts (a second UpscalerSwin2SR class appears) and rebuilds the list."""
    modules = webui()
    before = upscaler_names(modules.shared)
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x4"], seed=4), checkpoints / "added.pth")

    modules.scripts.load_scripts()
    modules.modelloader.load_upscalers()

    after = upscaler_names(modules.shared)
    assert len(after) == len(set(after)) == len(before) + 1
    assert any(name.endswith("(added.pth)") for name in after)


def test_command_line_option_comes_from_preload(webui):
    modules = webui()
    assert modules.shared.cmd_opts.swin2sr_models_path == str(webui.root / "models" / "Swin2SR")


def test_core_is_imported_without_leaving_the_repository_on_sys_path(tmp_path):
    """In a clean interpreter (repository not on sys.path), loading the script finds `swin2sr` at the extension
    root, and afterwards the repository's other top-level names (ComfyUI's nodes.py) are not importable."""
    code = f"""
import importlib.util, os, sys
sys.path.insert(0, {str(FAKE_DIR.parents[1])!r})
from tests.fake_a1111.harness import REPO_ROOT, install_extension
sys.path.pop(0)
assert "swin2sr" not in sys.modules
install_extension(__import__("pathlib").Path({str(tmp_path)!r}))
os.environ["FAKE_WEBUI_ROOT"] = {str(tmp_path)!r}
sys.path.insert(0, {str(FAKE_DIR)!r})
from modules import modelloader, scripts, shared
scripts.load_scripts()
modelloader.load_upscalers()
assert os.path.realpath(sys.modules["swin2sr"].__file__).startswith(str(REPO_ROOT))
assert all(os.path.realpath(p or ".") != str(REPO_ROOT) for p in sys.path), sys.path
assert importlib.util.find_spec("nodes") is None
print(sorted(entry.name for entry in shared.sd_upscalers if entry.name.startswith("Swin2SR")))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "built-in" in result.stdout


# --- upscaling --------------------------------------------------------------------------------------------------


def test_extras_upscale_runs_the_core_with_the_model_and_reaches_the_target(webui, checkpoints):
    modules = webui()
    entry = next(e for e in swin2sr_entries(modules) if e.name.endswith("(tiny4.pth)"))
    picture = image()

    out = entry.scaler.upscale(picture, 4, entry.data_path)  # what Extras and /sdapi/v1/extra-single-image do

    expected = swin2sr.upscale(swin2sr.load_model(checkpoints / "tiny4.pth"), picture, max_input_size=0)
    assert out.size == (96, 64)
    assert np.abs(np.asarray(out, np.int16) - np.asarray(expected, np.int16)).max() <= 1
    assert modules.devices.gc_calls >= 1, "devices.torch_gc() runs after every pass"
    state = modules.shared.state
    assert state.sampling_steps >= 1 and state.sampling_step == state.sampling_steps, "the progress bar moved"


def test_scales_other_than_the_models_follow_the_webui_loop(webui, checkpoints, monkeypatch):
    """A 4x model asked for 2x does one pass and LANCZOS down; a 2x model asked for 4x does two passes."""
    modules = webui()
    spy = CallSpy(swin2sr.upscale)
    monkeypatch.setattr(script_module(modules).swin2sr, "upscale", spy)
    four = next(e for e in swin2sr_entries(modules) if e.data_path.endswith("tiny4.pth"))
    two = next(e for e in swin2sr_entries(modules) if e.data_path.endswith("tiny2.safetensors"))
    assert four.scaler.upscale(image(), 2, four.data_path).size == (48, 32)
    assert len(spy.calls) == 1
    assert two.scaler.upscale(image(), 4, two.data_path).size == (96, 64)
    assert len(spy.calls) == 3
    # hires fix passes float scales; the WebUI floors the target to a multiple of 8
    assert two.scaler.upscale(image(), 1.5, two.data_path).size == (32, 24)
    assert len(spy.calls) == 4


def test_a_scale_1_model_restores_at_extras_scale_1(webui, checkpoints, monkeypatch):
    """JPEG artifact removal (scale 1): listed with scale 1, run once at the same size."""
    car = swin2sr.Swin2SRConfig(embed_dim=12, depths=(2,), num_heads=(2,), upsampler="", scale=1, window_size=7,
                                img_size=126)
    torch.save(random_official_state_dict(car), checkpoints / "car.pth")
    modules = webui()
    spy = CallSpy(swin2sr.upscale)
    monkeypatch.setattr(script_module(modules).swin2sr, "upscale", spy)
    entry = next(e for e in swin2sr_entries(modules) if e.data_path.endswith("car.pth"))
    assert entry.scale == 1
    assert entry.scaler.upscale(image(), 1, entry.data_path).size == (24, 16)
    assert len(spy.calls) == 1


def test_unreadable_checkpoint_is_listed_and_fails_loudly_instead_of_a_plain_resize(webui, checkpoints):
    (checkpoints / "broken.pth").write_bytes(b"this is not a checkpoint")
    modules = webui()
    entry = find_upscaler(modules.shared, "Swin2SR unreadable (broken.pth)")

    with pytest.raises(swin2sr.CheckpointError):
        entry.scaler.upscale(image(), 4, entry.data_path)


def test_pth_written_by_current_torch_loads_although_a1111_replaced_torch_load(webui, checkpoints, monkeypatch):
    """A1111's torch.load replacement refuses current torch's zip layout (#16350); the core loader reads .pth
    with torch's own weights_only unpickler, so the WebUI's checker must not stand in its way."""
    modules = webui()
    patch_torch_load_like_a1111(monkeypatch)
    assert torch.load(checkpoints / "tiny4.pth") is None, "the fake checker refuses the file, like A1111's"

    entry = next(e for e in swin2sr_entries(modules) if e.data_path.endswith("tiny4.pth"))
    assert entry.scaler.upscale(image(), 4, entry.data_path).size == (96, 64)


def test_load_failure_at_upscale_time_is_raised(webui, checkpoints):
    modules = webui()
    entry = next(e for e in swin2sr_entries(modules) if e.data_path.endswith("tiny4.pth"))
    good = (checkpoints / "tiny4.pth").read_bytes()
    (checkpoints / "tiny4.pth").write_bytes(b"replaced by garbage after start-up")

    with pytest.raises(swin2sr.CheckpointError):
        entry.scaler.upscale(image(), 4, entry.data_path)
    (checkpoints / "tiny4.pth").write_bytes(good)
    assert entry.scaler.upscale(image(), 4, entry.data_path).size == (96, 64), "a failed load is not cached"


# --- settings ---------------------------------------------------------------------------------------------------


SETTING_KEYS = ["swin2sr_tile", "swin2sr_tile_overlap", "swin2sr_precision", "swin2sr_max_input_size"]


def test_settings_have_their_own_section_in_the_postprocessing_category(webui):
    opts = webui().shared.opts
    for key in SETTING_KEYS:
        assert opts.data_labels[key].section == ("swin2sr", "Swin2SR")
        assert opts.data_labels[key].category_id == "postprocessing"


def test_settings_exist_before_the_settings_page_is_built(webui):
    """The API-only server builds GET /sdapi/v1/options from the options registered before its settings callbacks
    run; ours must be among them."""
    modules = webui()
    assert set(SETTING_KEYS) <= set(modules.shared.opts.data_labels)
    modules.shared.opts.data_labels.clear()
    modules.script_callbacks.run_ui_settings()
    assert not set(SETTING_KEYS) & set(modules.shared.opts.data_labels), "nothing is registered by a callback"


def test_settings_reach_the_planner(webui, monkeypatch):
    modules = webui()
    opts = modules.shared.opts
    opts.swin2sr_tile = 64
    opts.swin2sr_tile_overlap = 8
    opts.swin2sr_precision = "fp32"
    opts.swin2sr_max_input_size = 0
    spy = CallSpy(swin2sr.upscale)
    monkeypatch.setattr(script_module(modules).swin2sr, "upscale", spy)

    upscale_once(modules)

    kwargs = spy.calls[0][1]
    assert (kwargs["tile"], kwargs["overlap"], kwargs["precision"], kwargs["max_input_size"]) == (64, 8, "fp32", 0)


def test_settings_are_read_defensively(webui):
    modules = webui()
    read_settings = script_module(modules).read_settings

    class Unregistered:  # settings page not built yet: every read raises AttributeError
        pass

    assert read_settings(Unregistered()) == read_settings(modules.shared.opts)
    assert read_settings(Unregistered()).tile == "auto"
    opts = modules.shared.opts
    opts.swin2sr_tile = "big"
    opts.swin2sr_tile_overlap = -3
    opts.swin2sr_precision = "fp64"
    assert read_settings(opts) == read_settings(Unregistered())


# --- device, precision, memory ------------------------------------------------------------------------------------


def spy_core(monkeypatch, modules):
    """Record load_model and upscale calls made by the extension (the real functions still run)."""
    core = script_module(modules).swin2sr
    spies = CallSpy(swin2sr.load_model), CallSpy(swin2sr.upscale)
    monkeypatch.setattr(core, "load_model", spies[0])
    monkeypatch.setattr(core, "upscale", spies[1])
    return spies


def upscale_once(modules):
    entry = next(e for e in swin2sr_entries(modules) if e.data_path.endswith("tiny2.safetensors"))
    return entry.scaler.upscale(image(), entry.scale, entry.data_path)


def test_device_comes_from_get_device_for_and_use_cpu_wins(webui, monkeypatch):
    modules = webui("--use-cpu", "swin2sr")
    gpu = torch.device("meta")  # stands for "the best device"; --use-cpu must override it
    monkeypatch.setattr(modules.devices, "optimal_device", gpu)
    load, run = spy_core(monkeypatch, modules)
    upscale_once(modules)
    assert load.calls[-1][1]["device"] == torch.device("cpu")
    assert run.calls[-1][1]["device"] == torch.device("cpu")


def test_no_half_forces_fp32_whatever_the_setting(webui, monkeypatch):
    modules = webui("--no-half")
    modules.shared.opts.swin2sr_precision = "bf16"
    load, run = spy_core(monkeypatch, modules)
    upscale_once(modules)
    assert run.calls[-1][1]["precision"] == "fp32"
    assert load.calls[-1][1]["dtype"] == torch.float32


def test_explicit_precision_loads_weights_in_that_dtype(webui, monkeypatch):
    modules = webui()
    modules.shared.opts.swin2sr_precision = "bf16"
    load, run = spy_core(monkeypatch, modules)
    upscale_once(modules)
    assert (run.calls[-1][1]["precision"], load.calls[-1][1]["dtype"]) == ("bf16", torch.bfloat16)


@pytest.mark.parametrize("flag, share", [(None, None), ("--medvram", 0.5), ("--lowvram", 0.25)])
def test_medvram_and_lowvram_shrink_the_memory_budget(webui, monkeypatch, flag, share):
    modules = webui(*([flag] if flag else []))
    _, run = spy_core(monkeypatch, modules)
    upscale_once(modules)
    budget = run.calls[-1][1]["memory_budget"]
    if share is None:
        assert budget is None, "without the flags the planner uses its own default"
    else:
        assert budget == pytest.approx(swin2sr.memory.free_memory(torch.device("cpu")) * share, rel=0.05)


def test_models_are_cached_by_file_and_precision(webui, monkeypatch):
    modules = webui()
    load, _ = spy_core(monkeypatch, modules)
    upscale_once(modules)
    upscale_once(modules)
    assert len(load.calls) == 1
    modules.shared.opts.swin2sr_precision = "fp32"
    upscale_once(modules)
    assert len(load.calls) == 2


def test_forge_memory_manager_is_asked_to_free_memory(webui, monkeypatch):
    modules = webui()
    freed = []
    forge_utils = type(sys)("modules_forge.utils")
    forge_utils.prepare_free_memory = lambda aggressive=False: freed.append(aggressive)
    monkeypatch.setitem(sys.modules, "modules_forge", type(sys)("modules_forge"))
    monkeypatch.setitem(sys.modules, "modules_forge.utils", forge_utils)
    upscale_once(modules)
    assert freed == [False]


def test_forge_low_vram_mode_shrinks_the_memory_budget(webui, monkeypatch):
    modules = webui()
    manager = type(sys)("backend.memory_management")
    manager.vram_state = type("VRAMState", (), {"name": "LOW_VRAM"})()
    monkeypatch.setitem(sys.modules, "backend", type(sys)("backend"))
    monkeypatch.setitem(sys.modules, "backend.memory_management", manager)
    sys.modules["backend"].memory_management = manager
    _, run = spy_core(monkeypatch, modules)
    upscale_once(modules)
    budget = run.calls[-1][1]["memory_budget"]
    assert budget == pytest.approx(swin2sr.memory.free_memory(torch.device("cpu")) * 0.25, rel=0.05)


# --- cancellation ---------------------------------------------------------------------------------------------------


def test_interrupt_stops_the_upscale_and_the_webui_loop(webui, monkeypatch):
    modules = webui()
    state = modules.shared.state
    passes = []

    def upscale_until_interrupted(*args, cancel, **kwargs):
        passes.append(cancel())
        state.interrupt()  # the user presses Interrupt while the core works
        passes.append(cancel())
        raise swin2sr.UpscaleCancelled("stopped between two batches of tiles")

    monkeypatch.setattr(script_module(modules).swin2sr, "upscale", upscale_until_interrupted)
    out = upscale_once(modules)
    assert passes == [False, True], "the core's cancel() reflects shared.state.interrupted"
    assert out.size == (48, 32), "the WebUI's loop stops and still delivers the requested size"
    assert modules.devices.gc_calls >= 1, "memory is released after a cancelled pass too"
