"""`swin2sr serve`: its flags, the environment knobs, and starting uvicorn (or Ray Serve with --ray).

cli.py lists `add_serve_command` among its COMMANDS; nothing heavy is imported until the command runs, and a
missing package of the `[serve]` extra is one line naming the extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
from pathlib import Path

from .. import cli
from . import require

log = logging.getLogger("swin2sr")

TOKEN_ENV = "SWIN2SR_SERVE_TOKEN"
LOOPBACK_NAMES = ("localhost",)


def add_serve_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the upscaler as a web service: a page at / and an HTTP API under /v1 (extra [serve])"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--model", action="append", default=None,
        help="builtin-x4 (default), a catalogue name or a checkpoint path; repeat to offer several (the first is "
        "the default, requests may choose among them)",
    )  # fmt: skip
    parser.add_argument("--queue", type=cli._positive_int, default=16, help="jobs that may wait (default 16)")
    parser.add_argument("--max-upload-mb", type=float, default=50, help="largest upload in MB (default 50)")
    parser.add_argument("--max-megapixels", type=float, default=40,
                        help="largest image in megapixels, all frames of an animation together (default 40)")
    parser.add_argument("--threads", type=cli._positive_int, default=None,
                        help="torch threads for CPU work (default: torch's; 1 is fastest on a busy shared machine)")
    parser.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                        help="allow half precision on CUDA (default: env FP16_ENABLE, else yes)")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                        help=f"require 'Authorization: Bearer TOKEN' on the API (default: env {TOKEN_ENV})")
    parser.add_argument("--keep-minutes", type=float, default=30, help="results are kept this long (default 30)")
    parser.add_argument("--drain-seconds", type=float, default=30,
                        help="on SIGTERM the running job gets this long to finish before it is cancelled (default 30)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where uploads and results go (default: temp)")
    ray = parser.add_argument_group("scale-out (pip install 'swin2sr-upscaler[serve,cluster]')")
    ray.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="run on Ray Serve (e.g. auto, ray://head:10001); without an address, on a local Ray",
    )  # fmt: skip
    ray.add_argument("--ray-replicas", type=cli._positive_int, default=None,
                     help="upscaling replicas (default: one per GPU, else 2 on the CPU)")
    ray.add_argument("--ray-threads", type=cli._positive_int, default=None, help="torch threads per CPU replica")
    cli.add_processing_options(parser)
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    require("fastapi", "uvicorn", "python_multipart", "prometheus_client")
    config = serve_config(args)
    warn_if_exposed(args.host, config.token)
    fetch_official_models(config.models, args.quiet)
    if args.ray is not None:
        from .ray import run_on_ray

        return run_on_ray(config, args)
    check_port_free(args.host, args.port)
    from .local import run_uvicorn

    return run_uvicorn(config, args.host, args.port, quiet=args.quiet, threads=args.threads)


def fetch_official_models(names: tuple[str, ...], quiet: bool) -> None:
    """Download any official model among `names` now, with the CLI's bar: offline or unreachable is one line before
    the server starts, not a failed first job (the workers then load the verified file by the same name)."""
    from ..cli_models import model_argument

    for name in names:
        model_argument(name, quiet)


def serve_config(args: argparse.Namespace):
    """The flags and knobs as a ServeConfig, every value checked here (one line) before anything loads."""
    from .. import settings
    from .service import ServeConfig

    if args.fp16 is not None:  # the flag wins over the environment, for this process and its workers
        os.environ["FP16_ENABLE"] = "true" if args.fp16 else "false"
    settings.fp16_enabled(), settings.tile_size(args.tile), settings.max_input_size(args.max_input_size)
    for name in ("max_upload_mb", "max_megapixels", "keep_minutes", "drain_seconds"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir} is not a folder; create it first")
    return ServeConfig(
        models=tuple(dict.fromkeys(args.model or ["builtin-x4"])),
        devices=_devices(args.device),
        upscale=dict(tile=args.tile, overlap=args.overlap, precision=args.precision,
                     max_input_size=args.max_input_size),
        queue=args.queue,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
        token=args.token,
        keep_seconds=args.keep_minutes * 60,
        drain_seconds=args.drain_seconds,
        data_dir=args.data_dir,
    )  # fmt: skip


def _devices(given: str | None) -> tuple[str, ...]:
    """--device as a list (cuda:0,cuda:1: one worker each); by default every GPU, else the CPU."""
    import torch

    if given:
        return tuple(dict.fromkeys(cli.resolve_device(name.strip()) for name in given.split(",")))
    if torch.cuda.is_available():
        return tuple(f"cuda:{index}" for index in range(torch.cuda.device_count()))
    return (cli.resolve_device(None),)


def warn_if_exposed(host: str, token: str | None) -> None:
    """A warning for any address but loopback: the service then serves whoever reaches this machine."""
    if host in LOOPBACK_NAMES or _is_loopback(host):
        return
    protection = "the API needs the token" if token else "anyone who reaches it can use it (set --token)"
    log.warning("warning: listening on %s, not only on this machine: %s; there is no TLS (put a reverse proxy "
                "with HTTPS in front)", host, protection)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """One line for a port already taken (or an address not on this machine), before the models load."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") \
                from None
