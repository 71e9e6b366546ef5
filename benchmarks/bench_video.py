"""Peak memory of a video upscale as the video gets longer: it should stay flat.

Each length runs one video work unit (`swin2sr.jobs.run_unit`, what the CLI and the Ray runner
execute) in a fresh process and reads that process's peak RSS from wait4.  The subject is the
decode -> batch -> upscale -> encode pipeline, not the network: the stand-in model is a nearest-
neighbour x2 (`--model nearest`, no weights) so long videos stay affordable on a CPU; `--model
builtin-x2` (or a checkpoint path) runs a real one.  The last column is what the upscaled frames
alone would take if a run held them all.

Run: PYTHONPATH=.:tests python benchmarks/bench_video.py [--lengths 100 400 1600] [--size 320x240]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from videos import make_video

from swin2sr import jobs


class NearestX2(torch.nn.Module):
    """The cheapest x2 "model": the pipeline's cost without the network's."""

    scale = 2

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))  # the engine reads the model's dtype from a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x * self.weight, scale_factor=2, mode="nearest")


def run_one(model_name: str, source: Path, destination: Path) -> None:
    """The child process: one video unit, as the CLI runs it."""
    options = jobs.JobOptions(model=model_name, upscale={"device": "cpu"})
    model = NearestX2() if model_name == "nearest" else jobs.load_job_model(options)
    result = jobs.run_unit(model, jobs.WorkUnit(str(source), str(destination), "video", source.name), options)
    if not result.ok:
        raise SystemExit(result.reason)


def measure(model_name: str, source: Path, destination: Path) -> tuple[float, int]:
    """(seconds, peak RSS bytes) of `run_one` in its own process."""
    started = time.perf_counter()
    command = [sys.executable, __file__, "--child", model_name, str(source), str(destination)]
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"the run on {source.name} failed")
    return time.perf_counter() - started, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--size", default="320x240", help="input frame size WxH")
    parser.add_argument("--model", default="nearest", help="nearest (stand-in), builtin-x2 or a checkpoint path")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_one(args.child[0], Path(args.child[1]), Path(args.child[2]))
    width, height = (int(v) for v in args.size.split("x"))
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; input {width}x{height} libx264 "
          f"with AAC audio; output x2 libx264 crf 18, 4 frames per batch; model {args.model}\n")
    print("| frames | time | ms / frame | peak RSS | all output frames held would add |\n|---|---|---|---|---|")
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for frames in args.lengths:
            clip = make_video(Path(tmp) / f"clip{frames}.mp4", frames=frames, size=(width, height), audio="aac")
            seconds, peak = measure(args.model, clip, Path(tmp) / "out.mp4")
            held = frames * 4 * width * height * 3  # x2 output, uint8 RGB
            peaks.append(peak)
            print(f"| {frames} | {seconds:.1f} s | {1000 * seconds / frames:.0f} | {peak / 2**20:.0f} MiB "
                  f"| {held / 2**20:.0f} MiB |")
    growth = peaks[-1] / peaks[0] - 1
    verdict = "flat" if abs(growth) <= 0.05 else "NOT flat"
    print(f"\nsummary: peak RSS {peaks[0] / 2**20:.0f} MiB at {args.lengths[0]} frames, {peaks[-1] / 2**20:.0f} MiB at "
          f"{args.lengths[-1]} frames ({growth:+.1%}, {verdict} within 5%); holding the frames would add "
          f"{held / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
