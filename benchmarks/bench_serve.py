"""Load benchmark of `swin2sr serve`: bounded load against 127.0.0.1 only, nothing lost, no 5xx.

`--requests` uploads (default 200) from `--clients` threads (default 16), mixed small sizes, one in ten a bad
upload (empty, not an image, truncated, a 30000x30000 header bomb).  Good uploads use ?wait=true; a 429
(queue full) is retried after its Retry-After, at most `MAX_TRIES` times.  The server is started with a
queue smaller than the client count (`--queue`, default 8), so the full-queue path is part of the run.

Reported: throughput (good results per second), p50/p95 latency of good uploads (first try to result, retries
included), the server's peak RSS (its own ru_maxrss, read by a small launcher process when the server exits,
and the largest RSS of its whole process tree seen by polling: with --ray that includes Ray and the replicas),
counts of first answers by status, and the two numbers that must be 0: lost (no answer, a connection error,
or a wrong result) and 5xx.

    python benchmarks/bench_serve.py --requests 200 --clients 16 --threads 2
    python benchmarks/bench_serve.py --requests 200 --clients 16 --ray 2     # local Ray Serve, 2 replicas
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZES = (16, 24, 32, 48)  # input sides (x4 outputs of 64..192 px)
MAX_TRIES = 30
REQUEST_TIMEOUT = 300
# Runs the server as its child and, once it has exited, writes the child's peak RSS (ru_maxrss, KiB on Linux).
LAUNCHER = """
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
json.dump({"exit": code, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, open(sys.argv[1], "w"))
"""


def photo(side: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (max(2, side // 4),) * 2 + (3,), dtype=np.uint8))
    buffer = io.BytesIO()
    coarse.resize((side, side), Image.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def bad_uploads() -> list[tuple[str, bytes]]:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    bomb = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + struct.pack(">I", 0) + b"IEND"
            + struct.pack(">I", zlib.crc32(b"IEND")))  # fmt: skip
    return [("empty", b""), ("not-an-image", b"GIF89a? no, just text"), ("truncated", photo(32, 1)[:100]),
            ("header-bomb", bomb)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """swin2sr serve on 127.0.0.1 behind the launcher; RSS polled while it runs."""

    def __init__(self, args, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.report = data_dir / "launcher.json"
        command = [sys.executable, "-c", LAUNCHER, str(self.report), sys.executable, "-m", "swin2sr", "-q", "serve",
                   "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--queue", str(args.queue),
                   "--data-dir", str(data_dir), *(["--ray", "--ray-replicas", str(args.ray)] if args.ray else [])]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        self.launcher = subprocess.Popen(command, cwd=ROOT, env=env)
        self.polled_peak = 0
        self._stop = threading.Event()
        self._wait_ready()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except requests.RequestException:  # not listening yet, or (Ray Serve) its proxy not yet routing
                time.sleep(0.2)
        raise SystemExit("the server did not start within 180 s")

    def _server_process(self) -> psutil.Process:
        return psutil.Process(self.launcher.pid).children()[0]

    def _poll(self) -> None:
        """The largest RSS of the server with all its descendants (Ray's raylet and replicas with --ray)."""
        process = self._server_process()
        while not self._stop.wait(0.1):
            try:
                tree = [process, *process.children(recursive=True)]
                self.polled_peak = max(self.polled_peak, sum(_rss(p) for p in tree))
            except psutil.NoSuchProcess:
                return

    def stop(self) -> dict:
        self._stop.set()
        self._server_process().send_signal(signal.SIGTERM)
        self.launcher.wait(120)
        return json.loads(self.report.read_text())


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def good_request(url: str, data: bytes, side: int) -> tuple[int, float, str]:
    """(first status, seconds to the result, outcome): outcome "ok", or why the request counts as lost."""
    started = time.perf_counter()
    first = None
    for _ in range(MAX_TRIES):
        try:
            response = requests.post(url + "/v1/upscale?wait=true", files={"image": ("p.png", data)},
                                     timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            return first or 0, 0.0, f"connection: {type(exc).__name__}"
        first = first or response.status_code
        if response.status_code == 429:
            time.sleep(min(float(response.headers.get("Retry-After", 1)), 10))
            continue
        if response.status_code != 200:
            return first, 0.0, f"status {response.status_code}: {response.text[:100]}"
        size = Image.open(io.BytesIO(response.content)).size
        outcome = "ok" if size == (4 * side, 4 * side) else f"wrong size {size}"
        return first, time.perf_counter() - started, outcome
    return first, 0.0, f"still 429 after {MAX_TRIES} tries"


def bad_request(url: str, data: bytes) -> tuple[int, float, str]:
    try:
        response = requests.post(url + "/v1/upscale", files={"image": ("p.png", data)}, timeout=REQUEST_TIMEOUT)
    except requests.RequestException as exc:
        return 0, 0.0, f"connection: {type(exc).__name__}"
    one_line = response.headers.get("content-type") == "application/json" and "\n" not in response.json()["error"]
    return response.status_code, 0.0, "ok" if 400 <= response.status_code < 500 and one_line else "bad answer"


def plan(count: int) -> list[tuple]:
    bad = bad_uploads()
    work = []
    for i in range(count):
        if i % 10 == 9:
            work.append(("bad", *bad[(i // 10) % len(bad)]))
        else:
            side = SIZES[i % len(SIZES)]
            work.append(("good", side, photo(side, i)))
    return work


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        server = Server(args, Path(folder))
        work = plan(args.requests)

        def one(item):
            return good_request(server.url, item[2], item[1]) if item[0] == "good" else bad_request(server.url, item[2])

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one, work))
        wall = time.perf_counter() - started
        launcher = server.stop()
        leftovers = [p.name for p in Path(folder).iterdir() if p.name != "launcher.json"]
    good = [r for item, r in zip(work, results) if item[0] == "good"]
    latencies = sorted(r[1] for r in good if r[2] == "ok")
    firsts = Counter(r[0] for r in results)
    return {
        "server": f"ray serve, {args.ray} replicas x 1 thread" if args.ray else f"1 worker x {args.threads} threads",
        "requests": len(work), "clients": args.clients, "queue": args.queue, "threads": args.threads,
        "wall_s": round(wall, 1), "results_per_s": round(len(latencies) / wall, 2),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "peak_rss_mb_ru_maxrss": round(launcher["maxrss_kib"] / 1024),  # the server process (the Ray driver)
        "peak_rss_mb_polled_tree": round(server.polled_peak / 2**20),
        "first_status": dict(sorted(firsts.items())), "lost": sum(r[2] != "ok" for r in results),
        "lost_reasons": sorted({r[2] for r in results if r[2] != "ok"}),
        "5xx": sum(1 for r in results if r[0] >= 500), "server_exit": launcher["exit"], "leftover_files": leftovers,
        "cpu": _cpu_model(), "python": platform.python_version(),
    }  # fmt: skip


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    parser.add_argument("--ray", type=int, default=0, metavar="REPLICAS",
                        help="serve on a local Ray Serve with this many upscaling replicas (1 CPU each)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if figures["lost"] or figures["5xx"]:
        raise SystemExit(f"FAILED: {figures['lost']} lost, {figures['5xx']} 5xx")


if __name__ == "__main__":
    main()
