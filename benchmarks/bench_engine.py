"""Swin2SR engine benchmark: this package's network against spandrel's, same weights, same inputs.

Every measurement runs in a fresh process (so peak memory is per case and
one run's allocator state cannot help the next), and the implementations are
interleaved round by round (so background load on a shared machine hits them
alike).  Weights are the seeded random official-format checkpoints of
tests/checkpoints.py; inputs are seeded uniform noise.

Reported per case: median and best time over all timed runs, speed-up against
spandrel fp32 (by median), peak RSS of the process, and max abs differences:
ours fp32 vs spandrel fp32 (tolerance: 4x spandrel's own fp32-vs-fp64
difference), ours bf16 vs ours fp32 (reference: spandrel bf16 vs spandrel
fp32, measurable only at 64x64, the one size where spandrel's bf16 runs).

    PYTHONPATH=. python benchmarks/bench_engine.py --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {  # name: (config, height, width); the target case first
    "classical_x4-128x128": ("classical_x4", 128, 128),
    "classical_x4-64x64": ("classical_x4", 64, 64),
    "classical_x4-96x80": ("classical_x4", 96, 80),
    "lightweight_x2-128x128": ("lightweight_x2", 128, 128),
}
TIMED = ("spandrel-fp32", "ours-fp32", "ours-bf16")  # interleaved, every round
LEVERS = ("ours-fp32-compile", "ours-bf16-compile")  # --levers: opt-in variants, timed in the same rounds
TARGET_CASE = "classical_x4-128x128"
TARGETS = {"fp32": 2.0, "bf16": 3.5}
FP32_ERROR_FACTOR = 4.0


# ---------------------------------------------------------------- worker (one fresh process per measurement)


def build(impl: str, config_name: str):
    import torch

    from tests.checkpoints import OFFICIAL_CONFIGS, model_from_official, random_official_state_dict

    config = OFFICIAL_CONFIGS[config_name]
    state = random_official_state_dict(config, seed=0)
    family, precision = impl.split("-")[:2]
    dtype = {"fp32": torch.float32, "fp64": torch.float64, "bf16": torch.bfloat16}[precision]
    if family == "spandrel":
        import spandrel

        model = spandrel.ModelLoader().load_from_state_dict(state).model  # the module: no output clamping
    else:
        model = model_from_official(config, state)
    return model.eval().to(dtype), dtype


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kib / 1024


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    config_name, height, width = CASES[args.case]
    model, dtype = build(args.impl, config_name)
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(dtype)
    loaded_rss = rss_mib()
    times = []
    with torch.no_grad():
        for i in range(args.repeat + 1):  # the first call warms up (oneDNN kernels, caches, compilation)
            start = time.perf_counter()
            out = model(x)
            times.append(time.perf_counter() - start)
    first, times = times[0], times[1:]
    if args.save:
        torch.save(out.float(), args.save)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "first_s": first, "peak_rss_mib": peak, "loaded_rss_mib": loaded_rss}))


# ---------------------------------------------------------------- driver


def run_worker(case: str, impl: str, opts: argparse.Namespace, repeat: int, save: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--case", case, "--impl", impl, "--threads", str(opts.threads)]
    cmd += ["--repeat", str(repeat), "--attention", opts.attention]
    if save is not None:
        cmd += ["--save", str(save)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(opts.threads),
           "SWIN2SR_ATTENTION": opts.attention, "SWIN2SR_COMPILE": "1" if impl.endswith("-compile") else ""}  # fmt: skip
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def max_diff(a: Path, b: Path) -> float:
    import torch

    return (torch.load(a) - torch.load(b)).abs().max().item()


def measure_case(case: str, opts: argparse.Namespace, tmp: Path) -> dict:
    timed = (*TIMED, *(LEVERS if opts.levers else ()))
    runs: dict[str, list[dict]] = {impl: [] for impl in timed}
    files = {impl: tmp / f"{case}-{impl}.pt" for impl in (*timed, "spandrel-fp64", "spandrel-bf16")}
    for round_ in range(opts.rounds):
        for impl in timed:
            save = files[impl] if round_ == 0 else None
            runs[impl].append(run_worker(case, impl, opts, opts.repeat, save))
    run_worker(case, "spandrel-fp64", opts, 1, files["spandrel-fp64"])
    result = {"case": case}
    for impl, impl_runs in runs.items():
        times = [t for run in impl_runs for t in run["times"]]
        result[impl] = {
            "median_s": statistics.median(times),
            "best_s": min(times),
            "peak_rss_mib": min(run["peak_rss_mib"] for run in impl_runs),
            "loaded_rss_mib": min(run["loaded_rss_mib"] for run in impl_runs),
            "first_call_s": max(run["first_s"] for run in impl_runs),
        }
        if impl in LEVERS:  # the same computation as the base implementation, up to rounding
            result[impl]["diff_vs_base"] = max_diff(files[impl], files[impl.rsplit("-", 1)[0]])
    result["fp32_diff"] = max_diff(files["ours-fp32"], files["spandrel-fp32"])
    result["fp32_tolerance"] = FP32_ERROR_FACTOR * max_diff(files["spandrel-fp32"], files["spandrel-fp64"])
    result["bf16_diff"] = max_diff(files["ours-bf16"], files["ours-fp32"])
    if CASES[case][1:] == (64, 64):  # spandrel's bf16 works only when the padded input is exactly img_size**2
        result["spandrel-bf16"] = run_worker(case, "spandrel-bf16", opts, opts.repeat, files["spandrel-bf16"])
        result["spandrel_bf16_diff"] = max_diff(files["spandrel-bf16"], files["spandrel-fp32"])
    return result


def speedup(result: dict, impl: str) -> float:
    return result["spandrel-fp32"]["median_s"] / result[impl]["median_s"]


def table(results: list[dict]) -> str:
    head = (
        "| case | spandrel fp32 s | ours fp32 s | ours bf16 s | fp32 speed-up | bf16 speed-up "
        "| peak RSS MiB spandrel / ours fp32 / ours bf16 | fp32 diff (tolerance) | bf16 diff |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in results:
        sp, o32, o16 = r["spandrel-fp32"], r["ours-fp32"], r["ours-bf16"]
        bf16_note = f"{r['bf16_diff']:.2e}"
        if "spandrel_bf16_diff" in r:
            bf16_note += f" (spandrel bf16: {r['spandrel_bf16_diff']:.2e})"
        lines.append(
            f"| {r['case']} | {sp['median_s']:.3f} (best {sp['best_s']:.3f}) "
            f"| {o32['median_s']:.3f} (best {o32['best_s']:.3f}) | {o16['median_s']:.3f} (best {o16['best_s']:.3f}) "
            f"| {speedup(r, 'ours-fp32'):.2f}x | {speedup(r, 'ours-bf16'):.2f}x "
            f"| {sp['peak_rss_mib']:.0f} / {o32['peak_rss_mib']:.0f} / {o16['peak_rss_mib']:.0f} "
            f"| {r['fp32_diff']:.2e} ({r['fp32_tolerance']:.2e}) | {bf16_note} |"
        )
    return "\n".join(lines)


def lever_table(results: list[dict]) -> str:
    """Each opt-in variant against its base and spandrel, from the same interleaved rounds."""
    lines = ["| case | variant | median s | speed-up vs spandrel fp32 | vs without the lever | first call s | max diff vs base |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for impl in ("ours-fp32", "ours-bf16", *LEVERS):
            base = impl.rsplit("-", 1)[0] if impl in LEVERS else impl
            row = r[impl]
            lines.append(
                f"| {r['case']} | {impl} | {row['median_s']:.3f} | {speedup(r, impl):.2f}x "
                f"| {r[base]['median_s'] / row['median_s']:.2f}x | {row['first_call_s']:.1f} "
                f"| {row.get('diff_vs_base', 0.0):.2e} |"
            )
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    by_case = {r["case"]: r for r in results}
    checks = []
    target = by_case.get(TARGET_CASE)
    if target is not None:
        fp32, bf16 = speedup(target, "ours-fp32"), speedup(target, "ours-bf16")
        ours_mib, theirs_mib = target["ours-fp32"]["peak_rss_mib"], target["spandrel-fp32"]["peak_rss_mib"]
        checks += [
            (f"fp32 {fp32:.2f}x (target {TARGETS['fp32']}x)", fp32 >= TARGETS["fp32"]),
            (f"bf16 {bf16:.2f}x (target {TARGETS['bf16']}x)", bf16 >= TARGETS["bf16"]),
            (f"peak RSS {ours_mib:.0f} vs spandrel {theirs_mib:.0f} MiB", ours_mib <= theirs_mib),
        ]
    fp32_ok = all(r["fp32_diff"] <= r["fp32_tolerance"] for r in results)
    checks.append(("fp32 diffs within 4x spandrel's fp32 rounding", fp32_ok))
    bf16_refs = [r for r in results if "spandrel_bf16_diff" in r]
    if bf16_refs:
        ref = bf16_refs[0]
        checks.append(
            (
                f"bf16 error {ref['bf16_diff']:.2e} vs spandrel's {ref['spandrel_bf16_diff']:.2e} at 64x64",
                ref["bf16_diff"] <= ref["spandrel_bf16_diff"],
            )
        )
    verdict = "ALL TARGETS MET" if all(ok for _, ok in checks) else "TARGET MISSED"
    return f"SUMMARY {TARGET_CASE}: " + "; ".join(f"{text} {'ok' if ok else 'MISSED'}" for text, ok in checks) + (
        f" -> {verdict}"
    )


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of fresh processes")
    parser.add_argument("--repeat", type=int, default=2, help="timed calls per process, after one warm-up call")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--attention", default="matmul", choices=("matmul", "sdpa"), help="CPU attention kernel")
    parser.add_argument("--levers", action="store_true", help=f"also time the opt-in variants {LEVERS}")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        worker(opts)
        return
    import torch

    print(f"# {machine()}, {opts.threads} threads, torch {torch.__version__}, attention kernel {opts.attention}, "
          f"{opts.rounds} rounds x {opts.repeat} timed calls, MALLOC_* env: "
          f"{ {k: v for k, v in os.environ.items() if k.startswith('MALLOC_')} or 'glibc defaults'}", flush=True)
    results = []
    print(table(results), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for case in opts.cases:  # rows appear as cases finish: a long run interrupted still reports
            results.append(measure_case(case, opts, Path(tmp)))
            print(table(results[-1:]).splitlines()[-1], flush=True)
            if opts.json:
                opts.json.write_text(json.dumps(results, indent=2))
    print(summary(results))
    if opts.levers:
        print(lever_table(results))


if __name__ == "__main__":
    main()
