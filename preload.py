"""AUTOMATIC1111 / Forge: command-line option for this extension, read before the WebUI parses its arguments.

The WebUI hands `--swin2sr-models-path` to the upscaler class `UpscalerSwin2SR` (option name = class name
lower-cased, without "upscaler", plus "_models_path").
"""

import os

from modules import paths


def preload(parser):
    parser.add_argument(
        "--swin2sr-models-path", type=str, default=os.path.join(paths.models_path, "Swin2SR"),
        help="Folder with Swin2SR checkpoints (.pth, .safetensors) for the Swin2SR upscaler extension.",
    )
