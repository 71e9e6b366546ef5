"""A1111's `torch.load` replacement (v1.10.1 modules/safe.py, behaviour only): it checks the names inside a
zip checkpoint against the layout of older torch versions, and on any surprise prints an error and returns
None instead of loading. Files written by current torch (which adds `.format_version`, `.storage_alignment`)
are refused this way, which is how the WebUI's own Swin2SR/SwinIR path breaks (#16350). Forge does not do this.
"""

import re
import sys
import zipfile

import torch

ALLOWED_NAMES = re.compile(r"^([^/]+)/((data/\d+)|version|byteorder|(\.data/serialization_id)|(data\.pkl))$")
unsafe_torch_load = torch.load


def load(filename, *args, **kwargs):
    try:
        if zipfile.is_zipfile(filename):
            with zipfile.ZipFile(filename) as archive:
                for name in archive.namelist():
                    if not ALLOWED_NAMES.match(name):
                        raise ValueError(f"bad file inside {filename}: {name}")
    except Exception as exc:
        print(f"Error verifying pickled file from {filename}: {exc}", file=sys.stderr)
        return None
    return unsafe_torch_load(filename, *args, **kwargs)


torch.load = load
