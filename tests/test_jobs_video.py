"""`swin2sr upscale clip.mp4 -o clip_x2.mp4`: every frame upscaled with its timestamp, audio copied, no partial file."""

from __future__ import annotations

import re
import sys

import pytest

av = pytest.importorskip("av")

import swin2sr  # noqa: E402
from swin2sr import cli  # noqa: E402
from upscale_spy import UpscaleSpy  # noqa: E402
from videos import make_video, stream_facts  # noqa: E402

MODEL = ["--model", "builtin-x2"]


@pytest.fixture
def spy(monkeypatch):
    spy = UpscaleSpy(swin2sr.upscale)
    monkeypatch.setattr(swin2sr, "upscale", spy)
    return spy


@pytest.mark.parametrize(("audio", "container"), [(None, "mp4"), ("aac", "mp4"), ("libopus", "mkv")])
def test_frames_timestamps_rate_and_audio_survive_the_upscale(tmp_path, audio, container):
    source = make_video(tmp_path / f"clip.{container}", frames=10, audio=audio)
    out = tmp_path / f"clip_x2.{container}"
    assert cli.main(["upscale", str(source), "-o", str(out), *MODEL]) == 0
    before, after = stream_facts(source), stream_facts(out)
    assert after["size"] == (64, 48)
    for fact in ("count", "pts", "rate", "time_base", "audio"):
        assert after[fact] == before[fact], fact
    assert (after["count"], bool(after["audio"])) == (10, audio is not None)


def test_a_variable_frame_rate_keeps_every_timestamp(tmp_path):
    source = make_video(tmp_path / "vfr.mkv", frames=6, pts=[0, 1, 3, 4, 8, 9])
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "out.mkv"), *MODEL]) == 0
    assert stream_facts(tmp_path / "out.mkv")["pts"] == stream_facts(source)["pts"] == [0, 42, 125, 167, 333, 375]


def test_frames_go_through_in_batches_with_one_plan(tmp_path, spy):
    source = make_video(tmp_path / "clip.mp4", frames=10)
    out = tmp_path / "out.mp4"
    assert cli.main(["upscale", str(source), "-o", str(out), *MODEL, "--frames-per-batch", "4"]) == 0
    assert [shape[0] for shape, _ in spy.calls] == [4, 4, 2]  # never the whole video at once
    tiles = {options["tile"] for _, options in spy.calls}
    assert len(tiles) == 1 and isinstance(tiles.pop(), int)  # the same tile for every frame


def test_codec_and_quality_are_selectable(tmp_path):
    source = make_video(tmp_path / "clip.mp4", frames=4)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "lossless.mkv"), *MODEL, "--codec", "ffv1"]) == 0
    assert stream_facts(tmp_path / "lossless.mkv")["codec"] == "ffv1"
    small, large = tmp_path / "q40.mp4", tmp_path / "q10.mp4"
    assert cli.main(["upscale", str(source), "-o", str(small), *MODEL, "--crf", "40"]) == 0
    assert cli.main(["upscale", str(source), "-o", str(large), *MODEL, "--crf", "10"]) == 0
    assert small.stat().st_size < large.stat().st_size


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--codec", "nonsense"], "is not a video encoder"), (["--codec", "mpeg4", "--crf", "20"], "has no --crf")],
)
def test_a_wrong_codec_choice_is_one_line(tmp_path, capsys, flags, message):
    source = make_video(tmp_path / "clip.mp4", frames=2)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), *MODEL, *flags]) == 1
    err = capsys.readouterr().err
    assert err.count(message) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_ctrl_c_in_the_middle_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    source = make_video(tmp_path / "clip.mp4", frames=10, audio="aac")
    monkeypatch.setattr(swin2sr, "upscale", UpscaleSpy(swin2sr.upscale, interrupt_on=2))
    out_dir = tmp_path / "out"
    args = ["upscale", str(source), "-o", str(out_dir / "clip_x2.mp4"), *MODEL, "--frames-per-batch", "4"]
    assert cli.main(args) == 130
    assert list(out_dir.iterdir()) == []
    assert "interrupted" in capsys.readouterr().err


def test_without_pyav_the_message_names_the_extra(tmp_path, monkeypatch, capsys):
    source = make_video(tmp_path / "clip.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "av", None)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), *MODEL]) == 1
    assert "pip install swin2sr-upscaler[video]" in capsys.readouterr().err


def test_a_video_can_only_become_a_video(tmp_path, capsys):
    source = make_video(tmp_path / "clip.mp4", frames=2)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "clip.png"), *MODEL]) == 1
    assert "a video is written as one of .mp4" in capsys.readouterr().err


def test_the_progress_bar_counts_the_tiles_of_every_frame(tmp_path, capsys):
    source = make_video(tmp_path / "clip.mp4", frames=10)
    args = ["upscale", str(source), "-o", str(tmp_path / "out.mp4"), *MODEL, "--tile", "16", "--overlap", "4"]
    assert cli.main(args) == 0
    tiles = swin2sr.plan_upscale(swin2sr.load_any_model("builtin-x2"), 24, 32, tile=16, overlap=4).tiles_per_image
    bars = re.findall(r"upscaling clip.mp4 \[[#-]+\] (\d+)/(\d+)", capsys.readouterr().err)
    assert tiles > 1 and bars[-1] == (str(10 * tiles),) * 2 and len({total for _, total in bars}) == 1


@pytest.mark.parametrize("bt709", [False, True])
def test_colours_keep_the_source_matrix_and_tags(tmp_path, bt709):
    source = make_video(tmp_path / "clip.mp4", frames=2, bt709=bt709)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), *MODEL]) == 0
    before, after = stream_facts(source), stream_facts(tmp_path / "out.mp4")
    assert after["colour"] == before["colour"] == ((1, 1, 1, 1) if bt709 else (2, 0, 2, 2))
    assert abs(after["mean_rgb"] - before["mean_rgb"]).max() < 3  # a player shows the same colours


def test_a_portrait_phone_video_stays_upright(tmp_path):
    source = make_video(tmp_path / "phone.mp4", frames=2, rotation=90)
    assert cli.main(["upscale", str(source), "-o", str(tmp_path / "out.mp4"), *MODEL]) == 0
    after = stream_facts(tmp_path / "out.mp4")
    assert (after["rotation"], after["size"]) == (90, (64, 48))  # stored as recorded, shown turned like the source
