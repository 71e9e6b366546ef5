"""Images in and out: PIL / numpy / torch <-> float [B, C, H, W] in 0..1, plus alpha, gray and resizing.

`read_batch` turns whatever the caller has into one float32 [B, C, H, W]
tensor on the CPU and an `ImageKind` that remembers how to give the result
back (`ImageKind.new_output` preallocates it, `ImageKind.finish` converts it).
Tensor layout rule: a 4-D tensor is ComfyUI's [B, H, W, C] when its last
dimension is 1..4 and its second is not; [B, C, H, W] when its last is not;
when both are 1..4 (an image 1-4 pixels high or wide) it is refused unless
layout="BCHW" or "BHWC" says which (which may always be passed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

try:  # PIL is optional for the core (hosts hand tensors); needed only for PIL in/out.
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None

log = logging.getLogger("swin2sr")

LAYOUTS = ("BCHW", "BHWC")


@dataclass(frozen=True)
class ImageKind:
    """How an input arrived, so the output can go back the same way."""

    kind: str  # "pil" | "numpy" | "torch"
    channels: int  # 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    dtype: object = None  # numpy/torch dtype of the input
    layout: str = "BCHW"  # torch only
    channel_axis: bool = True  # numpy: False for an HW array (given back as HW)
    mode: str = ""  # PIL mode
    device: object = None  # torch input device

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def gray(self) -> bool:
        return self.channels in (1, 2)


def read_batch(image, layout: str | None = None, *, keep_8_bit: bool = False) -> tuple[torch.Tensor, ImageKind]:
    """Any supported image -> (float32 [B, C, H, W] clamped to 0..1 on the CPU, its ImageKind).

    Refuses empty batches and non-finite values up front, with the cause and the fix, rather than
    failing deep inside the model or returning a black image.
    keep_8_bit: 8-bit PIL / numpy images come back as uint8 instead (a quarter of the memory);
    `to_unit_float` turns any part of them into exactly the floats this would have returned.
    """
    if Image is not None and isinstance(image, Image.Image):
        batch, kind = _read_pil(image, keep_8_bit)
    elif isinstance(image, np.ndarray):
        batch, kind = _read_numpy(image, keep_8_bit)
    elif isinstance(image, torch.Tensor):
        batch, kind = _read_torch(image, layout)
    else:
        raise TypeError(
            f"unsupported image type {type(image).__name__}: pass a PIL image, a numpy HWC array or a tensor"
        )
    check_upscalable(batch)
    return batch, kind


def check_upscalable(bchw: torch.Tensor) -> None:
    """Raise a ValueError naming the problem when there is nothing sensible to upscale."""
    if bchw.numel() == 0:
        raise ValueError(
            f"the image batch is empty (shape {tuple(bchw.shape)} as [B,C,H,W]): nothing to upscale; "
            "check the step that produced it"
        )
    bad = int(torch.count_nonzero(bchw.isnan())) if bchw.is_floating_point() else 0  # .sum() would make an int64 copy
    if bad:
        raise ValueError(
            f"the image contains {bad} NaN values, so nothing was upscaled; they usually come from a VAE decode in "
            "half precision: decode in fp32 (ComfyUI --fp32-vae, A1111 --no-half-vae) or fix the step that "
            "produced them"
        )


# PIL modes the model reads through another mode, and the mode the result comes back in.
# Palette images come back as full colour: an upscale has far more colours than the palette.
_PIL_READ_AS = {"1": "L", "P": "RGB", "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB",
                "YCbCr": "RGB", "HSV": "RGB", "LAB": "RGB"}  # fmt: skip
_PIL_BACK_AS = {"PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "I;16B": "I;16",
                "I;16L": "I;16", "I;16N": "I;16"}  # fmt: skip
_PIL_DEEP = {"I;16": np.uint16, "I;16B": np.uint16, "I;16L": np.uint16, "I;16N": np.uint16, "I": np.int32,
             "F": np.float32}  # fmt: skip


def _read_pil(image, keep_8_bit: bool = False) -> tuple[torch.Tensor, ImageKind]:
    """Every Pillow mode: 8-bit modes through L/LA/RGB/RGBA, 16-bit, 32-bit integer and float at full precision.

    Mode I (32-bit integers, what older Pillow opened 16-bit PNG as) is read as 16-bit: 0..65535.
    """
    mode = image.mode
    if mode in _PIL_DEEP:
        array = np.asarray(image)
        if mode == "I":
            array = np.clip(array, 0, 65535).astype(np.uint16)
        tensor, kind = _read_numpy(array.astype(array.dtype.newbyteorder("=")))
        return tensor, ImageKind("pil", 1, dtype=np.dtype(_PIL_DEEP[mode]), mode=_PIL_BACK_AS.get(mode, mode))
    read_as = _PIL_READ_AS.get(mode, mode)
    if mode == "P" and "transparency" in image.info:
        read_as = "RGBA"
    if read_as not in ("L", "LA", "RGB", "RGBA"):
        raise ValueError(f"unsupported PIL image mode {mode!r}: convert it to RGB or RGBA first")
    tensor, kind = _read_numpy(np.asarray(image.convert(read_as) if read_as != mode else image), keep_8_bit)
    back_as = read_as if mode == "P" else _PIL_BACK_AS.get(mode, mode)
    return tensor, ImageKind("pil", kind.channels, dtype=np.dtype(np.uint8), mode=back_as)


def _read_numpy(array: np.ndarray, keep_8_bit: bool = False) -> tuple[torch.Tensor, ImageKind]:
    if array.ndim == 2:
        hwc = array[..., None]
    elif array.ndim == 3 and 1 <= array.shape[-1] <= 4:
        hwc = array
    else:
        raise ValueError(
            f"numpy images must be HW or HWC with 1-4 channels, got shape {array.shape}; "
            "for a batch pass a tensor [B,H,W,C] or one image at a time"
        )
    pixels = hwc if keep_8_bit and hwc.dtype == np.uint8 else _to_unit_float(hwc)
    tensor = torch.from_numpy(np.array(pixels.transpose(2, 0, 1), order="C"))[None]  # a copy we own
    return tensor, ImageKind("numpy", hwc.shape[-1], dtype=array.dtype, channel_axis=array.ndim == 3)


def to_unit_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (`read_batch(keep_8_bit=True)`) -> float32 0..1, the values read_batch gives; floats as they are."""
    return pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        if array.size and 0 < array.max() <= 255:
            log.warning("these 16-bit pixels are all 255 or less, so the image is nearly black; if it holds 8-bit "
                        "data, pass it as uint8 (.astype(np.uint8), or convert('L') for a PIL image)")  # fmt: skip
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if array.size:
            finite = np.where(np.isfinite(array), array, 0.5)  # NaN is refused later with its own cause; inf clamps
            check_float_range(float(finite.min()), float(finite.max()))
        return np.clip(array, 0.0, 1.0)
    raise ValueError(f"unsupported numpy dtype {array.dtype}: use uint8, uint16 or float in 0..1 (e.g. .astype(np.uint8))")


FLOAT_SLACK = 1.0  # floats may overshoot 0..1 by this much (another model's output) and are clamped


def check_float_range(low: float, high: float) -> None:
    """Float images are 0..1; finite values far outside are a mistake (0..255 data, or not an image at all).

    Infinities are clamped like any slightly out-of-range value (hosts pass them through from decoders).
    """
    if high > 1.0 + FLOAT_SLACK:
        hint = "; divide by 255 first" if high <= 255.5 else ("; divide by 65535 first" if high <= 65535.5 else "")
        raise ValueError(f"float image values must be in 0..1, but they reach {high:g}{hint}")
    if low < -FLOAT_SLACK:
        raise ValueError(f"float image values must be in 0..1, but they go down to {low:g}; rescale them to 0..1")


def _read_torch(tensor: torch.Tensor, layout: str | None) -> tuple[torch.Tensor, ImageKind]:
    if tensor.ndim == 3:
        tensor = tensor[None]
    if tensor.ndim != 4:
        raise ValueError(f"tensor images must be [B,C,H,W] or [B,H,W,C], got shape {tuple(tensor.shape)}")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    layout = layout or guess_layout(tensor)
    bchw = tensor.movedim(-1, 1) if layout == "BHWC" else tensor
    if not 1 <= bchw.shape[1] <= 4:
        raise ValueError(f"expected 1-4 channels, got {bchw.shape[1]} (layout {layout}); pass layout= explicitly")
    kind = ImageKind("torch", bchw.shape[1], dtype=tensor.dtype, layout=layout, device=tensor.device)
    bchw = bchw.detach()
    if tensor.dtype == torch.uint8:
        bchw = bchw.float() / 255.0
    elif tensor.dtype == getattr(torch, "uint16", None):
        bchw = bchw.to(torch.float32) / 65535.0
    elif not tensor.dtype.is_floating_point:
        raise ValueError(f"unsupported tensor dtype {tensor.dtype}: use uint8 or float in 0..1")
    else:
        for image in bchw:  # one image at a time: a copy of a whole host batch could be gigabytes
            low, high = torch.aminmax(torch.nan_to_num(image, nan=0.5, posinf=0.5, neginf=0.5))  # see _to_unit_float
            check_float_range(float(low), float(high))
    return bchw.to("cpu", torch.float32).clamp(0, 1).contiguous(), kind


def guess_layout(tensor: torch.Tensor) -> str:
    """BHWC when only the last dimension is 1..4, BCHW otherwise (documented rule); refused when both could be.

    A [B, H, W, C] image 1-4 pixels high has the shape of a [B, C, H, W] one 1-4 pixels wide: guessing
    either way gives some caller an image of the wrong shape, so the caller is asked to say which.
    """
    last, second = tensor.shape[-1], tensor.shape[1]
    if 1 <= last <= 4 and 1 <= second <= 4:
        raise ValueError(
            f"tensor shape {tuple(tensor.shape)} is ambiguous: dimension 1 ({second}) and the last ({last}) could "
            "both be the channels; pass layout='BHWC' ([B, H, W, C], ComfyUI's IMAGE) or layout='BCHW'"
        )
    return "BHWC" if 1 <= last <= 4 else "BCHW"


def split_alpha(bchw: torch.Tensor, kind: ImageKind) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(RGB for the model, alpha or None).  Gray is repeated to three channels."""
    color = bchw[:, : 1 if kind.gray else 3]
    alpha = bchw[:, -1:] if kind.has_alpha else None
    if kind.gray:
        color = color.expand(-1, 3, -1, -1)
    return color, alpha


def resize(bchw: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """High-quality resize: bicubic, antialiased when shrinking, clamped to 0..1 (uint8 in: as it is if no resize)."""
    if bchw.shape[-2:] == (height, width):
        return bchw
    out = F.interpolate(to_unit_float(bchw), size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 1)


def resize_alpha(alpha: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Alpha is a mask, not a picture: a plain bilinear filter, no sharpening overshoot."""
    return F.interpolate(to_unit_float(alpha), size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def output_storage(kind: ImageKind, output_dtype=None) -> torch.dtype:
    """The dtype of the preallocated output: uint8 for 8-bit inputs (files), float32 otherwise, or as asked."""
    if output_dtype is not None:
        return output_dtype if isinstance(output_dtype, torch.dtype) else _torch_dtype(output_dtype)
    if kind.dtype in (np.uint8, torch.uint8):
        return torch.uint8
    return torch.float32


def _torch_dtype(dtype) -> torch.dtype:
    return {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}[
        np.dtype(dtype)
    ]


def store(out: torch.Tensor, values: torch.Tensor) -> None:
    """Write float 0..1 `values` into `out` (slice of the output buffer), rounding for integer storage."""
    values = values.clamp(0, 1)
    if out.dtype == torch.uint8:
        out.copy_(values.mul_(255).round_())
    else:
        out.copy_(values)


def new_output(batch: int, height: int, width: int, kind: ImageKind, output_dtype=None) -> torch.Tensor:
    """The preallocated host output, seen as [B, 3, H, W] (alpha and gray are handled in `finish`).

    Stored channels-last unless the caller wants BCHW tensors, so PIL/numpy/ComfyUI
    results are handed back without another full-size copy.
    """
    dtype = output_storage(kind, output_dtype)
    if kind.kind == "torch" and kind.layout == "BCHW":
        return torch.empty((batch, 3, height, width), dtype=dtype)
    return torch.empty((batch, height, width, 3), dtype=dtype).permute(0, 3, 1, 2)


def finish(color: torch.Tensor, alpha: torch.Tensor | None, kind: ImageKind):
    """Model output [B, 3, H, W] (+ resized alpha) -> the caller's kind, layout, channels and dtype."""
    if kind.gray:
        color = to_gray(color)
    if alpha is not None:
        alpha = alpha.clamp(0, 1)
        alpha = alpha.mul(255).round_().to(torch.uint8) if color.dtype == torch.uint8 else alpha.to(color.dtype)
        color = torch.cat((color, alpha), dim=1)
    if kind.kind == "torch":
        return _finish_torch(color, kind)
    hwc = _to_numpy_hwc(color[0], kind)
    if kind.kind == "numpy":
        return hwc if kind.channel_axis else hwc[..., 0]
    return _to_pil(hwc, kind.mode)


def _to_pil(hwc: np.ndarray, mode: str):
    """numpy HWC in the input's storage dtype -> a PIL image in `mode` (the closest to the input's mode)."""
    if mode == "I":
        hwc = hwc.astype(np.int32)
    image = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)
    if mode == "1":
        return image.convert("1", dither=Image.Dither.NONE)
    return image if image.mode == mode else image.convert(mode)


def to_gray(color: torch.Tensor) -> torch.Tensor:
    """Back to one channel: the mean (a gray input gives a near-gray output, so luma weights would not matter)."""
    if color.dtype == torch.uint8:
        return color.float().mean(1, keepdim=True).round_().to(torch.uint8)
    return color.mean(1, keepdim=True)


def _finish_torch(bchw: torch.Tensor, kind: ImageKind) -> torch.Tensor:
    out = bchw.movedim(1, -1) if kind.layout == "BHWC" else bchw
    if kind.dtype == torch.uint8 and out.dtype != torch.uint8:
        out = out.clamp(0, 1).mul(255).round_().to(torch.uint8)
    elif kind.dtype.is_floating_point and out.dtype == torch.uint8:
        out = out.to(kind.dtype) / 255.0
    elif kind.dtype.is_floating_point:
        out = out.to(kind.dtype)
    return out.contiguous().to(kind.device) if kind.device is not None else out.contiguous()


def _to_numpy_hwc(chw: torch.Tensor, kind: ImageKind) -> np.ndarray:
    hwc = chw.permute(1, 2, 0).contiguous()
    target = np.dtype(kind.dtype if kind.dtype is not None else np.uint8)
    if target == np.int32:  # PIL mode I: 16-bit values
        target = np.dtype(np.uint16)
    if hwc.dtype == torch.uint8:
        if target == np.uint8:
            return hwc.numpy()
        hwc = hwc.float() / 255.0
    hwc = hwc.clamp(0, 1)
    if target == np.uint8:
        return hwc.mul(255).round_().to(torch.uint8).numpy()
    if target == np.uint16:
        return hwc.mul(65535).round_().numpy().astype(np.uint16)
    return hwc.numpy().astype(target, copy=False)
