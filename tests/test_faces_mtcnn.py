"""The embedded MTCNN detector: it finds faces in real photos, nothing in still lifes, and reproduces
facenet-pytorch's boxes (when that optional package is installed, with --no-deps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swin2sr.faces import detect_faces, get_detector
from swin2sr.mtcnn import MTCNN

SET14 = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "Set14" / "HR"


def photo(name: str) -> np.ndarray:
    path = SET14 / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared benchmark data, used here only to evaluate the detector)")
    return np.asarray(Image.open(path).convert("RGB")).copy()


def as_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1) / 255


def test_auto_is_the_embedded_mtcnn_and_finds_the_face_in_foreman():
    (face,) = detect_faces(as_tensor(photo("foreman.png")), "auto")
    assert face.score > 0.99
    assert 150 < (face.x0 + face.x1) / 2 < 210 and 140 < (face.y0 + face.y1) / 2 < 200 and 100 < face.width < 160


def test_no_face_in_a_still_life():
    assert detect_faces(as_tensor(photo("pepper.png")), "mtcnn") == []


def test_boxes_match_facenet_pytorch():
    facenet = pytest.importorskip("facenet_pytorch", reason="optional reference: pip install --no-deps facenet-pytorch")
    rgb = photo("foreman.png")
    with torch.inference_mode():
        boxes, probs = facenet.MTCNN(keep_all=True).detect(Image.fromarray(rgb))
    ours = torch.tensor([row[:4] for row in MTCNN()(rgb)])
    assert torch.allclose(ours, torch.tensor(np.asarray(boxes, dtype=np.float32)), atol=1e-3)


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="reinstall"):
        MTCNN(tmp_path / "none.safetensors")
    assert callable(get_detector("mtcnn"))
