"""`swin2sr models` (list the embedded and official models) and `swin2sr models get NAME...` (download them).

`cli.py` lists :data:`COMMANDS` among its own.  The download bar is `cli.TextProgressBar` in megabytes; the
same bar serves `--model NAME` of every command (`model_argument`).  `cli` is imported where the bar is made,
not at the top, so this module imports on its own (cli.py imports it while loading).
"""

from __future__ import annotations

import argparse
import sys
from . import catalog

MB = 10**6


def add_models_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the embedded and official models; `models get NAME...` downloads official ones"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    get = actions.add_parser("get", help="download official models (short name or release file name)")
    get.add_argument("names", nargs="+", metavar="NAME", help=f"one of {', '.join(catalog.names())}, or 'all'")
    get.set_defaults(run=run_get)
    parser.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    """One line per model: name, whether it is here, size, Set5 PSNR, use, and the file's path."""
    from .loader import builtin_model_files

    folder = catalog.models_dir()
    rows = [(name, "embedded", path.stat().st_size / MB if path.is_file() else 0.0, None, "small, no download", path)
            for name, path in builtin_model_files().items()]  # fmt: skip
    for entry in catalog.CATALOG:
        path = folder / entry.file
        state = "downloaded" if path.is_file() else "not downloaded"
        rows.append((entry.name, state, entry.size_mb, entry.set5_psnr, entry.use, path))
    print(f"{'name':<15} {'state':<15} {'size':>8} {'Set5':>9}  use; file")
    for name, state, size, psnr, use, path in rows:
        quality = f"{psnr:.2f} dB" if psnr else "-"
        print(f"{name:<15} {state:<15} {size:>5.1f} MB {quality:>9}  {use}; {path}")
    print(f"official models are kept in {folder} (set {catalog.MODELS_DIR_ENV} to change it)")
    return 0


def run_get(args: argparse.Namespace) -> int:
    """Download each named model (checked before any download, so a typo costs nothing)."""
    from .loader import release_file

    entries = list(catalog.CATALOG) if args.names == ["all"] else [_entry(name) for name in args.names]
    for entry in entries:
        with download_bar(entry.file, args.quiet).beside_log_lines() as bar:
            path = release_file(entry, progress=bar)
        if not args.quiet:
            print(f"{entry.name}: {path}")
    return 0


def _entry(name: str) -> catalog.ReleaseModel:
    entry = catalog.find(name)
    if entry is None:
        raise ValueError(f"unknown official model {name!r}; choose from {', '.join(catalog.names())} (or 'all')")
    return entry


def download_bar(name: str, quiet: bool):
    """A `cli.TextProgressBar` in megabytes on stderr (silent with --quiet); it draws only once bytes arrive."""
    from .cli import TextProgressBar

    return TextProgressBar(None if quiet else sys.stderr, label=f"downloading {name}", per_unit=MB, unit=" MB")


def model_argument(name: str, quiet: bool) -> str:
    """`--model` ready to load: an official model's verified file (downloaded with a bar), else `name` as given."""
    from .loader import model_source

    with download_bar(name, quiet).beside_log_lines() as bar:
        return model_source(name, progress=bar)


COMMANDS = (add_models_command,)
