"""The WebUI command-line flags the extension reads (a subset of the real parser)."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--no-half", action="store_true")
parser.add_argument("--use-cpu", nargs="+", default=[], type=str.lower)
parser.add_argument("--lowvram", action="store_true")
parser.add_argument("--medvram", action="store_true")
parser.add_argument("--medvram-sdxl", action="store_true")
parser.add_argument("--skip-install", action="store_true")
