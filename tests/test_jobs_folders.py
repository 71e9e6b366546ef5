"""`swin2sr upscale DIR_OR_FILES... -o OUTDIR`: one job over many files, resumable, a bad file never fatal."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from PIL import Image

import swin2sr
from swin2sr import cli, jobs, upscale_files
from upscale_spy import UpscaleSpy

MODEL = ["--model", "builtin-x2"]


def _image(path, size=(16, 12), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """photos/a.png, photos/trip/b.jpg, photos/trip/day2/c.webp (and a hidden file that is ignored)."""
    root = tmp_path / "photos"
    for i, name in enumerate(("a.png", "trip/b.jpg", "trip/day2/c.webp")):
        _image(root / name, seed=i)
    _image(root / ".thumbs" / "x.png")
    return root


@pytest.fixture
def counting(monkeypatch):
    """Counts image files upscaled (every image unit goes through upscale_file)."""
    counting = UpscaleSpy(upscale_files.upscale_file)
    monkeypatch.setattr(upscale_files, "upscale_file", counting)
    return counting


def _outputs(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_folder_keeps_its_sub_folders_and_formats(photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL]) == 0
    assert _outputs(out) == ["a.png", "trip/b.jpg", "trip/day2/c.webp"]
    assert Image.open(out / "trip/day2/c.webp").size == (32, 24)
    assert "done 3, skipped 0, failed 0" in capsys.readouterr().err


def test_format_converts_every_image(photos, tmp_path):
    assert cli.main(["upscale", str(photos), "-o", str(tmp_path / "out"), *MODEL, "--format", "png"]) == 0
    assert _outputs(tmp_path / "out") == ["a.png", "trip/b.png", "trip/day2/c.png"]


def test_a_glob_keeps_paths_below_its_fixed_part(photos, tmp_path):
    assert cli.main(["upscale", f"{photos}/**/*.jpg", str(photos / "a.png"), "-o", str(tmp_path / "out"), *MODEL]) == 0
    assert _outputs(tmp_path / "out") == ["a.png", "trip/b.jpg"]


def test_the_model_is_loaded_once_and_one_bar_counts_every_tile(photos, tmp_path, monkeypatch, capsys):
    loads = []
    real_load = swin2sr.load_any_model
    monkeypatch.setattr(swin2sr, "load_any_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    assert cli.main(["upscale", str(photos), "-o", str(tmp_path / "out"), *MODEL, "--tile", "8", "--overlap", "2"]) == 0
    assert len(loads) == 1
    tiles = swin2sr.plan_upscale(real_load("builtin-x2"), 12, 16, tile=8, overlap=2).tiles_per_image
    bars = re.findall(r"upscaling 3 files \[[#-]+\] (\d+)/(\d+)", capsys.readouterr().err)
    assert tiles > 1 and bars[-1] == (str(3 * tiles),) * 2  # one bar over every tile of every file
    done = [int(d) for d, _ in bars]
    assert len({total for _, total in bars}) == 1 and done == sorted(done) and done[0] < 3 * tiles


def test_a_bad_file_in_the_middle_is_reported_and_skipped(photos, tmp_path, capsys):
    (photos / "trip" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL]) == 1
    assert _outputs(out) == ["a.png", "trip/b.jpg", "trip/day2/c.webp"]
    err = capsys.readouterr().err
    assert "done 3, skipped 0, failed 1" in err
    assert re.search(r"^  failed: trip/broken.png: .*broken.png is not a readable image", err, re.M)
    assert re.search(r"^failed: trip/broken.png", err, re.M)  # reported when it happens, on a line of its own
    assert "Traceback" not in err


def test_a_second_run_with_skip_existing_does_nothing(photos, tmp_path, counting, capsys):
    out = tmp_path / "out"
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL]) == 0
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL, "--skip-existing"]) == 0
    assert len(counting.calls) == 3  # all from the first run
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == written
    assert "done 0, skipped 3, failed 0" in capsys.readouterr().err


def test_an_interrupted_run_resumes_where_it_stopped(photos, tmp_path, monkeypatch, capsys):
    out, real = tmp_path / "out", upscale_files.upscale_file
    monkeypatch.setattr(upscale_files, "upscale_file", UpscaleSpy(real, interrupt_on=2))
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL]) == 130
    assert _outputs(out) == ["a.png"]  # finished files complete, nothing half-written
    assert "rerun with --skip-existing to resume" in capsys.readouterr().err
    resumed = UpscaleSpy(real)
    monkeypatch.setattr(upscale_files, "upscale_file", resumed)
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL, "--skip-existing"]) == 0
    assert len(resumed.calls) == 2
    assert _outputs(out) == ["a.png", "trip/b.jpg", "trip/day2/c.webp"]


def test_outputs_inside_the_input_folder_are_not_upscaled_again(photos, counting):
    out = photos / "x2"
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL]) == 0
    assert cli.main(["upscale", str(photos), "-o", str(out), *MODEL, "--skip-existing"]) == 0
    assert len(counting.calls) == 3 and _outputs(out) == ["a.png", "trip/b.jpg", "trip/day2/c.webp"]


def test_one_file_into_an_existing_folder_keeps_its_name(photos, tmp_path):
    (tmp_path / "out").mkdir()
    assert cli.main(["upscale", str(photos / "a.png"), "-o", str(tmp_path / "out"), *MODEL]) == 0
    assert _outputs(tmp_path / "out") == ["a.png"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["photos/a.png", "other/a.png"], "would both be written to"),
        (["empty"], "no images or videos found in"),
        (["missing", "photos"], "missing: no such file or folder"),
    ],
)
def test_job_mistakes_are_one_line_before_the_model_loads(photos, tmp_path, capsys, inputs, message):
    _image(tmp_path / "other" / "a.png")
    (tmp_path / "empty").mkdir()
    args = ["upscale", *(str(tmp_path / p) for p in inputs), "-o", str(tmp_path / "out"), "--model", "not-loaded"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "not-loaded" not in err


def test_a_folder_run_refuses_an_output_that_looks_like_a_file(photos, tmp_path, capsys):
    assert cli.main(["upscale", str(photos), "-o", str(tmp_path / "x4.png"), "--model", "not-loaded"]) == 1
    assert "looks like a file name" in capsys.readouterr().err and not (tmp_path / "x4.png").exists()


def test_units_and_results_are_plain_picklable_data(photos, tmp_path):
    job = jobs.build_job([photos], tmp_path / "out", jobs.JobOptions(model="builtin-x2", upscale={"tile": 8}))
    assert pickle.loads(pickle.dumps(job)) == job
    result = jobs.run_unit(jobs.load_job_model(job.options), job.units[0], job.options)
    assert pickle.loads(pickle.dumps(result)) == result and result.ok


def test_a_video_in_a_folder_is_one_unit_of_the_job(photos, tmp_path):
    pytest.importorskip("av")
    from videos import make_video, stream_facts

    (photos / "clips").mkdir()
    make_video(photos / "clips" / "clip.mp4", frames=3)
    assert cli.main(["upscale", str(photos), "-o", str(tmp_path / "out"), *MODEL]) == 0
    assert stream_facts(tmp_path / "out" / "clips" / "clip.mp4")["count"] == 3


def test_an_animated_gif_in_a_folder_keeps_every_frame(photos, tmp_path):
    frames = [Image.open(_image(tmp_path / f"f{i}.png", seed=i)).convert("P") for i in range(3)]
    frames[0].save(photos / "anim.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    assert cli.main(["upscale", str(photos), "-o", str(tmp_path / "out"), *MODEL]) == 0
    with Image.open(tmp_path / "out" / "anim.gif") as result:
        assert (result.n_frames, result.size) == (3, (32, 24))
