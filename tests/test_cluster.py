"""The Ray runner (`swin2sr.cluster`): the same units as the local runner, on a local two-CPU Ray cluster.

One Ray is started for the whole module (start-up costs seconds); the tests use a tiny random model and
photos of about 200x170 pixels: a unit takes a few tenths of a second, so a worker is reliably caught in the
middle of one (the kill tests check Ray's process title, `ray::UnitWorker.METHOD` while a method runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict
from PIL import Image

from swin2sr import cli, cluster, jobs

ray = pytest.importorskip("ray", reason="the Ray tests need the cluster extra (pip install -e .[test])")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny_x2.pth"
    torch.save(random_official_state_dict(TINY_CONFIGS["tiny_x2"]), path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Eight photos, two of them in a sub-folder."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(8):
        path = folder / ("sub" if i >= 6 else "") / f"photo{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (160 + 4 * i, 200, 3), dtype=np.uint8)).save(path)
    return folder


@pytest.fixture(scope="module")
def local_outputs(photos, tiny_model, tmp_path_factory):
    """The single-process run of the same job: the reference every Ray run must match byte for byte."""
    out = tmp_path_factory.mktemp("local")
    job = jobs.build_job([photos], out, _options(tiny_model))
    summary = jobs.run_job(jobs.load_job_model(job.options), job)
    assert summary.exit_code == 0
    return _files(out)


def _options(model_path) -> jobs.JobOptions:
    return jobs.JobOptions(model=str(model_path), upscale=dict(precision="fp32", device="cpu"))


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Recorder:
    """on_output hook: which worker process computed which unit, in the order the driver committed them."""

    def __init__(self) -> None:
        self.outputs: list[cluster.UnitOutput] = []

    def __call__(self, output: cluster.UnitOutput) -> None:
        self.outputs.append(output)

    @property
    def committed(self) -> list[str]:
        return [o.result.unit.destination for o in self.outputs if o.data is not None]


def test_a_folder_on_ray_is_byte_identical_to_the_single_process_run(local_ray, photos, tiny_model, local_outputs, tmp_path):
    out = tmp_path / "out"
    job = jobs.build_job([photos], out, _options(tiny_model))
    bar = []
    summary = cluster.run_job_on_ray(job, cluster.ClusterOptions(actors=2, threads=1), bar=lambda d, t: bar.append((d, t)))
    assert summary.text().splitlines()[0] == "done 8, skipped 0, failed 0"
    assert _files(out) == local_outputs
    assert bar[-1] == (8, 8) and [d for d, _ in bar] == sorted(d for d, _ in bar)  # one bar over the whole job


def test_a_killed_worker_loses_no_unit_and_no_output_is_written_twice(local_ray, photos, tiny_model, local_outputs, tmp_path, caplog):
    out = tmp_path / "out"
    job = jobs.build_job([photos], out, _options(tiny_model))
    recorder, killed = Recorder(), []

    def kill_a_worker_in_the_middle_of_its_next_unit(output: cluster.UnitOutput) -> None:
        recorder(output)  # the driver hands a worker its next unit before it writes the output it returned
        if not killed and _running_a_unit_soon(output.worker_pid):
            os.kill(output.worker_pid, signal.SIGKILL)
            killed.append((output.worker_pid, len(recorder.outputs)))

    caplog.set_level("INFO", logger="swin2sr")
    summary = cluster.run_job_on_ray(
        job, cluster.ClusterOptions(actors=2, threads=1), on_output=kill_a_worker_in_the_middle_of_its_next_unit
    )
    assert summary.exit_code == 0 and len(summary.done) == 8
    assert _files(out) == local_outputs  # every file complete and identical, no temporary file left
    assert sorted(recorder.committed) == sorted(u.destination for u in job.units)  # each unit committed once
    writes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("wrote ")]
    assert sorted(writes) == sorted(f"wrote {u.destination}" for u in job.units)  # each file written once
    [(pid, at)] = killed
    before, after = ({o.worker_pid for o in outputs} for outputs in (recorder.outputs[:at], recorder.outputs[at:]))
    assert pid not in after  # the dead process computed nothing more ...
    assert after - before  # ... a fresh one (the restarted worker) took its unit over


def _running_a_unit_soon(pid: int, seconds: float = 5.0) -> bool:
    """Whether the worker `pid` starts running a unit within `seconds`: on a loaded machine the unit the driver just
    handed it may not have reached the process yet when the previous output arrives (Ray titles the process
    "ray::UnitWorker.run" while the method runs)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::UnitWorker.run"):
            return True
        time.sleep(0.001)
    return False


def test_a_second_run_with_skip_existing_does_nothing(local_ray, photos, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = jobs.build_job([photos], out, _options(tiny_model))
    assert cluster.run_job_on_ray(first, cluster.ClusterOptions(actors=1, threads=1)).exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    again = jobs.build_job([photos], out, _options(tiny_model), skip_existing=True)
    monkeypatch.setattr(cluster, "import_ray", lambda: pytest.fail("Ray was used for a job with nothing to do"))
    summary = cluster.run_job_on_ray(again)
    assert summary.text() == "done 0, skipped 8, failed 0"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps


def test_a_bad_file_is_reported_and_the_rest_of_the_job_goes_on(local_ray, tiny_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (16, 16), "red").save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"not a png")
    job = jobs.build_job([folder], tmp_path / "out", _options(tiny_model))
    summary = cluster.run_job_on_ray(job, cluster.ClusterOptions(actors=1, threads=1))
    assert summary.exit_code == 1
    assert [r.unit.name for r in summary.failed] == ["broken.png"]
    assert str(folder / "broken.png") in summary.failed[0].reason  # the user's path, not the worker's copy
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


# --- video: chunks of frames over the workers, one encoder on the driver -----------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    pytest.importorskip("av")
    from videos import make_video

    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=13, size=(240, 180), audio="aac")


def _video_options(model_path) -> jobs.JobOptions:  # lossless, so decoded frames can be compared exactly
    return jobs.JobOptions(
        model=str(model_path), upscale=dict(precision="fp32", device="cpu"),
        video=jobs.VideoOptions(codec="ffv1", frames_per_batch=2),
    )  # fmt: skip


def _decoded(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_a_video_comes_back_in_order_even_when_a_worker_dies_in_the_middle(local_ray, clip, tiny_model, tmp_path):
    from videos import stream_facts

    local = tmp_path / "local.mkv"
    here = jobs.build_job([clip], local, _video_options(tiny_model))
    assert jobs.run_job(jobs.load_job_model(here.options), here).exit_code == 0

    killed = []

    def kill_a_busy_worker_after_the_first_batch(done: int, total: int) -> None:
        busy = _ray_worker_pids(b"ray::UnitWorker.upscale_frames")  # Ray's title while it runs that method
        if not killed and busy:
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])

    out = tmp_path / "ray.mkv"
    job = jobs.build_job([clip], out, _video_options(tiny_model))
    summary = cluster.run_job_on_ray(job, cluster.ClusterOptions(actors=2, threads=1), bar=kill_a_busy_worker_after_the_first_batch)
    assert summary.text() == "done 1, skipped 0, failed 0" and killed
    facts, expected = stream_facts(out), stream_facts(local)
    for fact in ("count", "pts", "rate", "time_base", "audio", "size"):
        assert facts[fact] == expected[fact], fact
    assert all(np.array_equal(a, b) for a, b in zip(_decoded(out), _decoded(local), strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.mkv", "ray.mkv"]  # no partial file


def _ray_worker_pids(title: bytes = b"ray::UnitWorker") -> list[int]:
    """This test session's Ray worker processes whose title starts with `title` (`ray::Class.method` while busy)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title):
                if _descends_from(int(entry.name), os.getpid()):
                    pids.append(int(entry.name))
        except OSError:  # the process ended meanwhile
            continue
    return sorted(pids)


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return False


# --- the command line --------------------------------------------------------------------------------

# `swin2sr ARGS` with Ctrl-C raising KeyboardInterrupt, as in a terminal, even where the test runner was
# started with SIGINT ignored (a background job of a non-interactive shell), which its children inherit.
INTERRUPTIBLE_CLI = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from swin2sr.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_ctrl_c_stops_the_workers_and_leaves_only_complete_files(local_ray, tiny_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (170, 200, 3), dtype=np.uint8)).save(folder / f"photo{i:02d}.png")
    out = tmp_path / "out"
    address = ray.get_runtime_context().gcs_address  # the command joins this module's cluster
    command = [sys.executable, "-c", INTERRUPTIBLE_CLI, "upscale", str(folder), "-o", str(out), "--model", str(tiny_model),
               "--precision", "fp32", "--ray", address, "--ray-actors", "2"]  # fmt: skip
    process = subprocess.Popen(command, cwd=Path(__file__).parents[1], stderr=subprocess.PIPE, text=True)
    while not list(out.glob("*.png")) and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    written = sorted(out.iterdir())
    assert 0 < len(written) < 24 and all(p.suffix == ".png" for p in written)  # no temporary file
    for path in written:
        with Image.open(path) as image:
            image.load()  # complete
    deadline = time.monotonic() + 60
    while _ray_worker_pids() and time.monotonic() < deadline:  # Ray reaps killed actors asynchronously
        time.sleep(0.2)
    assert _ray_worker_pids() == []


def test_without_ray_the_command_says_which_extra_to_install(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    assert cli.main(["upscale", str(tmp_path), "-o", str(tmp_path / "out"), "--model", str(tiny_model), "--ray"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "swin2sr upscale: error: --ray needs Ray, which is not installed; install it with: " \
        "pip install swin2sr-upscaler[cluster]"
    assert not (tmp_path / "out").exists()


# --- sizing (no Ray started) ---------------------------------------------------------------------------


def test_workers_take_one_gpu_each_or_share_the_cpus():
    shape = cluster.worker_shape
    assert shape({"CPU": 16, "GPU": 4}, cluster.ClusterOptions()) == (4, None, {"num_gpus": 1, "num_cpus": 1})
    assert shape({"CPU": 2}, cluster.ClusterOptions()) == (1, 2, {"num_cpus": 2})
    assert shape({"CPU": 2}, cluster.ClusterOptions(actors=2)) == (2, 1, {"num_cpus": 1})
    assert shape({"CPU": 32}, cluster.ClusterOptions()) == (8, 4, {"num_cpus": 4})


def test_a_request_the_cluster_cannot_hold_is_refused_before_any_work():
    with pytest.raises(ValueError, match="need 6 CPUs but the cluster has 2; lower --ray-actors"):
        cluster.worker_shape({"CPU": 2}, cluster.ClusterOptions(actors=3, threads=2))


