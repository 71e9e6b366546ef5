"""The Ray runner (`swin2sr.cluster`): the same units as the local runner, on a local two-CPU Ray cluster.

One Ray is started for the whole module (start-up costs seconds); the tests use a tiny random model and
photos of about 200x170 pixels: a unit takes a few tenths of a second, long enough that a worker killed
right after it returned an output is always killed in the middle of its next unit.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pytest
import torch
from checkpoints import TINY_CONFIGS, random_official_state_dict
from PIL import Image

from swin2sr import cluster, jobs

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

    def kill_the_first_worker_after_its_first_unit(output: cluster.UnitOutput) -> None:
        recorder(output)
        if not killed:  # that worker already holds its next unit: the driver refills before it writes
            os.kill(output.worker_pid, signal.SIGKILL)
            killed.append(output.worker_pid)

    caplog.set_level("DEBUG", logger="swin2sr")
    summary = cluster.run_job_on_ray(
        job, cluster.ClusterOptions(actors=2, threads=1), on_output=kill_the_first_worker_after_its_first_unit
    )
    assert summary.exit_code == 0 and len(summary.done) == 8
    assert _files(out) == local_outputs  # every file complete and identical, no temporary file left
    assert sorted(recorder.committed) == sorted(u.destination for u in job.units)  # each unit committed once
    writes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("wrote ")]
    assert sorted(writes) == sorted(f"wrote {u.destination}" for u in job.units)  # each file written once
    later = [o.worker_pid for o in recorder.outputs[1:]]
    assert killed[0] not in later  # the dead process computed nothing more ...
    assert len(set(later) - {recorder.outputs[0].worker_pid}) >= 2  # ... a restarted one took its work over


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


# --- sizing and the missing extra (no Ray started) ---------------------------------------------------


def test_workers_take_one_gpu_each_or_share_the_cpus():
    shape = cluster.worker_shape
    assert shape({"CPU": 16, "GPU": 4}, cluster.ClusterOptions()) == (4, None, {"num_gpus": 1, "num_cpus": 1})
    assert shape({"CPU": 2}, cluster.ClusterOptions()) == (1, 2, {"num_cpus": 2})
    assert shape({"CPU": 2}, cluster.ClusterOptions(actors=2)) == (2, 1, {"num_cpus": 1})
    assert shape({"CPU": 32}, cluster.ClusterOptions()) == (8, 4, {"num_cpus": 4})


def test_a_request_the_cluster_cannot_hold_is_refused_before_any_work():
    with pytest.raises(ValueError, match="need 6 CPUs but the cluster has 2; lower --ray-actors"):
        cluster.worker_shape({"CPU": 2}, cluster.ClusterOptions(actors=3, threads=2))


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValueError, match=r"pip install swin2sr-upscaler\[cluster\]"):
        cluster.import_ray()
