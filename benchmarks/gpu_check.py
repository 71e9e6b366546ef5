"""Forecaster check on a GPU: predicted vs torch.cuda.max_memory_allocated (target: within +-15%).

    PYTHONPATH=. python benchmarks/gpu_check.py [--quick]

For several configurations, precisions and tile sizes it loads a seeded random
model on CUDA, runs one forward of a batch of tiles and compares
swin2sr.estimate_memory (weights + activations) with the measured peak
(weights + the forward's peak above them).  Then one swin2sr.upscale with the
automatic plan shows the logged decision and its actual peak.  Results:
benchmarks/results/gpu_check.json.  Random weights are fine here: memory does not
depend on weight values.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import swin2sr  # noqa: E402
from swin2sr import memory  # noqa: E402
from tests.checkpoints import OFFICIAL_CONFIGS, random_official_state_dict  # noqa: E402
from tests.tiling_models import DERIVED  # noqa: E402

BUILTIN_SHAPE = swin2sr.Swin2SRConfig(
    embed_dim=48, depths=(4, 4), num_heads=(4, 4), img_size=48, upsampler="pixelshuffledirect", scale=4
)
CONFIGS = {
    "classical_x4": OFFICIAL_CONFIGS["classical_x4"],
    "lightweight_x2": OFFICIAL_CONFIGS["lightweight_x2"],
    "realworld_x4": OFFICIAL_CONFIGS["realworld_x4"],
    "builtin_shape_x4": BUILTIN_SHAPE,
}
CASES = [(1, 128), (1, 256), (2, 256), (1, 512)]  # (tiles per batch, tile side)
OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"


def model_on(config, device, dtype) -> torch.nn.Module:
    model = swin2sr.Swin2SR(config).eval().requires_grad_(False)
    state = {k: v for k, v in random_official_state_dict(config, 0).items() if not k.endswith(DERIVED)}
    model.load_state_dict(state)
    return model.to(device, dtype)


def check(quick: bool) -> dict:
    device = torch.device("cuda")
    dtypes = [torch.float32, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16]
    rows = []
    for name, config in list(CONFIGS.items())[: 2 if quick else None]:
        for dtype in dtypes:
            torch.cuda.empty_cache()
            model = model_on(config, device, dtype)
            weights = torch.cuda.memory_allocated(device)
            for batch, side in CASES[: 3 if quick else None]:
                x = torch.rand(batch, 3, side, side, device=device, dtype=dtype)
                with torch.inference_mode():
                    model(x[:, :, :16, :16])
                    start = time.perf_counter()
                    peak = memory.measured_peak(lambda: model(x), device)
                seconds = time.perf_counter() - start
                measured = weights + peak + x.numel() * x.element_size()
                predicted = swin2sr.estimate_memory(config, side, side, batch, dtype, device)
                row = {"config": name, "dtype": str(dtype).split(".")[-1], "batch": batch, "tile": side,
                       "measured": measured, "predicted": predicted, "seconds": seconds,
                       "error_pct": 100 * (predicted / measured - 1)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
                del x
            del model
    return {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "rows": rows,
            "within_15pct": all(abs(r["error_pct"]) <= 15 for r in rows), "auto_plan": auto_plan(device)}  # fmt: skip


def auto_plan(device) -> str:
    """One automatic upscale of a 2048x2048 input with classical x4: the logged decision and the actual peak."""
    model = model_on(OFFICIAL_CONFIGS["classical_x4"], device, torch.float32)
    image = torch.rand(1, 3, 2048, 2048)
    _, report = swin2sr.upscale(model, image, max_input_size=0, return_report=True)
    print(report, flush=True)
    return str(report)


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("gpu_check needs CUDA")
    result = check("--quick" in sys.argv)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print("within +-15%:", result["within_15pct"])


if __name__ == "__main__":
    main()
