"""PSNR/SSIM of any Swin2SR model on Set5 and Set14, with the standard super-resolution protocol.

Protocol (SwinIR/Swin2SR `main_test_swin2sr.py`): the provided MATLAB-bicubic
LR images are the input; the LR is padded symmetrically by a full window step
(h // ws + 1) * ws - h, as the official script does, and the output cropped
back; the output is clamped and rounded to 8 bits; the ground truth is cropped
to LR size x scale; `scale` border pixels are dropped; PSNR and SSIM are taken
on the BT.601 Y channel (swin2sr.metrics).  The bicubic baseline is PIL's
bicubic upscale of the same LR image (Keys a = -0.5, as MATLAB's imresize).

    PYTHONPATH=. python benchmarks/eval_quality.py                      # both embedded models
    PYTHONPATH=. python benchmarks/eval_quality.py --model Swin2SR_ClassicalSR_X4_64.pth
    PYTHONPATH=. python benchmarks/eval_quality.py --bf16               # also bf16-vs-fp32 PSNR

The data defaults to ../shared/benchmarks next to the repository.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import swin2sr
from swin2sr.metrics import psnr_y, ssim_y

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"
SETS = ("Set5", "Set14")
# Swin2SR ClassicalSR, arXiv 2209.11345 Table 3 (PSNR, SSIM on Y): for reference only, not measured here.
PAPER = {("Set5", 2): (38.43, 0.9623), ("Set14", 2): (34.48, 0.9256), ("Set5", 4): (32.92, 0.9039),
         ("Set14", 4): (29.06, 0.7946)}


@dataclass
class Score:
    image: str
    bicubic_psnr: float
    bicubic_ssim: float
    model_psnr: float
    model_ssim: float
    bf16_vs_fp32_psnr: float | None = None


def read_rgb(path: Path) -> np.ndarray:
    """8-bit RGB; grayscale files (Set14 bridge) become three equal channels, as the official colour read does."""
    return np.asarray(Image.open(path).convert("RGB"))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    image = Image.fromarray(lr)
    return np.asarray(image.resize((image.width * scale, image.height * scale), Image.BICUBIC))


def upscale(model: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
    """Whole-image upscale in the model's dtype with the official script's symmetric over-padding; 8-bit RGB out."""
    ws = model.tile_multiple
    h, w = lr.shape[:2]
    dtype = next(model.parameters()).dtype
    x = torch.from_numpy(np.array(lr)).permute(2, 0, 1).unsqueeze(0).to(dtype) / 255
    pad_h, pad_w = (h // ws + 1) * ws - h, (w // ws + 1) * ws - w
    x = torch.cat([x, x.flip(2)], 2)[:, :, : h + pad_h]
    x = torch.cat([x, x.flip(3)], 3)[:, :, :, : w + pad_w]
    with torch.inference_mode():
        y = model(x)[..., : h * model.scale, : w * model.scale]
    return (y[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def pair_paths(data: Path, set_name: str, scale: int) -> list[tuple[Path, Path]]:
    """(HR, LR) files of one benchmark set; the LR of `<name>.png` is `LR_bicubic/X<s>/<name>x<s>.png`."""
    root = data / set_name
    hr_files = sorted((root / "HR").glob("*.png"))
    if not hr_files:
        raise FileNotFoundError(f"no HR images in {root / 'HR'}; pass --data pointing at the shared benchmarks folder")
    return [(hr, root / "LR_bicubic" / f"X{scale}" / f"{hr.stem}x{scale}.png") for hr in hr_files]


def evaluate_set(model: torch.nn.Module, data: Path, set_name: str, bf16: bool = False) -> list[Score]:
    """Per-image Y PSNR/SSIM of the model and of bicubic upscaling on one set."""
    s = model.scale
    half = copy.deepcopy(model).to(torch.bfloat16) if bf16 else None
    scores = []
    for hr_path, lr_path in pair_paths(data, set_name, s):
        lr = read_rgb(lr_path)
        gt = read_rgb(hr_path)[: lr.shape[0] * s, : lr.shape[1] * s]
        out = upscale(model, lr)
        bic = bicubic_upscale(lr, s)
        score = Score(hr_path.stem, psnr_y(bic, gt, s), ssim_y(bic, gt, s), psnr_y(out, gt, s), ssim_y(out, gt, s))
        if half is not None:
            score.bf16_vs_fp32_psnr = rgb_psnr(upscale(half, lr), out)
        scores.append(score)
    return scores


def rgb_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR over all RGB channels of two 8-bit images (how close a reduced-precision output is to fp32)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(20 * np.log10(255 / np.sqrt(mse)))


def mean_score(scores: list[Score]) -> Score:
    fields = ("bicubic_psnr", "bicubic_ssim", "model_psnr", "model_ssim")
    mean = Score("average", *(float(np.mean([getattr(s, f) for s in scores])) for f in fields))
    if scores[0].bf16_vs_fp32_psnr is not None:
        mean.bf16_vs_fp32_psnr = min(s.bf16_vs_fp32_psnr for s in scores)  # the worst image, not the mean
    return mean


def format_table(title: str, scores: list[Score]) -> str:
    bf16 = scores[0].bf16_vs_fp32_psnr is not None
    head = f"{'image':<12} {'bicubic PSNR/SSIM':>18} {'model PSNR/SSIM':>18} {'gain dB':>8}"
    lines = [title, head + (f" {'bf16 vs fp32 dB':>16}" if bf16 else ""), "-" * (len(head) + (17 if bf16 else 0))]
    for s in [*scores, mean_score(scores)]:
        row = (f"{s.image:<12} {s.bicubic_psnr:>10.2f}/{s.bicubic_ssim:.4f} {s.model_psnr:>10.2f}/{s.model_ssim:.4f}"
               f" {s.model_psnr - s.bicubic_psnr:>+8.2f}")
        if bf16:
            row += f" {s.bf16_vs_fp32_psnr:>16.1f}" + (" (min)" if s.image == "average" else "")
        lines.append(row)
    return "\n".join(lines)


def markdown_summary(averages: dict[tuple[str, str, int], Score]) -> str:
    """The summary table (benchmarks/README.md): one row per (model, set, scale) with bicubic, the model, the gain and the paper's number."""
    lines = ["| model | set | scale | bicubic | model | gain | official Swin2SR (paper, not measured here) |",
             "|---|---|---|---|---|---|---|"]
    for (source, set_name, scale), m in averages.items():
        paper = PAPER.get((set_name, scale))
        lines.append(f"| {source} | {set_name} | x{scale} | {m.bicubic_psnr:.2f} / {m.bicubic_ssim:.4f} | "
                     f"{m.model_psnr:.2f} / {m.model_ssim:.4f} | {m.model_psnr - m.bicubic_psnr:+.2f} dB | "
                     + (f"{paper[0]:.2f} / {paper[1]:.4f} |" if paper else "– |"))
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Set5/Set14 PSNR/SSIM (Y channel) of Swin2SR models beside bicubic.")
    p.add_argument("--model", action="append", help="builtin-x4, builtin-x2 or a checkpoint path (repeatable); "
                   "default: both embedded models")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding Set5/ and Set14/")
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--bf16", action="store_true", help="also report PSNR of the bf16 output against fp32")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, help="write all scores here")
    p.add_argument("--markdown", action="store_true", help="finish with the summary table of benchmarks/README.md")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results, averages = {}, {}
    for source in args.model or ["builtin-x4", "builtin-x2"]:
        model = swin2sr.load_model(source)
        for set_name in args.sets:
            scores = evaluate_set(model, args.data, set_name, bf16=args.bf16)
            title = f"\n{source} ({model.variant}) on {set_name} x{model.scale}, Y channel, border {model.scale}"
            print(format_table(title, scores), flush=True)
            mean = averages[(source, set_name, model.scale)] = mean_score(scores)
            results[f"{source}/{set_name}/x{model.scale}"] = [asdict(s) for s in [*scores, mean]]
    if args.markdown:
        print("\n" + markdown_summary(averages))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
