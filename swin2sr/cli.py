"""The `swin2sr` command line: `swin2sr info CHECKPOINT`, `swin2sr upscale INPUT -o OUTPUT`.

Each subcommand is one `add_<name>_command(subparsers)` function listed in
`COMMANDS`; it declares its arguments and sets `run` to the function doing
the work (which returns the exit code).  Library errors the user can cause
(`CheckpointError`, `ValueError`) are printed as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

log = logging.getLogger("swin2sr")

DEBUG_ENV = "SWIN2SR_DEBUG"  # set to 1 for tracebacks, like --debug


def add_info_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print the detected Swin2SR variant and configuration")
    parser.add_argument("checkpoint", help="a .pth or .safetensors file, or builtin-x4 / builtin-x2")
    parser.set_defaults(run=run_info)


def run_info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .loader import build_model, read_checkpoint

    checkpoint = read_checkpoint(args.checkpoint)
    build_model(checkpoint)  # the checks a load makes (shapes, dtypes, finite values): info refuses what upscale does
    params = sum(t.numel() for t in checkpoint.state.values())
    print(f"file:       {checkpoint.origin}")
    print(f"format:     {', '.join(checkpoint.notes)}")
    print(f"variant:    {checkpoint.variant}")
    print(f"scale:      x{checkpoint.config.scale}")
    print(f"parameters: {params:,}")
    for name, value in asdict(checkpoint.config).items():
        print(f"  {name} = {value!r}")
    return 0


def add_upscale_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "upscale", help="upscale images (animated GIF/APNG/WebP: every frame) and videos: files, folders or globs"
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT",
        help="image or video files, folders (searched recursively) or quoted globs such as 'photos/**/*.jpg'",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--output", type=Path, required=True,
        help="for one file: the output file (its suffix picks the format); otherwise the output folder, "
        "where sub-folders are kept",
    )  # fmt: skip
    parser.add_argument(
        "--model", default="builtin-x4",
        help="checkpoint path, builtin-x4 / builtin-x2, or an official model (see `swin2sr models`; downloaded once)",
    )  # fmt: skip
    parser.add_argument("--skip-existing", action="store_true", help="leave existing outputs alone (resume a run)")
    parser.add_argument(
        "--format", choices=("png", "jpg", "webp", "tif"), default=None,
        help="folders: write every image in this format (default: the input's own, PNG where it cannot be written)",
    )  # fmt: skip
    video = parser.add_argument_group("video")
    video.add_argument("--codec", default=None, help="FFmpeg encoder (default libx264; libvpx-vp9 for .webm)")
    video.add_argument("--crf", type=int, default=None, help="encoder quality, lower is better (default 18)")
    video.add_argument(
        "--frames-per-batch", type=_positive_int, default=4, help="video and animation frames upscaled together"
    )
    ray = parser.add_argument_group("cluster (pip install swin2sr-upscaler[cluster])")
    ray.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="run on a Ray cluster (e.g. auto, ray://head:10001); without an address, on a local Ray",
    )  # fmt: skip
    ray.add_argument("--ray-actors", type=_positive_int, default=None, help="workers (default: one per GPU)")
    ray.add_argument("--ray-threads", type=_positive_int, default=None, help="torch threads per CPU-only worker")
    add_processing_options(parser)
    parser.set_defaults(run=run_upscale)


def add_processing_options(parser: argparse.ArgumentParser) -> None:
    """Device, precision and tiling flags, shared by every command that runs a model."""
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cuda when available)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    parser.add_argument("--tile", type=_tile_arg, default="auto", help="tile side in input pixels, or auto")
    parser.add_argument("--overlap", type=_count_arg, default=16, help="tile overlap in input pixels (default 16)")
    parser.add_argument(
        "--max-input-size",
        type=_count_arg,
        default=None,
        help="downscale inputs whose longest side exceeds this first (0: never; default: env MAX_INPUT_SIZE or "
        "1024, or 0 when --tile is given)",
    )


def processing_options(args: argparse.Namespace) -> dict:
    """Keyword arguments for swin2sr.upscale from the shared flags; an explicit tile means full resolution."""
    max_input = args.max_input_size
    if max_input is None and args.tile != "auto":
        max_input = 0
    return dict(
        tile=args.tile,
        overlap=args.overlap,
        precision=args.precision,
        max_input_size=max_input,
        device=resolve_device(args.device),
    )


def _tile_arg(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile must be a number of pixels or 'auto', not {value!r}") from None
    if tile <= 0:
        raise argparse.ArgumentTypeError("--tile must be positive")
    return tile


def _count_arg(value: str) -> int:
    """A whole number >= 0 (argparse prints the one-line error naming the flag)."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels, not {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {count}")
    return count


def resolve_device(name: str | None) -> str:
    """The --device value after checking it exists here (one-line error otherwise); default cuda if present."""
    import torch

    from .arguments import check_device

    if name:
        try:
            return str(check_device(name))
        except ValueError as exc:
            raise ValueError(f"--device: {exc}") from None
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_upscale(args: argparse.Namespace) -> int:
    from . import jobs
    from .cli_models import model_argument

    options = jobs.JobOptions(
        model=model_argument(args.model, args.quiet),
        upscale=processing_options(args),
        video=jobs.VideoOptions(codec=args.codec, crf=args.crf, frames_per_batch=args.frames_per_batch),
        image_format=f".{args.format}" if args.format else None,
    )
    job = jobs.build_job(args.inputs, args.output, options, skip_existing=args.skip_existing)
    if not job.units:
        print(jobs.JobSummary([], job.skipped).text(), file=sys.stderr)
        return 0
    label = f"upscaling {job.units[0].name}" if len(job.units) == 1 else f"upscaling {len(job.units)} files"
    with TextProgressBar(sys.stderr if not args.quiet else None, label=label).beside_log_lines() as bar:
        summary = _run_on_ray(job, args, bar) if args.ray is not None else _run_here(job, bar)
    if len(job.units) == 1 and not job.skipped:  # one file: the familiar one-line error (the unit logged its write)
        if summary.failed:
            raise ValueError(summary.failed[0].reason)
    elif summary.exit_code or not args.quiet:
        print(summary.text(), file=sys.stderr)
    return summary.exit_code


def _run_here(job, bar):
    from . import jobs

    model = jobs.load_job_model(job.options)
    log.info("model: %s", model.variant)
    return jobs.run_job(model, job, bar)


def _run_on_ray(job, args: argparse.Namespace, bar):
    """The same job on Ray; each worker picks its own device (its GPU, else its CPUs) unless --device names one."""
    from dataclasses import replace

    from .cluster import ClusterOptions, run_job_on_ray

    options = replace(job.options, upscale={**job.options.upscale, "device": args.device})
    cluster = ClusterOptions(address=args.ray or None, actors=args.ray_actors, threads=args.ray_threads)
    return run_job_on_ray(replace(job, options=options), cluster, bar)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {value!r}")
    return int(value)


class TextProgressBar:
    """A one-line progress bar on a text stream, fed by swin2sr.upscale's progress(done, total) callback.

    Work done in a single step draws nothing; longer work redraws the line in place.  No stream: silent.
    """

    def __init__(self, stream, label: str = "", width: int = 30, per_unit: int = 1, unit: str = "") -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.per_unit, self.unit = per_unit, unit  # counts shown as done/per_unit (e.g. bytes as MB)
        self.start = time.monotonic()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if self.stream is None or total <= 1:
            return
        filled = self.width * done // total
        elapsed = time.monotonic() - self.start
        bar = "#" * filled + "-" * (self.width - filled)
        counts = f"{done}/{total}" if self.per_unit == 1 else f"{done / self.per_unit:.1f}/{total / self.per_unit:.1f}"
        self.stream.write(f"\r{self.label} [{bar}] {counts}{self.unit}, {elapsed:.0f} s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logging filter: a log line printed while the bar is drawn starts on a line of its own."""
        self.close()
        return True

    @contextmanager
    def beside_log_lines(self):
        """Context: log lines do not run into the bar (it is redrawn below them); closed at the end."""
        handlers = logging.getLogger().handlers
        for handler in handlers:
            handler.addFilter(self)
        try:
            yield self
        finally:
            for handler in handlers:
                handler.removeFilter(self)
            self.close()


# --- entry point -----------------------------------------------------------------------------------

from .cli_models import COMMANDS as MODEL_COMMANDS  # noqa: E402  (models; imports this module)
from .cli_pipelines import COMMANDS as PIPELINE_COMMANDS  # noqa: E402  (faces, two-stage; imports this module)
from .serve.command import add_serve_command  # noqa: E402  (imports this module; the service loads lazily)

COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_info_command,
    add_upscale_command,
    *PIPELINE_COMMANDS,
    *MODEL_COMMANDS,
    add_serve_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swin2sr", description="Swin2SR image super-resolution")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument("--debug", action="store_true", help=f"print the traceback of an error (or set {DEBUG_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and exit code 1 (130 on Ctrl-C) unless --debug."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(message)s", level=logging.WARNING if args.quiet else logging.INFO, force=True)
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    stop_on_sigterm()
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"\nswin2sr {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"swin2sr {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 1


def run() -> NoReturn:
    """The `swin2sr` command (console script and `python -m swin2sr`): `main` in a process of its own.

    The process is ours, so its allocator is set to give freed memory back at once
    (`system.release_freed_memory_promptly`), and it ends at once after Python's own clean-up (atexit: Ray,
    logging, temporary files): what is skipped is the native libraries' teardown, which gains nothing at
    exit and, with a CUDA build of torch, pages about 0.13 GB of the CUDA libraries' code in just to run
    their destructors -- more than a small run's peak (measured: 0.77 -> 0.89 GB RSS for a 400x300 output).
    Callers of `main` inside their own process (tests, scripts) keep their allocator and their exit.
    """
    from . import system

    system.release_freed_memory_promptly()
    code = main()
    atexit._run_exitfuncs()  # noqa: SLF001 - the documented atexit handlers, run as at a normal exit
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def stop_on_sigterm() -> None:
    """End a run on SIGTERM (`kill`, a scheduler, a closed session) the way Ctrl-C ends it.

    Python's default for SIGTERM is to die at once, which leaves the temporary `.part` file of an output being
    written; raising KeyboardInterrupt instead runs the same clean-up as Ctrl-C.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def error_line(exc: BaseException) -> str:
    """One line for any error: our messages as they are (written for the user), others with their kind."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        text = "out of memory even at the smallest tile; try --precision fp16/bf16, --device cpu or a smaller input"
    elif isinstance(exc, (ValueError, TypeError)):  # CheckpointError included
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback and report it)"
    return " ".join(text.split())
