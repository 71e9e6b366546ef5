"""`swin2sr faces` and `swin2sr two-stage` on image files, with tiny random checkpoints and a box list."""

from __future__ import annotations

import numpy as np
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict
from PIL import Image

from swin2sr.cli import main


def _checkpoint(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.pth"
    torch.save(random_official_state_dict(TINY_CONFIGS[name], seed=1), path)
    return str(path)


def _photo(tmp_path) -> str:
    rng = np.random.default_rng(0)
    path = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_faces_writes_the_image_the_mask_and_the_debug_crops(tmp_path):
    out, mask, debug = tmp_path / "out.png", tmp_path / "mask.png", tmp_path / "crops"
    code = main(["faces", _photo(tmp_path), "-o", str(out), "--model", _checkpoint(tmp_path, "tiny_x2"),
                 "--boxes", "10,10,30,30;30,5,44,20", "--face-size", "96", "--mask-output", str(mask),
                 "--debug-dir", str(debug)])
    assert code == 0
    assert Image.open(out).size == (96, 80) and Image.open(mask).size == (96, 80)
    crops = sorted(debug.glob("*.png"))
    assert len(crops) == 2 and max(Image.open(crops[0]).size) == 96


def test_two_stage_is_exactly_x4(tmp_path):
    out = tmp_path / "out.png"
    code = main(["two-stage", _photo(tmp_path), "-o", str(out), "--stage1", _checkpoint(tmp_path, "tiny_x4"),
                 "--stage2", _checkpoint(tmp_path, "tiny_x2"), "--boxes", "8,8,30,30"])
    assert code == 0 and Image.open(out).size == (192, 160)


def test_two_stage_refuses_max_input_size_in_one_line_rather_than_ignoring_it(tmp_path, capsys):
    out = tmp_path / "out.png"
    code = main(["two-stage", _photo(tmp_path), "-o", str(out), "--stage1", _checkpoint(tmp_path, "tiny_x4"),
                 "--stage2", _checkpoint(tmp_path, "tiny_x2"), "--max-input-size", "16"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and "drop --max-input-size" in err
    assert not out.exists()


def test_a_bad_box_list_is_a_one_line_error(tmp_path, capsys):
    code = main(["faces", _photo(tmp_path), "-o", str(tmp_path / "o.png"), "--model", _checkpoint(tmp_path, "tiny_x2"),
                 "--boxes", "30,30,10,10"])
    assert code == 1 and "x1 > x0" in capsys.readouterr().err
