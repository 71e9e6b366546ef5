"""Reading and writing, one module per family, no model code.

`images`: PIL / numpy / torch <-> float [B, C, H, W] (what kind the caller gave, and giving it back).
`image_files`: image files in and out with their mode, bit depth, EXIF, ICC and DPI.
`streaming`: PNG / TIFF writers fed row band by row band (huge outputs never held whole), atomic.
The file functions other modules need are re-exported here: `from swin2sr.io import read_image`.
"""

from .image_files import (
    OUTPUT_FORMATS,
    ImageFileInfo,
    OutputFormat,
    check_image_file,
    check_output_path,
    output_format_for,
    read_image,
    write_image,
)

__all__ = [
    "OUTPUT_FORMATS",
    "ImageFileInfo",
    "OutputFormat",
    "check_image_file",
    "check_output_path",
    "output_format_for",
    "read_image",
    "write_image",
]
