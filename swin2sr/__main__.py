"""`python -m swin2sr ...` runs the command line (see swin2sr.cli)."""

import sys

from .cli import main

sys.exit(main())
