"""Stage times and planner choices of Face Region Refine and the two-stage pipeline, as Markdown rows.

Default input: Set14 lenna at x4-downscaled size (128x128, from ../shared/benchmarks; reporting only).
Models: builtin-x4 / builtin-x2 when embedded, else random weights in the official lightweight-x2 /
classical-x4 shapes (timing only, said in the output), and the shared Real-ESRGAN Compact x4 fixture.
Faces: a fixed box around lenna's face, so every run times the same work (detectors are measured by
bench_faces_detection.py).

Run: PYTHONPATH=.:tests python benchmarks/bench_pipelines.py [--threads 2] [--face-size 512]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
from PIL import Image

import swin2sr

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LENNA = SHARED / "benchmarks" / "Set14" / "LR_bicubic" / "X4" / "lennax4.png"
COMPACT = SHARED / "fixtures" / "realesr-animevideov3.pth"
LENNA_FACE = (57, 54, 87, 90)  # lenna's face in the 128x128 input, marked by hand


def swin2sr_model(name: str, stand_in: str):
    """The embedded model, or random weights of an official shape when it is not embedded yet."""
    try:
        return swin2sr.load_model(name), name
    except swin2sr.CheckpointError:
        from checkpoints import OFFICIAL_CONFIGS, random_official_state_dict

        state = random_official_state_dict(OFFICIAL_CONFIGS[stand_in])
        return swin2sr.load_model(state), f"{name} missing: random {stand_in} weights (timing only)"


def rows(label: str, report) -> list[str]:
    """One row per stage (seconds) and one per distinct planner choice."""
    out = [f"| {label} | {stage} | {seconds:.2f} s |" for stage, seconds in report.seconds.items()]
    plans = dict.fromkeys(str(r.plan) for r in report.upscale_reports)
    out += [f"| {label} | planner | {plan} |" for plan in plans]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=LENNA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--face-size", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = Image.open(args.image).convert("RGB")
    x4, x4_note = swin2sr_model("builtin-x4", "classical_x4")
    x2, x2_note = swin2sr_model("builtin-x2", "lightweight_x2")
    print(f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads; input {args.image.name} "
          f"{image.width}x{image.height}, face box {LENNA_FACE}; x4: {x4_note}; x2: {x2_note}\n")
    print("| pipeline | stage | time / planner choice |\n|---|---|---|")
    _, _, _, report = swin2sr.refine_faces(image, x4, boxes=[LENNA_FACE], face_size=args.face_size,
                                           return_report=True)
    print("\n".join(rows(f"refine_faces x4, face_size {args.face_size}", report)))
    if not COMPACT.is_file():
        print(f"(two-stage skipped: {COMPACT} is absent)")
        return
    compact = swin2sr.load_any_model(COMPACT)
    for regions, label in ((None, "whole image"), ([LENNA_FACE], "face only")):
        _, report = swin2sr.two_stage(image, compact, x2, regions=regions, return_report=True)
        print("\n".join(rows(f"two_stage Compact x4→x2 + Swin2SR x2, {label}", report)))


if __name__ == "__main__":
    main()
