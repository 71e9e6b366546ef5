"""CPU speed of every model in docs/models.md's "Which model?" table.

The official weights cannot be downloaded here, so the five releases run with seeded random weights of their
released shapes (tests/checkpoints.py); speed depends on the shapes only.  The embedded models run with their
own weights.  Each model does one untiled forward on a 128x128 input (seeded noise) after one warm-up, `--rounds`
times; the median is reported with the input megapixels per second.

    PYTHONPATH=.:tests python benchmarks/bench_models.py --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from checkpoints import OFFICIAL_CONFIGS, model_from_official, random_official_state_dict
from swin2sr import catalog, load_model

RESULTS = Path(__file__).resolve().parent / "results" / "models.json"
OFFICIAL = {"classical-x2": "classical_x2", "classical-x4": "classical_x4", "compressed-x4": "compressed_x4_48",
            "realworld-x4": "realworld_x4", "lightweight-x2": "lightweight_x2"}  # fmt: skip


def build(name: str) -> torch.nn.Module:
    if name in OFFICIAL:
        config = OFFICIAL_CONFIGS[OFFICIAL[name]]
        return model_from_official(config, random_official_state_dict(config)).requires_grad_(False)
    return load_model(name)


def time_forward(model: torch.nn.Module, size: int, rounds: int) -> float:
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        model(x)  # warm-up
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for name in ["builtin-x4", "builtin-x2", *catalog.names()]:
        seconds = time_forward(build(name), args.size, args.rounds)
        rows[name] = {"seconds": round(seconds, 3), "input_mpx_per_s": round(args.size**2 / seconds / 1e6, 4)}
        print(f"{name:<15} {seconds:7.2f} s for {args.size}x{args.size}", flush=True)
    RESULTS.write_text(json.dumps({
        "input": f"{args.size}x{args.size}", "threads": args.threads, "rounds": args.rounds,
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "load_average_after": [round(x, 1) for x in os.getloadavg()], "models": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
