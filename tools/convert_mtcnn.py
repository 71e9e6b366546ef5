"""Write swin2sr/weights/mtcnn.safetensors from the MTCNN weights inside a facenet-pytorch wheel.

facenet-pytorch (MIT) ships pnet.pt, rnet.pt and onet.pt as plain state dicts.  Install it without its
old pins (`pip install --no-deps facenet-pytorch==2.6.0`) or unpack the wheel, then run
`PYTHONPATH=. python tools/convert_mtcnn.py [path/to/facenet_pytorch]`.  The package is never imported:
the files are read with weights_only=True and renamed, in order, onto swin2sr.mtcnn.Stage's parameters
(O-Net's landmark head is dropped).  The licence text goes into the file's metadata.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from swin2sr.mtcnn import ONET, PNET, RNET, WEIGHTS, Stage

STAGES = {"pnet": Stage(PNET), "rnet": Stage(RNET, (576, 128)), "onet": Stage(ONET, (1152, 256))}


def package_folder() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None:
        sys.exit("facenet-pytorch not found: pip install --no-deps facenet-pytorch==2.6.0, or pass its folder")
    return Path(next(iter(spec.submodule_search_locations)))


def main() -> None:
    folder = package_folder()
    state = {}
    for name, stage in STAGES.items():
        source = torch.load(folder / "data" / f"{name}.pt", weights_only=True)
        source = {k: v for k, v in source.items() if not k.startswith("dense6_3")}  # landmarks: unused
        target = stage.state_dict()
        if len(source) != len(target):
            sys.exit(f"{name}: {len(source)} tensors in the wheel, {len(target)} expected")
        for (src, tensor), dst in zip(source.items(), target):
            if tensor.shape != target[dst].shape:
                sys.exit(f"{name}: {src} {tuple(tensor.shape)} does not fit {dst} {tuple(target[dst].shape)}")
            state[f"{name}.{dst}"] = tensor.float().contiguous()
    licence = next(folder.parent.glob("facenet_pytorch-*.dist-info/LICENSE*"), None)
    metadata = {
        "source": "facenet-pytorch 2.6.0 (PyPI wheel), facenet_pytorch/data/{pnet,rnet,onet}.pt",
        "license": licence.read_text() if licence else "MIT License, Copyright (c) 2019 Timothy Esler",
    }
    save_file(state, WEIGHTS, metadata=metadata)
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size:,} bytes, {len(state)} tensors)")


if __name__ == "__main__":
    main()
