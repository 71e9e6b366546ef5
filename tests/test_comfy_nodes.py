"""The ComfyUI nodes against a fake ComfyUI that records every host call (tests/fake_comfy).

Specifies: how the pack registers, what the loader lists and returns, that runs join ComfyUI's VRAM management
with a forecast, that one progress bar covers every tile and Cancel stops the run, that models cross between our
nodes and ComfyUI's built-in upscale nodes in both directions, and how IMAGE/MASK tensors are handled.
Models are tiny random Swin2SR networks (tests/checkpoints.py); images are a few dozen pixels.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from checkpoints import TINY_CONFIGS, random_official_state_dict
from fake_comfy import FLAVOURS, PACK_ROOT, SITE, comfy_environment
from fake_comfy.workflows import BUILTIN_NODES

NODE_IDS = ["Swin2SR_ModelLoader", "Swin2SR_Upscale", "Swin2SR_TiledUpscale", "Swin2SR_FaceRefine",
            "Swin2SR_TwoStage"]
TARGET = {"target": "model scale", "factor": 2.0, "width": 0, "height": 0, "sharpen": 0.0}
FACE_SETTINGS = {"detector": "auto", "threshold": 0.5, "max_faces": 0, "face_size": 0, "feather": 0.3,
                 "color_match": True}
FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "realesr-animevideov3.pth"


def write_checkpoint(base: Path, folder: str, name: str, config: str, seed: int = 0) -> None:
    path = base / "models" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in random_official_state_dict(TINY_CONFIGS[config], seed).items()}
    if name.endswith(".safetensors"):
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save(state, path)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A ComfyUI tree with a tiny x4 in models/upscale_models and a tiny x2 in models/swin2sr."""
    write_checkpoint(tmp_path, "upscale_models", "tiny_x4.safetensors", "tiny_x4")
    write_checkpoint(tmp_path, "swin2sr", "tiny_x2.pth", "tiny_x2", seed=1)
    return tmp_path


@pytest.fixture
def comfy(base):
    with comfy_environment(base) as env:
        yield env


@pytest.fixture(params=FLAVOURS)
def any_comfy(base, request):
    """The same test on ComfyUI 0.3.64 and on current upstream."""
    with comfy_environment(base, request.param) as env:
        env.flavour = request.param
        yield env


def load(env, name: str = "tiny_x4.safetensors", precision: str = "auto"):
    (model,) = env.run("Swin2SR_ModelLoader", model_name=name, precision=precision)
    return model


def images(batch: int = 1, height: int = 24, width: int = 20, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """A ComfyUI IMAGE [B, H, W, C]."""
    return torch.rand(batch, height, width, channels, generator=torch.Generator().manual_seed(seed))


def upscale(env, model, image, **options):
    (out,) = env.run("Swin2SR_Upscale", upscale_model=model, image=image, **{**TARGET, "max_input_size": 1024,
                                                                              **options})
    return out


def tiled(env, model, image, tile_size=16, overlap=4, **options):
    return env.run("Swin2SR_TiledUpscale", upscale_model=model, image=image, tile_size=tile_size, overlap=overlap,
                   **{**TARGET, **options})


def reference(env, model, image: torch.Tensor) -> torch.Tensor:
    """What the core gives for one ComfyUI image, untiled, in fp32."""
    core = env.pack.swin2sr
    x = image.movedim(-1, 1)[:, :3].clamp(0, 1)
    return core.upscale(env.pack.comfy_adapter.core_model(model), x, tile=0, precision="fp32", max_input_size=0,
                        layout="BCHW").movedim(1, -1)


# --------------------------------------------------------------------------------------------------------------------
# Registration


def test_registers_five_prefixed_nodes_in_one_category(comfy):
    mappings = comfy.pack.NODE_CLASS_MAPPINGS
    assert list(mappings) == NODE_IDS
    assert set(comfy.pack.NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_IDS)
    assert not set(mappings) & set(BUILTIN_NODES)
    for node_class in mappings.values():
        assert node_class.CATEGORY == "image/upscaling/Swin2SR"
        assert callable(getattr(node_class(), node_class.FUNCTION))
        assert isinstance(node_class.INPUT_TYPES()["required"], dict)


def test_loads_and_runs_like_in_comfyui_without_an_installed_core(base):
    """ComfyUI imports the pack by path; `swin2sr` is neither on sys.path nor installed there. Importing must be
    light (no spandrel, no model), and every node must work through relative imports alone."""
    script = f"""
import importlib.util, sys, torch

class NotInstalled:  # in a ComfyUI environment the core exists only inside the pack
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "swin2sr":
            raise ImportError("swin2sr is not installed in this environment")

sys.meta_path.insert(0, NotInstalled())
import folder_paths
folder_paths.set_base_path({str(base)!r})
spec = importlib.util.spec_from_file_location("custom_nodes_x_swin2sr", {str(PACK_ROOT / "__init__.py")!r})
pack = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pack
spec.loader.exec_module(pack)
assert len(pack.NODE_CLASS_MAPPINGS) == 5
assert "spandrel" not in sys.modules, "spandrel imported at import time"
import comfy.model_management as mm
assert mm.calls_to("ModelPatcher") == [], "a model was built at import time"
nodes = pack.NODE_CLASS_MAPPINGS
try:  # the embedded weights must be looked up inside the pack, not in an installed `swin2sr`
    nodes["Swin2SR_ModelLoader"]().load("builtin-x2", "auto")
except pack.swin2sr.CheckpointError:
    pass  # the weights are not in this tree (yet); a lookup outside the pack fails with ImportError instead
(model,) = nodes["Swin2SR_ModelLoader"]().load("tiny_x4.safetensors", "auto")
image = torch.rand(1, 16, 16, 3)
(out,) = nodes["Swin2SR_Upscale"]().upscale(model, image, max_input_size=0, **{TARGET!r})
mask = torch.zeros(16, 16)
mask[4:12, 4:12] = 1
faces, _ = nodes["Swin2SR_FaceRefine"]().refine(model, image, mask=mask, **{FACE_SETTINGS!r})
(two,) = nodes["Swin2SR_TwoStage"]().upscale(model, model, image, scale=16, regions="everywhere", detector="auto")
print(tuple(out.shape), tuple(faces.shape), tuple(two.shape))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=base, capture_output=True, text=True,
                            env={"PYTHONPATH": str(SITE), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.stdout.strip() == "(1, 64, 64, 3) (1, 64, 64, 3) (1, 256, 256, 3)", result.stderr[-3000:]


def test_registers_models_swin2sr_folder(comfy, base):
    assert str(base / "models" / "swin2sr") in comfy.folder_paths.get_folder_paths("swin2sr")


# --------------------------------------------------------------------------------------------------------------------
# Model Loader


def test_loader_lists_embedded_models_then_both_folders(comfy):
    options = comfy.nodes["Swin2SR_ModelLoader"].INPUT_TYPES()["required"]["model_name"][0]
    assert options[:4] == ["builtin-x4", "builtin-x2", "tiny_x2.pth", "tiny_x4.safetensors"]
    assert options[4:] == [f"{entry.file} (download)" for entry in comfy.pack.swin2sr.catalog.CATALOG]


def test_loader_returns_comfy_upscale_model_managed_by_a_patcher(any_comfy):
    from spandrel import ImageModelDescriptor

    model = load(any_comfy)
    assert isinstance(model, ImageModelDescriptor)
    assert isinstance(model.model, any_comfy.pack.swin2sr.Swin2SR)  # our fast module inside
    assert model.scale == 4
    expected = "CoreModelPatcher" if any_comfy.flavour == "current" else "ModelPatcher"
    assert type(model.patcher).__name__ == expected
    assert model.patcher.model is model.model
    assert model.patcher.load_device == any_comfy.mm.get_torch_device()


def test_loader_finds_the_swin2sr_folder_too(comfy):
    assert load(comfy, "tiny_x2.pth").scale == 2


def test_loader_embedded_model_needs_no_file(comfy):
    assert load(comfy, "builtin-x4").scale == 4


# --------------------------------------------------------------------------------------------------------------------
# VRAM management


def test_run_loads_through_model_management_with_the_forecast(comfy):
    model = load(comfy)
    image = images(height=40, width=36)
    out = upscale(comfy, model, image)
    (call,) = comfy.mm.calls_to("load_models_gpu")
    assert call["models"] == [model.patcher]
    assert call["force_full_load"] is True
    plan = comfy.pack.swin2sr.plan_upscale(model.model, 40, 36, tile="auto", max_input_size=1024, precision="fp32",
                                           device=torch.device("cpu"),
                                           free_memory=comfy.mm.total_bytes - comfy.mm.extra_reserved_memory())
    assert call["memory_required"] == plan.predicted_bytes > 0
    assert comfy.mm.calls_to("get_free_memory"), "the planner's budget must come from ComfyUI"
    assert model.patcher in comfy.mm.loaded_models()
    assert out.shape == (1, 160, 144, 3) and out.dtype == torch.float32 and out.device.type == "cpu"


def test_comfy_can_evict_the_model_and_the_next_run_reloads_it(comfy):
    model = load(comfy)
    image = images()
    first = upscale(comfy, model, image)
    comfy.mm.unload_all_models()
    assert model.patcher not in comfy.mm.loaded_models()
    assert torch.equal(upscale(comfy, model, image), first)
    assert model.patcher in comfy.mm.loaded_models()


def test_oom_is_recognised_the_comfy_way_and_frees_the_cache(any_comfy):
    host = any_comfy.pack.comfy_adapter
    assert host.is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not host.is_oom(ValueError("bad input"))
    assert len(any_comfy.mm.calls_to("soft_empty_cache")) == 1


def test_oom_during_a_run_shrinks_tiles_and_completes(comfy):
    """A model that runs out of memory on tiles above 32 px: the run recovers and ComfyUI's cache is emptied."""
    model = load(comfy)

    def fail_on_big_tiles(module, args):
        if args[0].shape[-1] > 32:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    hook = model.model.register_forward_pre_hook(fail_on_big_tiles)
    try:
        image, plan = tiled(comfy, model, images(height=64, width=64), tile_size=64)["result"]
    finally:
        hook.remove()
    assert image.shape == (1, 256, 256, 3)
    assert comfy.mm.calls_to("soft_empty_cache")
    assert "out-of-memory recovered" in plan


@pytest.mark.parametrize("requested, flags, expected", [
    ("auto", {}, "fp32"),  # CPU: ComfyUI says no bf16
    ("auto", {"bf16_ok": True}, "bf16"),
    ("bf16", {}, "bf16"),
    ("bf16", {"FORCE_FP32": True}, "fp32"),
    ("auto", {"force_fp16": True}, "fp16"),
])
def test_precision_honours_comfy_flags(comfy, requested, flags, expected):
    for name, value in flags.items():  # the fake modules are fresh for every test
        setattr(comfy.mm.args if name == "force_fp16" else comfy.mm, name, value)
    assert comfy.pack.comfy_adapter.resolve_precision(requested, torch.device("cpu")) == expected


# --------------------------------------------------------------------------------------------------------------------
# Progress and cancel


def test_one_progress_bar_covers_every_tile_of_every_image(comfy):
    model = load(comfy)
    batch = images(batch=3, height=32, width=32)
    _, plan = tiled(comfy, model, batch)["result"]
    per_image = comfy.pack.swin2sr.plan_upscale(model.model, 32, 32, tile=16, overlap=4, max_input_size=0,
                                                precision="fp32").tiles_per_image
    assert per_image > 1
    totals = {total for _, total in comfy.progress}
    values = [value for value, _ in comfy.progress]
    assert totals == {3 * per_image}
    assert values == sorted(values) and values[-1] == 3 * per_image


def test_cancel_stops_the_run_within_one_batch_of_tiles(comfy):
    model = load(comfy)
    forwards = []
    model.model.register_forward_hook(lambda module, args, out: forwards.append(args[0].shape[0]))
    comfy.interrupt_after = 1  # the user presses Cancel while the first batch of tiles is reported
    with pytest.raises(comfy.mm.InterruptProcessingException):
        tiled(comfy, model, images(batch=2, height=32, width=32))
    assert len(comfy.progress) == 1
    assert len(forwards) == 1


# --------------------------------------------------------------------------------------------------------------------
# Crossing with ComfyUI's built-in upscale nodes


@torch.inference_mode()  # like every node ComfyUI executes
def builtin_loader(env, path: Path):
    """What ComfyUI's UpscaleModelLoader returns for a file (current upstream also attaches a CoreModelPatcher)."""
    from spandrel import ModelLoader

    descriptor = ModelLoader().load_from_state_dict(env.utils.load_torch_file(str(path), safe_load=True)).eval()
    if env.flavour == "current":
        mm = env.mm
        descriptor.patcher = env.patcher.CoreModelPatcher(descriptor.model, load_device=mm.get_torch_device(),
                                                          offload_device=mm.unet_offload_device())
    return descriptor


def test_embedded_models_are_offered_to_the_builtin_loader_after_the_users_files(any_comfy, base):
    folder_paths = any_comfy.folder_paths
    assert folder_paths.get_folder_paths("upscale_models")[0] == str(base / "models" / "upscale_models")
    files = {"swin2sr-builtin-x4.safetensors": 4, "swin2sr-builtin-x2.safetensors": 2}
    assert set(files) <= set(folder_paths.get_filename_list("upscale_models"))
    for name, scale in files.items():
        descriptor = builtin_loader(any_comfy, Path(folder_paths.get_full_path("upscale_models", name)))
        assert (descriptor.architecture.id, descriptor.scale) == ("Swin2SR", scale)


def test_swin2sr_from_builtin_loader_runs_on_our_fast_path(any_comfy, base):
    descriptor = builtin_loader(any_comfy, base / "models" / "upscale_models" / "tiny_x4.safetensors")
    image = images()
    out = upscale(any_comfy, descriptor, image)
    ours = any_comfy.pack.comfy_adapter.core_model(descriptor)
    assert isinstance(ours, any_comfy.pack.swin2sr.Swin2SR)
    (call,) = any_comfy.mm.calls_to("load_models_gpu")
    assert call["models"][0].model is ours
    spandrel_out = descriptor(image.movedim(-1, 1)).movedim(1, -1)
    torch.testing.assert_close(out, spandrel_out, atol=1e-4, rtol=0)


@pytest.mark.skipif(not FIXTURE.exists(), reason="shared/fixtures/realesr-animevideov3.pth is not present")
def test_real_esrgan_from_builtin_loader_runs_in_our_nodes(any_comfy):
    descriptor = builtin_loader(any_comfy, FIXTURE)
    image = images(height=20, width=16)
    out = upscale(any_comfy, descriptor, image)
    (call,) = any_comfy.mm.calls_to("load_models_gpu")
    if any_comfy.flavour == "current":
        assert call["models"] == [descriptor.patcher]  # its own patcher is reused
    assert call["models"][0].model is descriptor.model or call["models"][0].model.model is descriptor.model
    torch.testing.assert_close(out, descriptor(image.movedim(-1, 1)).movedim(1, -1), atol=1e-4, rtol=0)


@torch.inference_mode()  # like every node ComfyUI executes
def builtin_upscale_node(env, upscale_model, image: torch.Tensor) -> torch.Tensor:
    """ComfyUI's ImageUpscaleWithModel call pattern: 0.3.64 moves the model by hand, current upstream loads its
    patcher with load_models_gpu; both tile with comfy.utils.tiled_scale and feed float tiles."""
    mm, utils = env.mm, env.utils
    if env.flavour == "current":
        device = upscale_model.patcher.load_device
        mm.load_models_gpu([upscale_model.patcher], memory_required=1 << 20, force_full_load=True)
    else:
        device = mm.get_torch_device()
        mm.free_memory(mm.module_size(upscale_model.model), device)
    upscale_model.to(device)
    in_img = image.movedim(-1, -3).to(device)
    pbar = utils.ProgressBar(utils.get_tiled_scale_steps(in_img.shape[3], in_img.shape[2], 512, 512, 32))
    out = utils.tiled_scale(in_img, lambda a: upscale_model(a.float()), tile_x=512, tile_y=512, overlap=32,
                            upscale_amount=upscale_model.scale, pbar=pbar, output_device=mm.intermediate_device())
    if env.flavour != "current":
        upscale_model.to("cpu")
    return torch.clamp(out.movedim(-3, -1), min=0, max=1.0)


def test_our_model_works_in_the_builtin_upscale_node(any_comfy):
    model = load(any_comfy)
    image = images()
    out = builtin_upscale_node(any_comfy, model, image)
    torch.testing.assert_close(out, reference(any_comfy, model, image), atol=1e-5, rtol=0)
    # and our nodes still run after the built-in one moved the model around
    torch.testing.assert_close(upscale(any_comfy, model, image), out, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------------------------------
# IMAGE and MASK handling


def test_output_is_the_core_result_for_each_frame(comfy):
    model = load(comfy)
    batch = images(batch=3)
    out = upscale(comfy, model, batch)
    for index in range(3):
        torch.testing.assert_close(out[index : index + 1], reference(comfy, model, batch[index : index + 1]))


def test_frames_go_through_the_core_one_at_a_time(comfy, monkeypatch):
    core = comfy.pack.swin2sr
    seen = []
    real = core.upscale
    monkeypatch.setattr(core, "upscale", lambda model, image, **kw: seen.append(image.shape[0]) or real(model, image,
                                                                                                         **kw))
    out = upscale(comfy, load(comfy), images(batch=5, height=12, width=12))
    assert seen == [1] * 5
    assert out.shape == (5, 48, 48, 3) and out.is_contiguous()


def test_values_outside_0_1_are_clamped(comfy):
    model = load(comfy)
    image = images() * 1.6 - 0.3  # what bicubic resizes produce around edges
    torch.testing.assert_close(upscale(comfy, model, image), upscale(comfy, model, image.clamp(0, 1)))


@pytest.mark.parametrize("bad,problem", [(torch.zeros(0, 24, 20, 3), "empty"), (torch.full((1, 24, 20, 3), float("nan")), "NaN")])
def test_empty_or_nan_batches_are_named_before_anything_loads(comfy, bad, problem):
    model = load(comfy)
    with pytest.raises(ValueError, match=problem):
        upscale(comfy, model, bad)
    with pytest.raises(ValueError, match=problem):
        tiled(comfy, model, bad)


def test_rgba_keeps_its_alpha(comfy):
    model = load(comfy)
    rgba = images(channels=4)
    rgba[..., 3] = 1.0
    rgba[:, :, :10, 3] = 0.0
    out = upscale(comfy, model, rgba)
    assert out.shape == (1, 96, 80, 4)
    torch.testing.assert_close(out[..., :3], upscale(comfy, model, rgba[..., :3]))
    assert out[0, 48, 4, 3] < 0.05 and out[0, 48, 70, 3] > 0.95


def test_target_factor_size_and_sharpen(comfy):
    model = load(comfy)
    image = images(height=24, width=20)
    assert upscale(comfy, model, image, target="factor", factor=2.0).shape == (1, 48, 40, 3)
    assert upscale(comfy, model, image, target="size", width=30).shape == (1, 36, 30, 3)
    assert upscale(comfy, model, image, target="size", width=30, height=50).shape == (1, 50, 30, 3)
    plain, sharp = upscale(comfy, model, image), upscale(comfy, model, image, sharpen=0.5)
    assert not torch.equal(plain, sharp) and 0 <= sharp.min() and sharp.max() <= 1


def test_smart_safe_caps_the_input_size_and_tiled_keeps_it(comfy):
    model = load(comfy)
    image = images(height=64, width=32)
    assert upscale(comfy, model, image, max_input_size=32).shape == (1, 128, 64, 3)
    image_out, plan = tiled(comfy, model, image)["result"]
    assert image_out.shape == (1, 256, 128, 3)


def test_tiled_node_shows_its_plan(comfy):
    result = tiled(comfy, load(comfy), images(height=32, width=32), tile_size=16)
    image, plan = result["result"]
    assert result["ui"]["text"] == [plan]
    assert "tile 16" in plan and "fp32" in plan


# --------------------------------------------------------------------------------------------------------------------
# Pipelines: Face Region Refine and Two-Stage

def square_mask(height: int, width: int) -> torch.Tensor:
    mask = torch.zeros(height, width)
    mask[8:20, 6:18] = 1.0
    return mask


@pytest.mark.parametrize("batched", [False, True], ids=["HW", "BHW"])
def test_face_refine_takes_a_mask_and_gives_the_face_mask(comfy, batched):
    model = load(comfy)
    batch = images(batch=2, height=32, width=28)
    mask = square_mask(32, 28)
    image, face_mask = comfy.run("Swin2SR_FaceRefine", upscale_model=model, image=batch,
                                 mask=mask.expand(2, -1, -1) if batched else mask, **FACE_SETTINGS)
    assert image.shape == (2, 128, 112, 3)
    assert face_mask.shape == (2, 128, 112)
    assert face_mask[:, 56, 48].min() > 0.9 and face_mask[:, 120, 100].max() < 0.1  # inside / far outside
    (call,) = comfy.mm.calls_to("load_models_gpu")
    assert call["models"] == [model.patcher]


def test_face_refine_with_a_separate_face_model_loads_both(comfy):
    model, face_model = load(comfy), load(comfy, "tiny_x2.pth")
    comfy.run("Swin2SR_FaceRefine", upscale_model=model, image=images(height=32, width=28), face_model=face_model,
              mask=square_mask(32, 28), **FACE_SETTINGS)
    (call,) = comfy.mm.calls_to("load_models_gpu")
    assert call["models"] == [model.patcher, face_model.patcher]


def test_two_stage_reaches_the_total_scale_with_both_models_loaded(comfy):
    stage1, stage2 = load(comfy, "tiny_x2.pth"), load(comfy, "tiny_x2.pth")
    (out,) = comfy.run("Swin2SR_TwoStage", stage1_model=stage1, stage2_model=stage2, image=images(channels=4),
                       scale=4, regions="everywhere", detector="auto")
    assert out.shape == (1, 96, 80, 4)
    (call,) = comfy.mm.calls_to("load_models_gpu")
    assert set(call["models"]) == {stage1.patcher, stage2.patcher}
    assert comfy.progress[-1][0] == comfy.progress[-1][1]


@pytest.mark.skipif(not FIXTURE.exists(), reason="shared/fixtures/realesr-animevideov3.pth is not present")
def test_two_stage_with_real_esrgan_from_the_builtin_loader(any_comfy, base):
    stage1 = builtin_loader(any_comfy, FIXTURE)
    stage2 = load(any_comfy, "tiny_x2.pth")
    (out,) = any_comfy.run("Swin2SR_TwoStage", stage1_model=stage1, stage2_model=stage2, image=images(),
                           scale=4, regions="mask", detector="auto", mask=square_mask(24, 20))
    assert out.shape == (1, 96, 80, 3)


def test_two_stage_mask_regions_need_a_mask(comfy):
    model = load(comfy, "tiny_x2.pth")
    with pytest.raises(ValueError, match="no MASK is connected"):
        comfy.run("Swin2SR_TwoStage", stage1_model=model, stage2_model=model, image=images(), scale=4,
                  regions="mask", detector="auto")


@pytest.mark.skipif(not FIXTURE.exists(), reason="shared/fixtures/realesr-animevideov3.pth is not present")
def test_real_esrgan_from_our_loader_works_in_our_nodes_and_the_builtin_node(any_comfy, base):
    (base / "models" / "upscale_models" / FIXTURE.name).write_bytes(FIXTURE.read_bytes())
    model = load(any_comfy, FIXTURE.name)
    image = images(height=20, width=16)
    ours, builtin = upscale(any_comfy, model, image), builtin_upscale_node(any_comfy, model, image)
    assert ours.shape == (1, 80, 64, 3)
    torch.testing.assert_close(ours, builtin, atol=1e-4, rtol=0)


def test_face_refine_without_a_mask_uses_the_embedded_detector(comfy):
    """No download and no extra package: on an image without faces the result is the plain upscale."""
    model = load(comfy)
    image = images(height=32, width=28)
    refined, face_mask = comfy.run("Swin2SR_FaceRefine", upscale_model=model, image=image, **FACE_SETTINGS)
    assert face_mask.shape == (1, 128, 112) and face_mask.max() == 0
    torch.testing.assert_close(refined, reference(comfy, model, image), atol=1e-5, rtol=0)
