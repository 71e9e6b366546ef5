"""Peak memory of `swin2sr upscale` as the output grows: streamed to disk vs the old in-memory path.

    PYTHONPATH=. python benchmarks/bench_streaming.py [--quick] [--skip-big] [--skip-sweep] [--with-old-big]
    PYTHONPATH=. python benchmarks/bench_streaming.py --writers    # PNG/TIFF encoders compared
    PYTHONPATH=. python benchmarks/bench_streaming.py --cli [WxH ...]    # the CLI's peak (benchmarks/README.md)

Every run is started by a tiny launcher (`python -S`, a few MB, `os.posix_spawn`), whose os.wait4 gives the
run's ru_maxrss: Linux carries ru_maxrss across exec, so a child started straight from this torch-sized
process would report at least this process's RSS.  The RSS is also polled (psutil, every 20 ms).
--cli: `swin2sr upscale --tile 128 --model builtin-x4 --device cpu` for 4000x3000, 8000x6000 and 16000x12000
outputs, as a user starts it (no allocator variables); target: at most 1.0 GB, the largest within +15%.
- Size sweep: outputs 4k², 8k², 16k² and 16000x12000 (x4 from 1000², 2000², 4000², 4000x3000), PNG in,
  PNG out, --tile 256, with a stand-in model so the sweep takes minutes: bilinear x4 (`BilinearX4`,
  no weights to speak of; the CLI's loader is patched to return it).  Each size runs twice: the CLI
  (streamed, `swin2sr.upscale_file`) and the old path (`swin2sr.upscale` then `write_image`, what the
  CLI did before).  Memory is flat when the largest streamed run is within +15% of the smallest.
- The builtin-x4 run: 4000x3000 -> 16000x12000 through the CLI (target: peak RSS <= 1.0 GB); the old
  path's figures are bench_tiling.py's big run (2.336 GB, 453 s, machine idle; benchmarks/README.md) unless --with-old-big reruns it.
--quick: outputs 2k², 4k², 8k² and a 1000x750 -> 4000x3000 builtin-x4 run (a few minutes).
Like bench_tiling, the sweep's children run with MALLOC_MMAP_THRESHOLD_=65536 so RSS follows live memory
(the CLI sets the same kind of threshold itself: swin2sr.system.release_freed_memory_promptly).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "streaming.json"
LIVE_RSS_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
SWEEP = [(1000, 1000), (2000, 2000), (4000, 4000), (4000, 3000)]  # input (w, h); x4 outputs
QUICK_SWEEP = [(500, 500), (1000, 1000), (2000, 2000)]
BIG, QUICK_BIG = (4000, 3000), (1000, 750)
OLD_BIG = {"peak_rss": 2.336e9, "seconds": 453.0, "note": "bench_tiling.py big run, old path, machine idle"}
FLAT_LIMIT = 1.15
TARGET_BYTES = 1.0e9


def make_input(width: int, height: int) -> Path:
    """A photo-like test image (smooth shapes plus fine texture), made once and cached in /tmp."""
    import numpy as np
    from PIL import Image

    path = Path(f"/tmp/swin2sr_stream_in_{width}x{height}.png")
    if not path.exists():
        rng = np.random.default_rng(0)
        coarse = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
        coarse = coarse.resize((width, height), Image.BICUBIC)
        fine = rng.integers(-12, 13, (height, width, 3))
        pixels = np.clip(np.asarray(coarse, dtype=np.int16) + fine, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, compress_level=1)
    return path


def run_child(args: list[str]) -> dict:
    """`python ARGS` through the tiny launcher (`launched`), children RSS following live memory; fails loudly."""
    with tempfile.TemporaryFile("w+") as log:
        try:
            return launched(args, log, LIVE_RSS_ENV)
        except RuntimeError:
            log.seek(0)
            raise RuntimeError(f"{' '.join(args)} failed:\n{log.read()[-2000:]}") from None


# The CLI measured as a user runs it: started by a process of a few MB (Linux carries ru_maxrss across exec, so
# a child of this torch-sized benchmark would report at least this process's RSS), with no allocator variables.
LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, *sys.argv[1:]], os.environ,
                     file_actions=[(os.POSIX_SPAWN_DUP2, 2, 1)])
print(pid, flush=True)
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), flush=True)
"""
CLI_SIZES = [(1000, 750), (2000, 1500), (4000, 3000)]  # inputs of the 4000x3000, 8000x6000, 16000x12000 outputs
POLL_SECONDS = 0.02
REPORT_SECONDS = 60


def launched(args: list[str], log, extra_env: dict | None = None) -> dict:
    """Run `python ARGS` through the tiny launcher: ru_maxrss as the launcher's wait4 sees it, and polled RSS."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in LIVE_RSS_ENV:
        env.pop(variable, None)
    env.update(extra_env or {})
    started = time.perf_counter()
    launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, *args], env=env, stdout=subprocess.PIPE,
                                stderr=log, text=True)  # fmt: skip
    cli = psutil.Process(int(launcher.stdout.readline()))
    polled, shown = 0, started
    while launcher.poll() is None:
        try:
            polled = max(polled, cli.memory_info().rss)
        except psutil.Error:  # it has just ended
            pass
        if time.perf_counter() - shown > REPORT_SECONDS:  # a long run can be judged before it ends
            shown = time.perf_counter()
            print(f"    {shown - started:.0f} s: polled peak so far {polled / 1e9:.3f} GB", flush=True)
        time.sleep(POLL_SECONDS)
    maxrss, code = map(int, launcher.stdout.read().split())
    if code:
        raise RuntimeError(f"{' '.join(args)} failed ({code}); see its log")
    return {"seconds": time.perf_counter() - started, "peak_rss": maxrss, "polled_rss": polled}


def cli_sizes(sizes) -> list[dict]:
    """`swin2sr upscale --tile 128` with builtin-x4 on the CPU (the issue's run), per size, one run at a time.

    An explicit tile also means full resolution (no MAX_INPUT_SIZE pre-scale), as the CLI documents.
    """
    rows = []
    for w, h in sizes:
        src, dst = make_input(w, h), Path(f"/tmp/swin2sr_stream_cli_{w}x{h}.png")
        with open(f"/tmp/swin2sr_stream_cli_{w}x{h}.log", "w") as log:
            result = launched(["-m", "swin2sr", "upscale", str(src), "-o", str(dst), "--model", "builtin-x4",
                               "--device", "cpu", "--tile", "128"], log)  # fmt: skip
        dst.unlink()
        with open(f"/tmp/swin2sr_stream_cli_{w}x{h}.log") as log:
            result["cli_line"] = [line for line in log.read().replace("\r", "\n").splitlines() if "peak RSS" in line]
        assert any(f"({4 * w}x{4 * h}," in line for line in result["cli_line"]), result["cli_line"]  # full size
        rows.append({"input": (w, h), "output": (4 * w, 4 * h), **result})
        print(f"  {4 * w}x{4 * h}: launcher ru_maxrss {result['peak_rss'] / 1e9:.3f} GB, polled "
              f"{result['polled_rss'] / 1e9:.3f} GB, {result['seconds']:.0f} s; {result['cli_line']}", flush=True)
    return rows


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def cli_table(rows: list[dict]) -> str:
    import torch

    lines = [f"CPU: {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
             f"{torch.get_num_threads()} threads",
             "| output | peak RSS via launcher (ru_maxrss) | peak RSS polled | CLI's own line | time |",
             "|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        (w, h), line = row["output"], row["cli_line"][-1].split("peak RSS ")[-1] if row["cli_line"] else "-"
        lines.append(f"| {w}x{h} | {row['peak_rss'] / 1e9:.3f} GB | {row['polled_rss'] / 1e9:.3f} GB | {line} | "
                     f"{row['seconds']:.0f} s |")  # fmt: skip
    first, last = rows[0]["peak_rss"], rows[-1]["peak_rss"]
    verdict = "meets" if max(r["peak_rss"] for r in rows) <= TARGET_BYTES and last <= FLAT_LIMIT * first else "MISSES"
    lines.append(f"\n{verdict} the target (<= 1.0 GB, largest within +15% of smallest): "
                 f"{(last / first - 1) * 100:+.1f}% from smallest to largest")  # fmt: skip
    return "\n".join(lines)


def cli_args(src: Path, dst: Path, model: str) -> list[str]:
    return ["upscale", str(src), "-o", str(dst), "--model", model, "--tile", "256", "--device", "cpu",
            "--precision", "fp32"]  # fmt: skip


def sweep(sizes, paths=("streamed", "in-memory"), jobs: int = 1) -> list[dict]:
    """Every size through every path; `jobs` runs at once (each child's RSS is its own, times then overlap)."""
    runs = [((w, h), path) for w, h in sizes for path in paths]
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda run: _sweep_run(*run), runs))
    rows = {size: {"input": size, "output": (4 * size[0], 4 * size[1])} for size in sizes}
    for (size, path), result in zip(runs, results):
        rows[size][path] = result
    return list(rows.values())


def _sweep_run(size, path: str) -> dict:
    w, h = size
    src, dst = make_input(w, h), Path(f"/tmp/swin2sr_stream_out_{w}x{h}_{path}.png")
    result = run_child([__file__, "_child", path, str(src), str(dst)])
    result["file_bytes"] = dst.stat().st_size
    dst.unlink()
    print(f"  {4 * w}x{4 * h} {path}: {result['peak_rss'] / 1e9:.3f} GB, {result['seconds']:.0f} s", flush=True)
    return result


def big(size, with_old: bool) -> dict:
    w, h = size
    src, dst = make_input(w, h), Path(f"/tmp/swin2sr_stream_big_{w}x{h}.png")
    result = {"input": size, "output": (4 * w, 4 * h), "model": "builtin-x4"}
    result["streamed"] = run_child(["-m", "swin2sr", *cli_args(src, dst, "builtin-x4")])
    result["streamed"]["file_bytes"] = dst.stat().st_size
    print(f"  builtin-x4 {4 * w}x{4 * h} streamed: {result['streamed']}", flush=True)
    dst.unlink(missing_ok=True)
    if with_old:
        result["in-memory"] = run_child([__file__, "_child", "in-memory", str(src), str(dst),
                                         "builtin-x4"])  # fmt: skip
        dst.unlink(missing_ok=True)
    elif size == BIG:
        result["in-memory"] = OLD_BIG
    return result


def child(path: str, src: str, dst: str, model_name: str | None = None) -> None:
    """One run in this process: the CLI (streamed) or the old in-memory path, with the stand-in unless named."""
    import swin2sr
    from swin2sr import cli
    from swin2sr.io import read_image, write_image

    model = swin2sr.load_model(model_name) if model_name else BilinearX4()
    if path == "streamed":
        swin2sr.load_any_model = lambda *args, **kwargs: model
        sys.exit(cli.main(cli_args(Path(src), Path(dst), "stand-in")))
    image, info = read_image(Path(src))
    result = swin2sr.upscale(model, image, tile=256, max_input_size=0, device="cpu", precision="fp32")
    del image
    write_image(result, Path(dst), info)


class BilinearX4(torch.nn.Module):
    """Stand-in for the size sweep: bilinear x4, no weights worth the name (the planner's generic estimate)."""

    scale, tile_multiple, config, variant = 4, 8, None, "bilinear x4 (benchmark stand-in)"

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def writers() -> str:
    """PNG/TIFF encoders on one photo-like 2000x1920 RGB image: time and size (the encoder table of benchmarks/README.md).

    pypng and pyvips are measured when installed (they are not dependencies).
    """
    import io

    import numpy as np
    from PIL import Image

    from swin2sr.io.streaming import RasterSpec, write_rows

    image = np.asarray(Image.open(make_input(500, 480)).resize((2000, 1920), Image.BICUBIC))
    spec, raw = RasterSpec(2000, 1920, 3, np.uint8), image.nbytes
    bands = lambda: (image[y : y + 256] for y in range(0, 1920, 256))  # noqa: E731

    def ours(suffix: str, **options):
        path = Path(f"/tmp/swin2sr_writer{suffix}")
        write_rows(path, spec, bands(), **options)
        return path.read_bytes()

    def pillow():
        out = io.BytesIO()
        Image.fromarray(image).save(out, "PNG", compress_level=6)
        return out.getvalue()

    candidates = {"Pillow PNG, level 6 (adaptive filters; whole image only)": pillow,
                  "ours: PNG, zlib level 6 + Paeth (streams)": lambda: ours(".png"),
                  "ours via tifffile: TIFF deflate + predictor, tiles 256 (streams)": lambda: ours(".tif"),
                  "ours via tifffile: TIFF deflate + predictor, strips of 64 rows (streams)":
                      lambda: ours(".tif", tiff_tile=None)}  # fmt: skip
    try:
        import png

        def pypng():
            out = io.BytesIO()
            png.Writer(2000, 1920, greyscale=False, compression=6).write_packed(out, (r.tobytes() for r in image))
            return out.getvalue()

        candidates["pypng, level 6 (streams; rows unfiltered)"] = pypng
    except ImportError:
        pass
    try:
        import pyvips

        def vips(**options):
            pixels = pyvips.Image.new_from_memory(image.tobytes(), 2000, 1920, 3, "uchar")
            return pixels.write_to_buffer(".png", compression=6, **options)

        candidates["pyvips PNG, level 6 (default filter; pulls rows)"] = vips
        candidates["pyvips PNG, level 6, filter=all (pulls rows)"] = lambda: vips(filter="all")
    except (ImportError, OSError):
        pass
    lines = ["| encoder | time | size / raw |", "|---|---|---|"]
    for name, encode in candidates.items():
        started = time.perf_counter()
        size = len(encode())
        lines.append(f"| {name} | {time.perf_counter() - started:.2f} s | {size / raw:.3f} |")
    return "\n".join(lines)


def table(rows: list[dict], big_run: dict | None) -> str:
    lines = ["| output | model | streamed: peak RSS | time | file | in-memory (old path): peak RSS | time |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows + ([big_run] if big_run else []):
        s, m = row["streamed"], row.get("in-memory")
        ow, oh = row["output"]
        old = f"{m['peak_rss'] / 1e9:.3f} GB | {m['seconds']:.0f} s" if m else "not run | "
        if m and m.get("note"):
            old += f" ({m['note']})"
        lines.append(f"| {ow}x{oh} | {row.get('model', 'bilinear x4 stand-in')} | {s['peak_rss'] / 1e9:.3f} GB | "
                     f"{s['seconds']:.0f} s | {s['file_bytes'] / 1e6:.0f} MB | {old} |")  # fmt: skip
    return "\n".join(lines)


def summary(rows: list[dict], big_run: dict | None) -> str:
    first, last = rows[0]["streamed"]["peak_rss"], rows[-1]["streamed"]["peak_rss"]
    growth = last / first
    parts = [f"streamed peak RSS {first / 1e9:.3f} GB at {rows[0]['output'][0]}x{rows[0]['output'][1]} -> "
             f"{last / 1e9:.3f} GB at {rows[-1]['output'][0]}x{rows[-1]['output'][1]} "
             f"({(growth - 1) * 100:+.1f}%, {'flat' if growth <= FLAT_LIMIT else 'NOT flat'}: limit +15%)"]  # fmt: skip
    if "in-memory" in rows[0]:
        old_first, old_last = rows[0]["in-memory"]["peak_rss"], rows[-1]["in-memory"]["peak_rss"]
        parts.append(f"old path {old_first / 1e9:.3f} -> {old_last / 1e9:.3f} GB")
    if big_run:
        s, m = big_run["streamed"], big_run.get("in-memory")
        verdict = "meets" if s["peak_rss"] <= TARGET_BYTES else "MISSES"
        (w, h), gb = big_run["output"], s["peak_rss"] / 1e9
        text = f"builtin-x4 {w}x{h}: {gb:.3f} GB ({verdict} <= 1.0 GB), {s['seconds']:.0f} s"
        if m:
            ratio = s["peak_rss"] / m["peak_rss"]
            text += f" vs old {m['peak_rss'] / 1e9:.3f} GB, {m['seconds']:.0f} s (RSS x{ratio:.2f})"
        parts.append(text)
    return "SUMMARY: " + "; ".join(parts)


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a 4000x3000-output builtin run")
    parser.add_argument("--skip-big", action="store_true", help="only the stand-in sweep")
    parser.add_argument("--skip-sweep", action="store_true", help="only the builtin-x4 run")
    parser.add_argument("--with-old-big", action="store_true", help="also rerun the old path with builtin-x4")
    parser.add_argument("--writers", action="store_true", help="only compare the PNG/TIFF encoders")
    parser.add_argument("--cli", nargs="*", metavar="WxH", help="only the CLI through a tiny launcher, builtin-x4 "
                        "--tile 128; inputs WxH (default 1000x750 2000x1500 4000x3000)")  # fmt: skip
    parser.add_argument("--streamed-only", action="store_true", help="sweep: skip the old in-memory path")
    parser.add_argument("--jobs", type=int, default=1, help="sweep runs at once (memory per run is unaffected)")
    args = parser.parse_args()
    if args.writers:
        print(writers())
        return
    if args.cli is not None:
        sizes = [tuple(map(int, size.split("x"))) for size in args.cli] or CLI_SIZES
        rows = cli_sizes(sizes)
        print(cli_table(rows))
        RESULTS.parent.mkdir(exist_ok=True)
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data["cli"] = {**data.get("cli", {}), **{f"{r['output'][0]}x{r['output'][1]}": r for r in rows}}
        RESULTS.write_text(json.dumps(data, indent=1, default=str))
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    paths = ("streamed",) if args.streamed_only else ("streamed", "in-memory")
    rows = [] if args.skip_sweep else sweep(QUICK_SWEEP if args.quick else SWEEP, paths, args.jobs)
    big_run = None if args.skip_big else big(QUICK_BIG if args.quick else BIG, args.with_old_big)
    if rows:
        print(table(rows, big_run))
        print(summary(rows, big_run))
    else:
        print(json.dumps(big_run, indent=1))
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data.update({k: v for k, v in (("sweep", rows), ("big", big_run)) if v})
        RESULTS.write_text(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    main()
