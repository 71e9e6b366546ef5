"""Tiling benchmarks: overhead, scaling, forecaster calibration, seams, and the 4000x3000 -> 16000x12000 run.

    PYTHONPATH=. python benchmarks/bench_tiling.py overhead|scaling|calibrate|seams|big|all [--threads N]

Results go to benchmarks/results/tiling_<section>.json (merged) and the
scaling plot to docs/tiling_scaling.png (needs matplotlib, a dev dependency).
The model is builtin-x4 when its weights are in the tree (or the checkpoint
named by $BENCH_WEIGHTS), else a seeded random network of the builtin's shape
(said so in every result).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import swin2sr  # noqa: E402
from swin2sr import memory  # noqa: E402
from tests.checkpoints import OFFICIAL_CONFIGS, TINY_CONFIGS, random_official_state_dict  # noqa: E402
from tests.tiling_models import DERIVED, seam_stats  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "tiling.json"
PLOT = ROOT / "docs" / "tiling_scaling.png"
BUILTIN = ROOT / "swin2sr" / "weights" / "upscale_models" / "swin2sr-builtin-x4.safetensors"
# The builtin's shape (tools/train_builtin.py on the builtin branch), for runs before its weights land.
BUILTIN_SHAPE = swin2sr.Swin2SRConfig(
    embed_dim=48, depths=(4, 4), num_heads=(4, 4), img_size=48, upsampler="pixelshuffledirect", scale=4
)
SET5 = ROOT.parent / "shared" / "benchmarks" / "Set5" / "LR_bicubic" / "X4"
# glibc keeps freed blocks below its (adaptive) mmap threshold; a fixed one makes RSS follow live memory.
LIVE_RSS_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def random_model(config) -> swin2sr.Swin2SR:
    model = swin2sr.Swin2SR(config).eval().requires_grad_(False)
    state = {k: v for k, v in random_official_state_dict(config, 0).items() if not k.endswith(DERIVED)}
    model.load_state_dict(state)
    return model


def bench_model() -> tuple[torch.nn.Module, str]:
    """builtin-x4 (or the checkpoint named by $BENCH_WEIGHTS), else a random model of its shape."""
    override = os.environ.get("BENCH_WEIGHTS")
    if override:
        return swin2sr.load_model(override), f"{Path(override).name} (BENCH_WEIGHTS)"
    if BUILTIN.exists():
        return swin2sr.load_model("builtin-x4"), "builtin-x4"
    return random_model(BUILTIN_SHAPE), "random weights, builtin-x4 shape (builtin weights not in the tree)"


def best_of(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def overhead(repeats: int = 3) -> dict:
    """Tiled (tile 128, overlap 16) vs one untiled forward, same fp32 model and input."""
    model, name = bench_model()
    rows = []
    for side in (256, 512):
        x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            untiled = best_of(lambda: model(x), repeats)
        options = dict(tile=128, overlap=16, max_input_size=0, precision="fp32")
        tiled = best_of(lambda: swin2sr.upscale(model, x, **options), repeats)
        plan = swin2sr.plan_upscale(model, side, side, **options)
        pixels = plan.tiles_per_image * plan.tile_h * plan.tile_w / side**2
        rows.append(
            {"input": side, "untiled_s": untiled, "tiled_s": tiled, "overhead_pct": 100 * (tiled / untiled - 1),
             "tiles": plan.tiles_per_image, "computed_pixels_pct": 100 * (pixels - 1)}
        )  # fmt: skip
        print(rows[-1], flush=True)
    return {"model": name, "threads": torch.get_num_threads(), "rows": rows}


def scaling(sizes=(256, 512, 1024, 2048, 4096), tile: int = 256) -> dict:
    """Time and peak RSS per input size at a fixed tile, each in a fresh process (uint8 output, like a file).

    The budget is one tile's forecast, so every size runs one tile per batch: the working set is
    one tile whatever the image (with a larger budget it is the budget, also flat once reached).
    """
    rows = []
    for side in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "_one", str(side), str(tile), str(torch.get_num_threads())],
            env={**os.environ, **LIVE_RSS_ENV, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return {"model": bench_model()[1], "tile": tile, "threads": torch.get_num_threads(), "rows": rows}


def _one(side: int, tile: int) -> None:
    model, _ = bench_model()
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    one_tile = swin2sr.estimate_memory(model, min(tile, side), min(tile, side), 1)
    start = time.perf_counter()
    out, report = swin2sr.upscale(
        model, image, tile=tile, overlap=16, max_input_size=0, memory_budget=one_tile, return_report=True
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row = {"input": side, "seconds": seconds, "megapixels_out": out.size / 3e6, "peak_rss": peak,
           "rss_before": base, "output_bytes": out.nbytes, "working_bytes": peak - base - out.nbytes,
           "predicted_bytes": report.plan.predicted_bytes, "tiles": report.plan.total_tiles}  # fmt: skip
    print(json.dumps(row))


def calibrate() -> dict:
    """Forecast vs torch-profiler peak (activations, CPU, fp32) for several configurations and sizes."""
    configs = {
        "tiny_x4": TINY_CONFIGS["tiny_x4"], "tiny_x2": TINY_CONFIGS["tiny_x2"], "builtin_shape_x4": BUILTIN_SHAPE,
        "lightweight_x2": OFFICIAL_CONFIGS["lightweight_x2"], "classical_x4": OFFICIAL_CONFIGS["classical_x4"],
        "realworld_x4": OFFICIAL_CONFIGS["realworld_x4"],
    }  # fmt: skip
    rows = []
    for name, config in configs.items():
        model = random_model(config)
        weights = memory.parameter_count(config) * 4
        for batch, h, w in ((1, 32, 32), (1, 48, 72), (2, 64, 64)):
            x = torch.rand(batch, 3, h, w)
            with torch.inference_mode():
                model(x[:, :, :8, :8])
                measured = memory.measured_peak(lambda: model(x), torch.device("cpu"))
            predicted = swin2sr.estimate_memory(config, h, w, batch) - weights
            rows.append({"config": name, "batch": batch, "h": h, "w": w, "measured": measured,
                         "predicted": predicted, "error_pct": 100 * (predicted / measured - 1)})  # fmt: skip
            print(rows[-1], flush=True)
    return {"device": "cpu", "dtype": "fp32", "rows": rows}


def seams() -> dict:
    from PIL import Image

    model, name = bench_model()
    rows = []
    for path in sorted(SET5.glob("*.png")):
        image = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        rows.append({"image": path.stem, "size": list(image.shape[-2:]), **seam_stats(model, image, 64, 16)})
        print(rows[-1], flush=True)
    return {"model": name, "tile": 64, "overlap": 16, "rows": rows}


# A much cheaper x4 network for the 4000x3000 run when time is short: host memory is set by the output,
# the planner's budget and the strip, not by the model (BIG_MODEL=fast).
FAST_X4 = swin2sr.Swin2SRConfig(embed_dim=12, depths=(2,), num_heads=(2,), upsampler="pixelshuffledirect", scale=4)


def big(tile: int = 256) -> dict:
    """The CLI upscales 4000x3000 to 16000x12000 (PNG in, PNG out); peak RSS of the CLI process."""
    from PIL import Image

    src = Path("/tmp/swin2sr_big_in.png")
    if not src.exists():
        seed = Image.open(ROOT.parent / "shared" / "benchmarks" / "Set14" / "HR" / "baboon.png").convert("RGB")
        seed.resize((4000, 3000), Image.BICUBIC).save(src)
    dst = Path("/tmp/swin2sr_big_out.png")
    fast = os.environ.get("BIG_MODEL") == "fast"
    model = _random_checkpoint(FAST_X4) if fast else "builtin-x4" if BUILTIN.exists() else _random_checkpoint()
    cmd = [sys.executable, "-m", "swin2sr", "upscale", str(src), "-o", str(dst), "--model", model,
           "--tile", str(tile), "--device", "cpu", "--precision", "fp32"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, env={**os.environ, **LIVE_RSS_ENV, "PYTHONPATH": str(ROOT)}, check=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"CLI peak RSS {peak / 1e9:.2f} GB, {seconds:.0f} s", flush=True)
    Image.MAX_IMAGE_PIXELS = None  # 192 MP: above PIL's decompression-bomb guard, and ours
    output_bytes = 16000 * 12000 * 3
    name = "random tiny x4 (embed 12, pixelshuffledirect; BIG_MODEL=fast)" if fast else bench_model()[1]
    row = {"model": name, "tile": tile, "seconds": seconds, "peak_rss": peak,
           "uint8_output_bytes": output_bytes, "target_bytes": 2 * output_bytes + 10**9,
           "output_size": Image.open(dst).size}  # fmt: skip
    print(row, flush=True)
    return row


def _random_checkpoint(config=BUILTIN_SHAPE) -> str:
    from safetensors.torch import save_file

    path = Path(f"/tmp/swin2sr_random_{config.embed_dim}_{config.upsampler}.safetensors")
    state = {k: v for k, v in random_official_state_dict(config, 0).items() if not k.endswith(DERIVED)}
    save_file(state, str(path))
    return str(path)


def vram_table() -> dict:
    """Largest square input one untiled pass handles per VRAM class, from the forecaster (CUDA budget share)."""
    configs = {"builtin-x4": BUILTIN_SHAPE, "ClassicalSR x4": OFFICIAL_CONFIGS["classical_x4"],
               "RealworldSR x4": OFFICIAL_CONFIGS["realworld_x4"], "Lightweight x2": OFFICIAL_CONFIGS["lightweight_x2"]}  # fmt: skip
    classes = (8, 12, 16, 24, 48, 80)
    lines = ["| model | precision | " + " | ".join(f"{gb} GB" for gb in classes) + " |",
             "|---|---|" + "---|" * len(classes)]  # fmt: skip
    for name, config in configs.items():
        for dtype in (torch.bfloat16, torch.float32):
            sides = [safe_side(config, gb * 10**9 * memory.CUDA_SAFETY, dtype) for gb in classes]
            label = "bf16/fp16" if dtype == torch.bfloat16 else "fp32"
            lines.append(f"| {name} | {label} | " + " | ".join(f"{s}²" for s in sides) + " |")
    print("\n".join(lines))
    return {"markdown": lines}


def safe_side(config, budget: float, dtype: torch.dtype) -> int:
    side = config.window_size
    while swin2sr.estimate_memory(config, side + 8, side + 8, 1, dtype, "cuda") <= budget:
        side += 8
    return side


def plot(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    mpx = [r["input"] ** 2 / 1e6 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(mpx, [r["seconds"] for r in rows], "o-")
    left.set(xlabel="input megapixels", ylabel="seconds", title=f"time (tile {result['tile']}, CPU)")
    right.plot(mpx, [r["working_bytes"] / 1e6 for r in rows], "o-", label="peak RSS - output - baseline")
    right.plot(mpx, [r["output_bytes"] / 1e6 for r in rows], "s--", label="uint8 output buffer")
    right.set(xlabel="input megapixels", ylabel="MB", title="host memory")
    right.legend()
    fig.suptitle(result["model"], fontsize=9)
    fig.tight_layout()
    PLOT.parent.mkdir(exist_ok=True)
    fig.savefig(PLOT, dpi=100)


def save(section: str, result) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = result
    RESULTS.write_text(json.dumps(data, indent=1, default=str))


SECTIONS = {"overhead": overhead, "scaling": scaling, "calibrate": calibrate, "seams": seams, "vram": vram_table,
            "big": big}


def main() -> None:
    if sys.argv[1:2] == ["_one"]:
        torch.set_num_threads(int(sys.argv[4]))
        _one(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=[*SECTIONS, "all", "plot"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="scaling: input sides (default 256..4096)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in SECTIONS if args.section == "all" else [args.section]:
        if name == "plot":
            plot(json.loads(RESULTS.read_text())["scaling"])
            continue
        result = SECTIONS[name](args.sizes) if name == "scaling" and args.sizes else SECTIONS[name]()
        save(name, result)
        if name == "scaling":
            plot(result)


if __name__ == "__main__":
    main()
