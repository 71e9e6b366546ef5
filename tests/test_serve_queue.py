"""The service's job queue on its own (swin2sr/serve/queue.py): expiry, drain, cancellation, outcomes.

The runner here stands in for the model: it writes the result file, or waits for its cancel hook, or fails,
as each test needs; the HTTP side is tested against a real server in test_serve_api.py.
"""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from swin2sr.serve.queue import SHUTDOWN_MESSAGE, Job, JobQueue, QueueFull, ShuttingDown, new_job_folder
from swin2sr.serve.render import RenderOptions
from swin2sr.tiling import UpscaleCancelled

TIMEOUT = 10


def new_job(root) -> Job:
    folder = new_job_folder(root)
    source = folder / "input.png"
    source.write_bytes(b"input")
    return Job(folder, source, folder / "result.png", RenderOptions(model="builtin-x4"))


def writes_result(job: Job, device, progress, cancel) -> None:
    progress(1, 1)
    job.destination.write_bytes(b"result")


def until_cancelled(started: threading.Event):
    def run(job: Job, device, progress, cancel) -> None:
        started.set()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if cancel():
                raise UpscaleCancelled("cancelled")
            progress(1, 4)
            time.sleep(0.01)
        raise AssertionError("cancel() never said yes")

    return run


def wait_finished(job: Job) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.finished, job.status


@pytest.fixture
def make_queue():
    queues = []

    def make(runner, **options) -> JobQueue:
        settings = dict(capacity=4, keep_seconds=60, drain_seconds=5) | options
        queue = JobQueue(runner, ["cpu"], **settings)
        queue.start()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.close()


def test_a_done_job_keeps_only_its_result_until_it_expires(tmp_path, make_queue):
    queue = make_queue(writes_result, keep_seconds=0.2)
    job = new_job(tmp_path)
    queue.submit(job)
    wait_finished(job)
    assert (job.status, job.progress, job.error) == ("done", 1.0, None)
    assert [p.name for p in job.folder.iterdir()] == ["result.png"]  # the upload is gone at once
    time.sleep(0.3)
    queue.expire()
    assert queue.get(job.id) is None and not job.folder.exists()


def test_failures_are_one_line_and_say_whose_fault(tmp_path, make_queue):
    def bad_input(job, device, progress, cancel):
        raise ValueError("input.png is not a readable image\n(details)")

    def broken(job, device, progress, cancel):
        raise RuntimeError("disk on fire")

    for runner, user_error, words in ((bad_input, True, "not a readable image (details)"),
                                      (broken, False, "unexpected RuntimeError: disk on fire")):  # fmt: skip
        job = new_job(tmp_path)
        make_queue(runner).submit(job)
        wait_finished(job)
        assert (job.status, job.user_error) == ("failed", user_error)
        assert words in job.error and "\n" not in job.error
        assert not job.folder.exists()


def test_a_running_job_is_cancelled_through_the_tilers_hook(tmp_path, make_queue):
    started = threading.Event()
    queue = make_queue(until_cancelled(started))
    job = new_job(tmp_path)
    queue.submit(job)
    assert started.wait(TIMEOUT)
    queue.cancel(job.id)
    wait_finished(job)
    assert (job.status, job.error) == ("cancelled", "cancelled by the client")
    assert not job.folder.exists()


def test_the_queue_is_bounded_and_positions_count_from_one(tmp_path, make_queue):
    started = threading.Event()
    queue = make_queue(until_cancelled(started), capacity=2)
    running = new_job(tmp_path)
    queue.submit(running)
    assert started.wait(TIMEOUT)
    waiting = [new_job(tmp_path), new_job(tmp_path)]
    for job in waiting:
        queue.submit(job)
    assert [queue.view(job)["queue_position"] for job in (running, *waiting)] == [0, 1, 2]
    with pytest.raises(QueueFull) as refused:
        queue.submit(new_job(tmp_path))
    assert refused.value.retry_after >= 1
    queue.cancel(running.id)


def test_drain_cancels_the_waiting_refuses_new_and_gives_the_running_its_time(tmp_path, make_queue):
    started = threading.Event()
    queue = make_queue(until_cancelled(started), drain_seconds=0.3)
    running, waiting = new_job(tmp_path), new_job(tmp_path)
    queue.submit(running)
    assert started.wait(TIMEOUT)
    queue.submit(waiting)
    began = time.monotonic()
    queue.begin_drain()
    refused = new_job(tmp_path)
    with pytest.raises(ShuttingDown):
        queue.submit(refused)
    shutil.rmtree(refused.folder)  # a refused job's folder is its caller's to remove (app._submit does)
    wait_finished(waiting)
    assert (waiting.status, waiting.error) == ("cancelled", SHUTDOWN_MESSAGE)
    wait_finished(running)
    assert running.status == "cancelled" and time.monotonic() - began >= 0.3  # cancelled once its time ran out
    queue.close()
    assert list(tmp_path.iterdir()) == []
