"""CLI subcommands for the pipelines: `swin2sr faces` and `swin2sr two-stage`.

`cli.py` lists :data:`COMMANDS` among its own; this module reaches the shared helpers through the `cli`
module object (resolved at call time, so the mutual import is harmless).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import cli
from .cli_models import model_argument
from .faces import DETECTORS
from .io import check_output_path, images, read_image, write_image

log = logging.getLogger("swin2sr")


def add_faces_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("faces", help="upscale, then re-upscale each face on its own (Face Region Refine)")
    parser.add_argument("input", type=Path, help="image to upscale (or the source of --base)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image; the suffix picks the format")
    parser.add_argument("--model", default="builtin-x4", help="checkpoint for the whole image (default builtin-x4)")
    parser.add_argument("--face-model", default=None, help="checkpoint for the faces (default: --model)")
    parser.add_argument("--base", type=Path, default=None, help="an already upscaled INPUT: refine its faces only")
    _add_region_options(parser)
    parser.add_argument("--face-index", type=int, default=None, help="refine only this face (0 = largest)")
    parser.add_argument("--face-size", type=int, default=1024, help="face crops are processed at this size (px)")
    parser.add_argument("--mask-output", type=Path, default=None, help="also write the union face mask here")
    parser.add_argument("--debug-dir", type=Path, default=None, help="write each crop at its processed resolution")
    cli.add_processing_options(parser)
    parser.set_defaults(run=run_faces)


def add_two_stage_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("two-stage", help="Real-ESRGAN (any spandrel model) x2, then Swin2SR x2: exactly x4")
    parser.add_argument("input", type=Path, help="image to upscale")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image; the suffix picks the format")
    parser.add_argument("--stage1", required=True, help="stage-1 checkpoint (Real-ESRGAN x2/x4, Compact, ...)")
    parser.add_argument("--stage2", default="builtin-x2", help="stage-2 Swin2SR x2 checkpoint (default builtin-x2)")
    parser.add_argument("--faces", action="store_true", help="run stage 2 only on detected faces")
    _add_region_options(parser)
    cli.add_processing_options(parser)
    parser.set_defaults(run=run_two_stage)


def _load(name: str, options: dict, quiet: bool):
    """A model by path or name; an official model is downloaded first with a bar (cli_models.model_argument)."""
    import swin2sr

    return swin2sr.load_any_model(model_argument(name, quiet), device=options["device"])


def _add_region_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", choices=DETECTORS, default="auto", help="face detector (default auto)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--mask", type=Path, default=None, help="a mask image (white = refine) instead of detection")
    given.add_argument("--boxes", type=_boxes_arg, default=None, help="'x0,y0,x1,y1;...' in input pixels")
    parser.add_argument("--threshold", type=float, default=0.5, help="detector confidence (default 0.5)")
    parser.add_argument("--min-size", type=float, default=16, help="ignore faces smaller than this (px, default 16)")
    parser.add_argument("--max-faces", type=int, default=0, help="only the k largest faces (0 = all)")
    parser.add_argument("--crop-factor", type=float, default=2.5, help="crop = face box x this (default 2.5)")
    parser.add_argument("--feather", type=float, default=0.3, help="soft edge, fraction of the face radius")
    parser.add_argument("--no-color-match", dest="color_match", action="store_false", help="paste without toning")


def _boxes_arg(value: str) -> list[tuple[float, ...]]:
    try:
        boxes = [tuple(float(v) for v in part.split(",")) for part in value.split(";") if part.strip()]
    except ValueError:
        boxes = []
    if not boxes or any(len(box) != 4 for box in boxes):
        raise argparse.ArgumentTypeError(f"takes 'x0,y0,x1,y1' boxes separated by ';', not {value!r}")
    return boxes


def _region_options(args: argparse.Namespace) -> dict:
    """Detection, selection and paste options shared by both subcommands."""
    return dict(detector=args.detector, threshold=args.threshold, min_size=args.min_size, max_faces=args.max_faces,
                crop_factor=args.crop_factor, feather=args.feather, color_match=args.color_match)


def _given_regions(args: argparse.Namespace) -> dict:
    """{"mask": ...} or {"boxes": ...} when the user gave regions, else {} (detect)."""
    if args.mask is not None:
        return {"mask": _read_mask(args.mask)}
    return {"boxes": args.boxes} if args.boxes is not None else {}


def _read_mask(path: Path):
    """A mask file of any mode or depth as float [H, W] in 0..1 (its colour channels averaged, alpha ignored)."""
    batch, kind = images.read_batch(read_image(path)[0])
    return batch[0, : 1 if kind.gray else 3].mean(0)


def run_faces(args: argparse.Namespace) -> int:
    import swin2sr

    check_output_path(args.output)
    if args.mask_output:
        check_output_path(args.mask_output)
    options = cli.processing_options(args)
    image, info = read_image(args.input)
    base = read_image(args.base)[0] if args.base else None
    model = _load(args.model, options, args.quiet)
    face_model = _load(args.face_model, options, args.quiet) if args.face_model else None
    bar = cli.TextProgressBar(sys.stderr, label=f"refining {args.input.name}")
    out, mask, regions = swin2sr.refine_faces(
        image, model, base=base, face_model=face_model, face_index=args.face_index,
        face_size=args.face_size, debug=args.debug_dir is not None, progress=bar,
        **_given_regions(args), **_region_options(args), **options,
    )  # fmt: skip
    bar.close()
    for region in regions:
        log.info("face %s: crop %s -> %s processed at %dx%d", _box_text(region.box), region.crop, region.place,
                 region.processed_size[1], region.processed_size[0])
    log.info("%d face(s) refined", len(regions))
    write_image(out, args.output, info)
    if args.mask_output:
        write_image(_to_gray_image(mask[0]), args.mask_output)
    if args.debug_dir:
        for i, region in enumerate(regions):
            crop = images.finish(region.crop_image, None, images.ImageKind("pil", 3, mode="RGB"))
            write_image(crop, args.debug_dir / f"face{i}.png")
    log.info("wrote %s", args.output)
    return 0


def run_two_stage(args: argparse.Namespace) -> int:
    import swin2sr

    if args.max_input_size is not None:  # refused, not ignored: the user asked for a downscale that cannot happen
        raise ValueError("two-stage always runs at full resolution (its output is exactly x4 the input); "
                         "drop --max-input-size, or downscale the input first")
    check_output_path(args.output)
    options = cli.processing_options(args)
    options.pop("max_input_size")  # None here (checked above); two_stage takes no such option
    image, info = read_image(args.input)
    stage1 = _load(args.stage1, options, args.quiet)
    stage2 = _load(args.stage2, options, args.quiet)
    regions = next(iter(_given_regions(args).values()), "faces" if args.faces else None)
    bar = cli.TextProgressBar(sys.stderr, label=f"two-stage {args.input.name}")
    out, report = swin2sr.two_stage(image, stage1, stage2, regions=regions, progress=bar,
                                    return_report=True, **_region_options(args), **options)
    bar.close()
    log.info("%s", report)
    write_image(out, args.output, info)
    log.info("wrote %s", args.output)
    return 0


COMMANDS = (add_faces_command, add_two_stage_command)


def _box_text(box) -> str:
    return f"[{box.x0:.0f},{box.y0:.0f},{box.x1:.0f},{box.y1:.0f}] p={box.score:.2f}"


def _to_gray_image(mask):
    from PIL import Image

    return Image.fromarray((mask.clamp(0, 1) * 255).round().byte().numpy(), mode="L")
