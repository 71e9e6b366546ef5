"""`python -m swin2sr ...` runs the command line (see swin2sr.cli)."""

from .cli import run

run()
