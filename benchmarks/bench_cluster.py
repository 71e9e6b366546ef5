"""Cluster benchmark: the same folder through the plain CLI and through `--ray` with 1 and 2 workers.

Every case is one `swin2sr upscale DIR -o OUT` command in a fresh process, timed from the outside, so
the Ray cases pay what a user pays: starting a local Ray (it detects this machine's CPUs), starting the
workers, loading the model in each, shipping inputs and outputs.  The cases are interleaved round by
round, so background load on a shared machine hits them alike.

- plain 1 thread / ray 1x1: the local runner and one Ray worker, one torch thread each: the overhead of the
  Ray path (target <= 10%).  One thread, because two-thread torch runs swing wildly on a shared machine
  (a thread waiting for a busy core stalls both), which would drown a 10% difference.
- ray 2x1: two workers with one CPU each against ray 1x1: the scaling from 1 to 2 actors.
- ray 1x2 (with --two-thread-worker): one worker with both CPUs, the other way to use the machine.

It also reports what the scaling model of docs/cluster.md needs: seconds per image on one worker, bytes shipped per
image each way, whether the outputs are byte-identical across the three paths (fp32 on CPU), and how many
frames per second the one video encoder on the driver (libx264, CRF 18, the default) takes at two output sizes.

    python benchmarks/bench_cluster.py --images 32 --size 256 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: (extra CLI flags, environment)
    "plain 1 thread": ([], {"OMP_NUM_THREADS": "1"}),
    "ray 1x1": (["--ray", "--ray-actors", "1", "--ray-threads", "1"], {}),
    "ray 2x1": (["--ray", "--ray-actors", "2", "--ray-threads", "1"], {}),
}
TWO_THREAD_WORKER = {"ray 1x2": (["--ray", "--ray-actors", "1", "--ray-threads", "2"], {})}
OVERHEAD_TARGET = 0.10


def make_photos(folder: Path, count: int, size: int) -> None:
    """Seeded smooth-noise photos (compressible like real ones, unlike white noise), saved as PNG."""
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
        detail = rng.integers(-12, 13, (size, size, 3))
        pixels = np.clip(np.asarray(image, dtype=np.int64) + detail, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{i:03d}.png")


def run_case(name: str, photos: Path, out: Path, model: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "swin2sr", "-q", "upscale", str(photos), "-o", str(out), "--model", model,
               "--device", "cpu", "--precision", "fp32", *CASES[name][0]]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), **CASES[name][1])
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def encoder_fps(width: int, height: int, frames: int = 8) -> float:
    """Frames per second of the driver's video encoder (swin2sr.io.video's default: libx264, CRF 18) at this size."""
    import av

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (frames, height // 16, width // 16, 3), dtype=np.uint8)
    pictures = [np.asarray(Image.fromarray(c).resize((width, height), Image.BICUBIC)) for c in coarse]
    with tempfile.TemporaryDirectory() as tmp, av.open(str(Path(tmp, "x.mp4")), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        started = time.perf_counter()
        for picture in pictures:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode(None))
        return frames / (time.perf_counter() - started)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model", default="builtin-x4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--two-thread-worker", action="store_true", help="also time 1 worker x 2 threads")
    args = parser.parse_args()
    if args.two_thread_worker:
        CASES.update(TWO_THREAD_WORKER)

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        photos = Path(tmp, "photos")
        photos.mkdir()
        make_photos(photos, args.images, args.size)
        times: dict[str, list[float]] = {name: [] for name in CASES}
        outputs: dict[str, dict[str, bytes]] = {}
        for round_ in range(args.rounds):
            for name in CASES:
                out = Path(tmp, name.replace(" ", "_"))
                times[name].append(run_case(name, photos, out, args.model))
                outputs[name] = folder_bytes(out)
                print(f"round {round_ + 1}: {name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
        report(args, times, outputs, folder_bytes(photos))


def report(args, times: dict[str, list[float]], outputs: dict[str, dict[str, bytes]], inputs: dict[str, bytes]) -> None:
    median = {name: statistics.median(t) for name, t in times.items()}
    plain = median["plain 1 thread"]
    print(f"\n{args.images} images of {args.size}x{args.size}, model {args.model}, fp32 on CPU, {os.cpu_count()} CPUs, "
          f"{args.rounds} round(s), median wall time of the whole command\n")  # fmt: skip
    print("| path | wall s | images/s | time vs plain 1 thread |")
    print("|---|---:|---:|---:|")
    for name in CASES:
        rate = args.images / median[name]
        print(f"| {name} | {median[name]:.1f} | {rate:.3f} | {median[name] / plain - 1:+.1%} |")
    in_bytes = statistics.mean(len(b) for b in inputs.values())
    out_bytes = statistics.mean(len(b) for b in outputs["plain 1 thread"].values())
    identical = all(outputs[name] == outputs["plain 1 thread"] for name in CASES)
    print(f"\nper image: {plain / args.images:.2f} s on one thread; shipped {in_bytes / 1e3:.0f} kB in (PNG), "
          f"{out_bytes / 1e3:.0f} kB back (PNG); outputs byte-identical across paths: {identical}")  # fmt: skip
    for width, height in ((args.size * 4, args.size * 4), (3840, 2160)):
        raw = width * height * 3
        print(f"driver encoder at {width}x{height}: {encoder_fps(width, height):.1f} frames/s "
              f"(a raw RGB frame back from a worker: {raw / 1e6:.1f} MB)")  # fmt: skip
    overhead = median["ray 1x1"] / plain - 1
    verdict = "meets" if overhead <= OVERHEAD_TARGET else "misses"
    print(f"summary: Ray path overhead {overhead:+.1%} vs the plain CLI ({verdict} the <= {OVERHEAD_TARGET:.0%} target); "
          f"2 actors: {median['ray 1x1'] / median['ray 2x1']:.2f}x the throughput of 1 actor (1 thread each)")  # fmt: skip


if __name__ == "__main__":
    main()
