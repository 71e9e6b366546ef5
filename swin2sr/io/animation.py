"""Animated GIF, APNG and animated WebP in and out: frames, per-frame durations, loop count and disposal.

`read_animation(path)` gives an `Animation` (None for a still image): every frame as the full canvas a
viewer shows (Pillow composes partial frames), uint8 [N, H, W, 3|4], with what is needed to play it
the same way.  `write_animation(animation, path)` writes it in the format the suffix names.  GIF output
gets one shared palette made from every frame (per-frame palettes only when the input GIF had them),
mapped without dithering so flat areas stay flat; pixels under half opacity become transparent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .image_files import (
    ANIMATED_FORMATS,
    TRANSPARENT_INDEX,
    atomic_write,
    open_image,
    output_format_for,
    with_transparent_index,
)

log = logging.getLogger("swin2sr")

DISPOSALS = ("none", "background", "previous")  # what happens to a frame's area before the next one
_GIF_DISPOSAL = {0: "none", 1: "none", 2: "background", 3: "previous"}
_APNG_DISPOSAL = {0: "none", 1: "background", 2: "previous"}
_PALETTE_SAMPLE = 1 << 20  # pixels the shared GIF palette is computed from (a strided sample of all frames)


@dataclass
class Animation:
    """Frames and timing; `disposals` is None when the input format had none (animated WebP)."""

    frames: np.ndarray  # uint8 [N, H, W, 3|4]: full canvases, RGBA only when some pixel is not opaque
    durations: list[int]  # milliseconds per frame
    loop: int | None  # 0: forever, n: n times, None: the input had no loop field (plays once)
    disposals: list[str] | None
    format: str  # the input's format
    own_palettes: bool = False  # a GIF whose frames use more than 256 colours together: per-frame palettes


def is_animated(path: Path) -> bool:
    """True for a GIF, PNG or WebP file of more than one frame; reads only the header and the frame count."""
    try:
        with Image.open(path) as image:
            return image.format in ANIMATED_FORMATS and getattr(image, "n_frames", 1) > 1
    except (OSError, ValueError, SyntaxError):
        return False  # open_image() reports the problem with the path in one line


def read_animation(path: Path) -> Animation:
    """Every frame of an animated GIF/APNG/WebP with its duration and disposal; see the module docstring."""
    image = open_image(path)
    frames, durations, disposals = [], [], []
    for index in range(image.n_frames):
        image.seek(index)
        frames.append(np.asarray(image.convert("RGBA")))
        durations.append(int(image.info.get("duration", 0) or 0))
        disposals.append(_disposal(image))
    stack = np.stack(frames)
    if stack[..., 3].min() == 255:
        stack = np.ascontiguousarray(stack[..., :3])
    return Animation(
        frames=stack,
        durations=durations,
        loop=image.info.get("loop"),
        disposals=None if image.format == "WEBP" else disposals,
        format=image.format,
        own_palettes=image.format == "GIF" and _colour_count(stack) > 256,
    )


def _disposal(frame: Image.Image) -> str:
    if frame.format == "GIF":
        return _GIF_DISPOSAL.get(getattr(frame, "disposal_method", 0), "none")
    return _APNG_DISPOSAL.get(frame.info.get("disposal", 0), "none")


def _colour_count(frames: np.ndarray) -> int:
    rgb = frames[..., :3].astype(np.uint32)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


def check_animation_output(path: Path) -> str:
    """The Pillow format an animation is written in for `path`; a one-line ValueError for a still-only format."""
    name = output_format_for(path).name
    if name not in ANIMATED_FORMATS:
        raise ValueError(
            f"{Path(path).name}: {name} cannot hold an animation; write .gif, .png (APNG) or .webp "
            "(.webp or .png keep full colour)"
        )
    return name


def write_animation(animation: Animation, path: Path) -> None:
    """Write every frame with its duration, the loop count and the disposal, atomically."""
    path = Path(path)
    name = check_animation_output(path)
    frames, options = _gif_frames(animation) if name == "GIF" else _full_colour_frames(animation, name)
    options |= {"save_all": True, "append_images": frames[1:], "duration": list(animation.durations)}
    atomic_write(path, lambda f: frames[0].save(f, format=name, **options))


def _full_colour_frames(animation: Animation, name: str) -> tuple[list[Image.Image], dict]:
    frames = [Image.fromarray(frame) for frame in animation.frames]
    loop = 1 if animation.loop is None else animation.loop  # APNG/WebP: 1 plays once, like a GIF without a loop
    if name == "WEBP":  # the WebP encoder picks disposal and blending itself; the frames it shows are the same
        return frames, {"loop": loop, "lossless": True}
    disposals = [DISPOSALS.index(d) for d in _disposals(animation)]
    return frames, {"loop": loop, "disposal": disposals, "blend": 0, "default_image": False}


def _disposals(animation: Animation) -> list[str]:
    """The input's disposals; for a WebP input, clear the frame where it has transparency, else keep it."""
    if animation.disposals is not None:
        return animation.disposals
    transparent = animation.frames.shape[-1] == 4
    return ["background" if transparent else "none"] * len(animation.frames)


def _gif_frames(animation: Animation) -> tuple[list[Image.Image], dict]:
    """Palette frames without dithering: one palette from all frames, or one per frame when the input had that."""
    rgb = animation.frames[..., :3]
    clear = animation.frames[..., 3] < 128 if animation.frames.shape[-1] == 4 else None
    colours = 255 if clear is not None and clear.any() else 256  # index 255 left for transparency
    options = {"disposal": [_GIF_DISPOSAL_CODE[d] for d in _disposals(animation)], "optimize": False}
    if animation.loop is not None:
        options["loop"] = animation.loop
    if animation.own_palettes:
        frames = [Image.fromarray(f).quantize(colours, dither=Image.Dither.NONE) for f in rgb]
    else:
        palette = shared_palette(rgb, colours)
        table = _full_table(palette.getpalette()[: 3 * colours])
        frames = [_indexed(Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE), table) for f in rgb]
        options["palette"] = table  # written once, as the global colour table
    if colours == 255:
        frames = [with_transparent_index(frame, mask) for frame, mask in zip(frames, clear)]
        options["transparency"] = TRANSPARENT_INDEX
    return frames, options


_GIF_DISPOSAL_CODE = {"none": 1, "background": 2, "previous": 3}


def shared_palette(rgb_frames: np.ndarray, colours: int = 256) -> Image.Image:
    """A median-cut palette of `colours` from a strided sample of every frame (uint8 [N, H, W, 3])."""
    n, h, w, _ = rgb_frames.shape
    step = max(1, int(np.ceil(np.sqrt(n * h * w / _PALETTE_SAMPLE))))
    sample = rgb_frames[:, ::step, ::step].reshape(-1, 1, 3)
    return Image.fromarray(np.ascontiguousarray(sample)).quantize(colours, method=Image.Quantize.MEDIANCUT, kmeans=1)


def _full_table(flat: list[int]) -> bytes:
    """256 distinct RGB entries (the palette, then unused colours): Pillow's GIF writer maps frames onto the
    global table by colour, so every index must have a colour of its own."""
    used = {tuple(flat[i : i + 3]) for i in range(0, len(flat), 3)}
    entries = [tuple(flat[i : i + 3]) for i in range(0, len(flat), 3)]
    spare = (colour for colour in ((r, g, 255) for r in range(256) for g in range(256)) if colour not in used)
    entries += [next(spare) for _ in range(256 - len(entries))]
    return bytes(value for entry in entries for value in entry)


def _indexed(frame: Image.Image, table: bytes) -> Image.Image:
    out = Image.fromarray(np.asarray(frame), mode="P")
    out.putpalette(table)
    return out
