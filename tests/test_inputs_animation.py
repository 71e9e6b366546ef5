"""Animated GIF, APNG and animated WebP: every frame upscaled, written back with durations, loop and disposal.

The CLI's model is NearestX2, so the frames a viewer shows are known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from input_fixtures import (
    NearestX2,
    frames,
    gif_local_palettes,
    nearest2,
    upscale_file,
    write_animation,
)
from PIL import Image

import swin2sr
from swin2sr.io import animation
from swin2sr.upscale_files import upscale_frames

DURATIONS = [50, 70, 90]
FORMATS = {".gif": "GIF", ".png": "PNG", ".webp": "WEBP"}


def source_animation(tmp_path, suffix: str, alpha: bool = False, **options):
    extra = {"lossless": True} if suffix == ".webp" else {}
    options = {"duration": DURATIONS, "loop": 0, **extra, **options}
    return write_animation(tmp_path / f"in{suffix}", frames(alpha=alpha), **options)


@pytest.mark.parametrize("given", sorted(FORMATS))
@pytest.mark.parametrize("wanted", sorted(FORMATS))
def test_every_frame_is_upscaled_with_its_duration_in_any_animated_format(given, wanted, nearest_model, tmp_path):
    source = source_animation(tmp_path, given)
    out = tmp_path / f"out{wanted}"
    assert upscale_file(source, out) == 0
    clip = animation.read_animation(out)
    assert (clip.format, clip.frames.shape[:3], clip.durations) == (FORMATS[wanted], (3, 24, 32), DURATIONS)
    assert clip.loop == 0
    expected = np.stack([nearest2(np.asarray(f)) for f in frames()])
    assert np.array_equal(clip.frames, expected)  # flat colours survive even the GIF palette exactly


@pytest.mark.parametrize("loop", [None, 0, 3], ids=["once", "forever", "three-times"])
def test_the_loop_count_is_kept(loop, nearest_model, tmp_path):
    options = {} if loop is None else {"loop": loop}
    source = write_animation(tmp_path / "in.gif", frames(), duration=DURATIONS, **options)
    assert upscale_file(source, tmp_path / "out.gif") == 0
    assert animation.read_animation(tmp_path / "out.gif").loop == loop


@pytest.mark.parametrize("suffix", [".gif", ".png"])
@pytest.mark.parametrize("disposal", ["background", "none"])
def test_the_disposal_is_kept(suffix, disposal, nearest_model, tmp_path):
    code = {".gif": {"none": 1, "background": 2}, ".png": {"none": 0, "background": 1}}[suffix][disposal]
    source = write_animation(tmp_path / f"in{suffix}", frames(), duration=DURATIONS, loop=0, disposal=code)
    assert upscale_file(source, tmp_path / f"out{suffix}") == 0
    assert animation.read_animation(tmp_path / f"out{suffix}").disposals[1:] == [disposal] * 2


def test_a_transparent_gif_still_has_one_colour_table(tmp_path):
    clip = animation.Animation(np.stack([np.asarray(f) for f in frames(alpha=True)]), DURATIONS, 0, None, "PNG")
    animation.write_animation(clip, tmp_path / "o.gif")
    assert gif_local_palettes(tmp_path / "o.gif") == [False, False, False]


@pytest.mark.parametrize("wanted", sorted(FORMATS))
def test_transparent_frames_stay_transparent(wanted, nearest_model, tmp_path):
    source = source_animation(tmp_path, ".png", alpha=True, disposal=1)
    assert upscale_file(source, tmp_path / f"out{wanted}") == 0
    clip = animation.read_animation(tmp_path / f"out{wanted}")
    alpha = np.stack([nearest2(np.asarray(f)[..., 3]) for f in frames(alpha=True)])
    assert clip.frames.shape[-1] == 4
    assert np.array_equal(clip.frames[..., 3] > 127, alpha > 127)  # GIF has 1-bit transparency


def test_a_gif_gets_one_shared_palette_and_no_dithering_noise(tmp_path):
    rng = np.random.default_rng(0)
    base = np.zeros((3, 24, 32, 3), np.uint8)
    base[...] = (30, 90, 160)  # a flat sky...
    base[:, 8:16, :16] = rng.integers(0, 256, (3, 8, 16, 3))  # ...beside a busy patch with far more than 256 colours
    clip = animation.Animation(base, DURATIONS, 0, None, "PNG")
    animation.write_animation(clip, tmp_path / "o.gif")
    back = animation.read_animation(tmp_path / "o.gif").frames
    assert gif_local_palettes(tmp_path / "o.gif") == [False, False, False]  # one global colour table
    assert (back[:, :8] == back[0, 0, 0]).all() and (back[:, 16:] == back[0, 0, 0]).all()  # flat stays flat


def test_a_gif_whose_frames_had_their_own_palettes_keeps_per_frame_palettes(nearest_model, tmp_path):
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(i * 80, i * 80 + 80, (12, 16, 3)).astype(np.uint8)) for i in range(3)]
    source = write_animation(tmp_path / "in.gif", images, duration=DURATIONS, loop=0)
    assert animation.read_animation(source).own_palettes
    assert upscale_file(source, tmp_path / "out.gif") == 0
    assert gif_local_palettes(tmp_path / "out.gif")[1:] == [True, True]
    back = animation.read_animation(tmp_path / "out.gif").frames.astype(int)
    given = animation.read_animation(source).frames.astype(int)
    assert np.abs(back - np.stack([nearest2(f) for f in given])).mean() < 8  # each frame's own colours, not a compromise


def test_partial_gif_frames_are_composed_before_upscaling(nearest_model, tmp_path):
    first, second = frames(2)
    patch = Image.new("RGB", (4, 4), (255, 0, 0))
    second = first.copy()
    second.paste(patch, (10, 6))
    source = write_animation(tmp_path / "in.gif", [first, second], duration=[40, 40], loop=0, disposal=1)
    assert upscale_file(source, tmp_path / "out.webp") == 0
    clip = animation.read_animation(tmp_path / "out.webp")
    assert np.array_equal(clip.frames[1], nearest2(np.asarray(second)))


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".bmp"])
def test_an_animation_to_a_still_only_format_is_refused_before_the_model_loads(suffix, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(swin2sr, "load_any_model", lambda *a, **k: pytest.fail("the model was loaded"))
    source = source_animation(tmp_path, ".gif")
    assert upscale_file(source, tmp_path / f"out{suffix}") == 1
    err = capsys.readouterr().err.strip()
    assert "cannot hold an animation" in err and ".gif" in err and len(err.splitlines()) == 1


def test_all_frames_go_through_one_plan_in_batches(monkeypatch):
    model = NearestX2()
    calls = []
    real = swin2sr.upscale

    def recording(model, image, **options):
        calls.append((image.shape[0], options["tile"], options["precision"]))
        return real(model, image, **options)

    monkeypatch.setattr(swin2sr, "upscale", recording)
    clip = np.stack([np.asarray(f) for f in frames(5)])
    out = upscale_frames(model, clip, frames_per_batch=2, tile=8, max_input_size=0)
    assert out.shape == (5, 24, 32, 3) and np.array_equal(out[4], nearest2(clip[4]))
    assert [c[0] for c in calls] == [2, 2, 1] and len({c[1:] for c in calls}) == 1


def test_progress_counts_tiles_over_all_frames():
    seen = []
    clip = np.stack([np.asarray(f) for f in frames(3)])
    upscale_frames(NearestX2(), clip, frames_per_batch=2, progress=lambda d, t: seen.append((d, t)), max_input_size=0)
    assert seen[-1] == (3, 3) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_frames_per_batch_must_be_positive():
    with pytest.raises(ValueError, match="frames_per_batch"):
        upscale_frames(NearestX2(), np.zeros((2, 8, 8, 3), np.uint8), frames_per_batch=0)


def test_a_single_frame_gif_is_a_still_image(nearest_model, tmp_path):
    frames(1)[0].save(tmp_path / "in.gif")
    assert not animation.is_animated(tmp_path / "in.gif")
    assert upscale_file(tmp_path / "in.gif", tmp_path / "out.jpg") == 0
    assert Image.open(tmp_path / "out.jpg").size == (32, 24)
