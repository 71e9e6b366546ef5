"""Hits and false alarms of each offline face detector on real photos that ship inside PyPI wheels.

Needs the measurement-only packages of requirements-faces.txt (scikit-image, matplotlib, scikit-learn);
measures every detector that loads here (the embedded MTCNN always; Haar with OpenCV 4.x).
Face images: skimage astronaut and camera, matplotlib grace_hopper, the two side by side (two faces), and the
astronaut at 1/2 and 1/4 size (small faces). No-face images: sklearn china/flower, skimage chelsea (a cat),
coffee, rocket, horse, brick.  A hit is a box with IoU >= 0.3 against a hand-marked face box; every other
box is a false alarm.  Run: PYTHONPATH=. python benchmarks/bench_faces_detection.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from swin2sr.faces import FaceBox, available_detectors, detect_faces, get_detector

# Hand-marked face boxes (x0, y0, x1, y1), checked by drawing them over each photo.
ASTRONAUT_FACE = (175, 60, 275, 175)
HOPPER_FACE = (160, 130, 370, 340)
CAMERA_FACE = (195, 100, 265, 195)


def _rgb(array: np.ndarray) -> np.ndarray:
    return np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]


def photos() -> list[tuple[str, np.ndarray, list[tuple[float, ...]]]]:
    from matplotlib import cbook
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_images

    astronaut = data.astronaut()
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    pair = np.zeros((600, 512 + 512, 3), np.uint8)
    pair[:512, :512], pair[:, 512:] = astronaut, hopper
    shifted = (HOPPER_FACE[0] + 512, HOPPER_FACE[1], HOPPER_FACE[2] + 512, HOPPER_FACE[3])

    def resized(img: np.ndarray, f: float) -> np.ndarray:
        size = (round(img.shape[1] * f), round(img.shape[0] * f))
        return np.asarray(Image.fromarray(img).resize(size, Image.LANCZOS))

    china, flower = load_sample_images().images
    return [
        ("astronaut 512", astronaut, [ASTRONAUT_FACE]),
        ("grace_hopper 512x600", hopper, [HOPPER_FACE]),
        ("camera 512 (grey)", _rgb(data.camera()), [CAMERA_FACE]),
        ("astronaut+hopper 1024x600", pair, [ASTRONAUT_FACE, shifted]),
        ("astronaut 1/2 (face ~50 px)", resized(astronaut, 0.5), [tuple(v / 2 for v in ASTRONAUT_FACE)]),
        ("astronaut 1/4 (face ~25 px)", resized(astronaut, 0.25), [tuple(v / 4 for v in ASTRONAUT_FACE)]),
        ("astronaut x4 2048", resized(astronaut, 4), [tuple(v * 4 for v in ASTRONAUT_FACE)]),
        ("sklearn china", china, []),
        ("sklearn flower", flower, []),
        ("chelsea (cat)", data.chelsea(), []),
        ("coffee", data.coffee(), []),
        ("rocket", data.rocket(), []),
        ("horse (grey)", _rgb((data.horse() * 255).astype(np.uint8)), []),
        ("brick (grey)", _rgb(data.brick()), []),
    ]


def iou(a: FaceBox, b: tuple[float, ...]) -> float:
    w = max(0.0, min(a.x1, b[2]) - max(a.x0, b[0]))
    h = max(0.0, min(a.y1, b[3]) - max(a.y0, b[1]))
    inter = w * h
    return inter / (a.area + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def main() -> None:
    torch.set_num_threads(2)
    rows = photos()
    print(f"detectors available: {available_detectors()}")
    for name in available_detectors():
        get_detector(name)(np.zeros((64, 64, 3), np.uint8))  # warm-up
        hits = misses = alarms = 0
        times = []
        for label, img, truth in rows:
            tensor = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
            start = time.perf_counter()
            boxes = detect_faces(tensor, name)
            times.append(time.perf_counter() - start)
            found = [any(iou(b, t) >= 0.3 for b in boxes) for t in truth]
            alarm = sum(not any(iou(b, t) >= 0.3 for t in truth) for b in boxes)
            hits, misses, alarms = hits + sum(found), misses + found.count(False), alarms + alarm
            shown = ", ".join(f"[{b.x0:.0f},{b.y0:.0f},{b.x1:.0f},{b.y1:.0f} p={b.score:.2f}]" for b in boxes)
            ms = times[-1] * 1000
            print(f"  {name:6s} {label:28s} faces {len(truth)} hits {sum(found)} false {alarm}  {ms:6.0f} ms  {shown}")
        total = sum(len(t) for _, _, t in rows)
        print(f"{name}: hits {hits}/{total}, missed {misses}, false alarms {alarms} "
              f"(on {len(rows)} images), median {np.median(times)*1000:.0f} ms per image")


if __name__ == "__main__":
    main()
