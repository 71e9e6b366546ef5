"""Side-by-side crops (bicubic | builtin-x4 | ground truth) from Set5/Set14, for docs/embedded-models.md.

Each row is one benchmark image: the official MATLAB-bicubic x4 LR upscaled
by PIL bicubic and by the embedded model, next to the ground truth; the crop
is enlarged 2x with nearest-neighbour so the pixels stay visible.

    PYTHONPATH=. python benchmarks/make_builtin_crops.py            # -> docs/builtin_x4_crops.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import swin2sr
from eval_quality import DEFAULT_DATA, bicubic_upscale, read_rgb, upscale

# (set, image, left, top) of a 128x128 ground-truth crop with fine detail.
CROPS = [("Set5", "butterfly", 64, 64), ("Set14", "zebra", 200, 150), ("Set14", "comic", 60, 100)]
CROP, ZOOM, LABEL_H = 128, 2, 22
COLUMNS = ("bicubic", "builtin-x4", "ground truth")


def panels(model, data: Path, set_name: str, image: str, left: int, top: int) -> list[np.ndarray]:
    lr = read_rgb(data / set_name / "LR_bicubic" / "X4" / f"{image}x4.png")
    gt = read_rgb(data / set_name / "HR" / f"{image}.png")
    box = (slice(top, top + CROP), slice(left, left + CROP))
    return [bicubic_upscale(lr, 4)[box], upscale(model, lr)[box], gt[box]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "builtin_x4_crops.png")
    args = p.parse_args()
    model = swin2sr.load_model("builtin-x4")
    side = CROP * ZOOM
    sheet = Image.new("RGB", (side * len(COLUMNS), LABEL_H + side * len(CROPS)), "white")
    draw = ImageDraw.Draw(sheet)
    for col, label in enumerate(COLUMNS):
        draw.text((col * side + 6, 5), label, fill="black")
    for row, (set_name, image, left, top) in enumerate(CROPS):
        for col, panel in enumerate(panels(model, args.data, set_name, image, left, top)):
            tile = Image.fromarray(panel).resize((side, side), Image.NEAREST)
            sheet.paste(tile, (col * side, LABEL_H + row * side))
        draw.text((4, LABEL_H + row * side + 4), f"{set_name}/{image}", fill="yellow")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
