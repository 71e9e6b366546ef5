"""Train the small embedded Swin2SR models (builtin-x4, builtin-x2) on CPU, from photos that ship in PyPI packages.

Why this exists: official Swin2SR weights cannot be downloaded on a fresh
machine or in CI, yet the CLI, the ComfyUI workflows and the A1111 entry need a
model that is there after install.  This script trains one honestly, from
scratch, with the project's own `swin2sr.arch.Swin2SR` (official key names),
so the result loads with `swin2sr.load_model("builtin-x4")`.

Recipe (see docs/embedded-models.md for the reasoning and the measured quality):
- data: the natural photographs listed in TRAIN_IMAGES (scikit-image,
  scikit-learn and matplotlib sample data); VALIDATION_IMAGES are held out and
  select the checkpoint.  Set5/Set14 are never touched here.
- degradation: bicubic downscale with antialiasing (torch, Keys a = -0.5, the
  kernel of PIL and MATLAB imresize), LR rounded to 8 bits like a saved PNG.
- samples: random HR crops of (patch * scale) pixels, random flips and
  90-degree rotations.
- optimisation: AdamW, linear warm-up then cosine decay, L1 loss.  The network
  starts as a bilinear interpolator (see `init_as_interpolator`) so CPU time is
  spent on learning detail rather than on learning to copy the input.

Deterministic for a given --seed and thread count.  Needs:
pip install -r requirements-train.txt

    PYTHONPATH=. python tools/train_builtin.py --scale 4 --steps 3000 --out swin2sr/weights/upscale_models/swin2sr-builtin-x4.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from swin2sr.arch import Swin2SR, Swin2SRConfig
from swin2sr.loader import save_model
from swin2sr.metrics import psnr_y

# (package, name): every image is a natural photograph (or a photographic texture) bundled in the wheel.
TRAIN_IMAGES = [
    ("skimage", "astronaut"),
    ("skimage", "coffee"),
    ("skimage", "motorcycle_left.png"),
    ("skimage", "hubble_deep_field"),
    ("skimage", "immunohistochemistry"),
    ("skimage", "retina"),
    ("skimage", "camera"),
    ("skimage", "coins"),
    ("skimage", "moon"),
    ("skimage", "grass"),
    ("skimage", "gravel"),
    ("skimage", "brick"),
    ("skimage", "clock"),
    ("sklearn", "china.jpg"),
    ("matplotlib", "grace_hopper.jpg"),
]
# Held out from training: they pick the best checkpoint.
VALIDATION_IMAGES = [("sklearn", "flower.jpg"), ("skimage", "rocket")]
# Never used here: tests/data/chelsea_crop.png (skimage "chelsea", CC0) is the unit test's held-out image,
# and skimage "motorcycle_right" is left out because it is the stereo twin of a training image.

CONFIGS = {
    4: Swin2SRConfig(
        embed_dim=48, depths=(4, 4), num_heads=(4, 4), window_size=8, img_size=48,
        mlp_ratio=2.0, upsampler="pixelshuffledirect", scale=4,
    ),
    2: Swin2SRConfig(
        embed_dim=48, depths=(4, 4), num_heads=(4, 4), window_size=8, img_size=48,
        mlp_ratio=2.0, upsampler="pixelshuffledirect", scale=2,
    ),
}


def load_image(package: str, name: str) -> np.ndarray:
    """One bundled sample image as HxWx3 uint8 RGB (gray images are replicated to three channels)."""
    if package == "skimage":
        import skimage.data

        if name.endswith(".png"):  # bundled files without a loader function of their own
            image = np.asarray(Image.open(Path(skimage.data.__file__).parent / name).convert("RGB"))
        else:
            image = getattr(skimage.data, name)()
    elif package == "sklearn":
        from sklearn.datasets import load_sample_image

        image = load_sample_image(name)
    elif package == "matplotlib":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data(name) as f:
            image = np.asarray(Image.open(f).convert("RGB"))
    else:
        raise ValueError(f"unknown image package {package!r}")
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 1x3xHxW float in 0..1."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscale by an integer factor, rounded to 8-bit levels like a saved LR image."""
    lr = F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return (lr.clamp(0, 1) * 255).round() / 255


def sample_batch(
    images: list[torch.Tensor], gen: torch.Generator, batch: int, patch: int, scale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random HR crops (uniform over images, then over positions), flipped/rotated, and their bicubic LR."""
    size = patch * scale
    crops = []
    for _ in range(batch):
        image = images[int(torch.randint(len(images), (1,), generator=gen))]
        h, w = image.shape[-2:]
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = image[..., top : top + size, left : left + size]
        flip, rot = torch.randint(2, (1,), generator=gen), torch.randint(4, (1,), generator=gen)
        if flip:
            crop = crop.flip(-1)
        crops.append(torch.rot90(crop, int(rot), dims=(-2, -1)))
    hr = torch.cat(crops)
    return bicubic_downscale(hr, scale), hr


def init_as_interpolator(model: Swin2SR) -> None:
    """Start the network as a bilinear upscaler so training only has to learn the missing detail.

    conv_first copies the (normalised) RGB input into its first three channels,
    the body's final conv starts at zero (so the long skip passes those channels
    through unchanged), and the pixelshuffledirect conv reads them with bilinear
    weights for each of the scale^2 sub-pixel positions.  Everything is still
    trained; only the starting point differs from random.
    """
    s = model.config.scale
    with torch.no_grad():
        model.conv_first.weight[:3].zero_()
        model.conv_first.bias[:3].zero_()
        for c in range(3):
            model.conv_first.weight[c, c, 1, 1] = 1.0
        model.conv_after_body.weight.zero_()
        model.conv_after_body.bias.zero_()
        up = model.upsample[0]
        up.weight.zero_()
        up.bias.zero_()
        taps = torch.tensor([-1.0, 0.0, 1.0])
        for i in range(s):
            wy = (1 - (taps - ((i + 0.5) / s - 0.5)).abs()).clamp(min=0)
            for j in range(s):
                wx = (1 - (taps - ((j + 0.5) / s - 0.5)).abs()).clamp(min=0)
                for c in range(3):
                    up.weight[c * s * s + i * s + j, c] = wy[:, None] * wx[None, :]


def init_transformer_weights(model: nn.Module) -> None:
    """The official initialisation: truncated-normal (std 0.02) Linear weights, zero biases, unit LayerNorms."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def upscale_image(model: Swin2SR, lr: torch.Tensor) -> torch.Tensor:
    """Whole-image inference, rounded to 8-bit levels."""
    with torch.no_grad():
        return (model(lr).clamp(0, 1) * 255).round() / 255


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()


def validate(model: Swin2SR, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean Y PSNR (border = scale) of the model on the held-out validation photos."""
    s = model.config.scale
    model.eval()
    scores = [psnr_y(to_uint8(upscale_image(model, lr)), to_uint8(hr), border=s) for lr, hr in pairs]
    model.train()
    return float(np.mean(scores))


def bicubic_psnr(pairs: list[tuple[torch.Tensor, torch.Tensor]], scale: int) -> float:
    """The bicubic-upscaling baseline (PIL BICUBIC) on the same validation pairs."""
    scores = []
    for lr, hr in pairs:
        small = Image.fromarray(to_uint8(lr))
        up = small.resize((small.width * scale, small.height * scale), Image.BICUBIC)
        scores.append(psnr_y(np.asarray(up), to_uint8(hr), border=scale))
    return float(np.mean(scores))


def validation_pairs(scale: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    pairs = []
    for package, name in VALIDATION_IMAGES:
        hr = to_tensor(load_image(package, name))
        h, w = hr.shape[-2:]
        hr = hr[..., : h - h % scale, : w - w % scale]
        pairs.append((bicubic_downscale(hr, scale), hr))
    return pairs


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def export(model: Swin2SR, path: Path, recipe: dict, val_psnr: float, step: int) -> None:
    """Save the weights (official key names, plus the buffers spandrel needs) with the recipe as metadata."""
    metadata = {
        "format": "swin2sr-builtin",
        "config": json.dumps(asdict(model.config)),
        "recipe": json.dumps(recipe),
        "train_images": json.dumps([f"{p}:{n}" for p, n in TRAIN_IMAGES]),
        "validation_images": json.dumps([f"{p}:{n}" for p, n in VALIDATION_IMAGES]),
        "seed": str(recipe["seed"]),
        "steps": str(step),
        "validation_psnr_y": f"{val_psnr:.3f}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_model(model, tmp, metadata)  # adds what the loader cannot infer from shapes (loader.METADATA_FIELDS)
    tmp.replace(path)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, choices=sorted(CONFIGS), required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=48, help="LR crop size (a multiple of the window, 8)")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--out", type=Path, required=True, help="best-by-validation .safetensors is written here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    recipe = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"}
    recipe.update(loss="L1", optimizer="AdamW(betas=(0.9, 0.99), weight_decay=0)", schedule="warmup+cosine to 1%",
                  degradation="bicubic antialias (a=-0.5), 8-bit LR", augment="random crop, hflip, rot90",
                  init="official trunc-normal + bilinear-interpolator start")

    images = [to_tensor(load_image(p, n)) for p, n in TRAIN_IMAGES]
    pairs = validation_pairs(args.scale)
    model = Swin2SR(CONFIGS[args.scale])
    init_transformer_weights(model)
    init_as_interpolator(model)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    print(f"x{args.scale}: {params:,} parameters, {len(images)} training photos, "
          f"bicubic validation PSNR-Y {bicubic_psnr(pairs, args.scale):.3f} dB, start {validate(model, pairs):.3f} dB",
          flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    best, start, running = -1.0, time.time(), 0.0
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step - 1, args.steps, args.lr, args.warmup)
        lr_img, hr = sample_batch(images, gen, args.batch, args.patch, args.scale)
        loss = F.l1_loss(model(lr_img), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += loss.item()
        if step % args.log_every == 0:
            elapsed = time.time() - start
            print(f"step {step}/{args.steps} loss {running / args.log_every:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                  f"{elapsed / 60:.1f} min ({step / elapsed:.2f} steps/s)", flush=True)
            running = 0.0
        if step % args.val_every == 0 or step == args.steps:
            val = validate(model, pairs)
            mark = ""
            if val > best:
                best, mark = val, " (best, saved)"
                export(model, args.out, recipe, val, step)
            print(f"validation step {step}: PSNR-Y {val:.3f} dB{mark}", flush=True)
    print(f"done: {args.steps} steps in {(time.time() - start) / 60:.1f} min, best validation PSNR-Y {best:.3f} dB "
          f"-> {args.out}", flush=True)


if __name__ == "__main__":
    main()
