"""The bounded job queue and one worker thread per device: cancellation, expiry and the drain on SIGTERM.

Smart-Safe for a shared server: each device runs one job at a time (the planner sizes tiles for the whole
device), at most `capacity` jobs wait (the next one is refused with a retry time rather than queued without
bound), and every job's files live in its own folder under the data folder, removed when the job is
cancelled, fails, or its result expires.  Nothing here knows HTTP or models: `run_job` does the work.

Thread safety: job state changes under one condition lock.  `begin_drain` only sets two attributes, so it
is safe to call from a signal handler; the workers notice it within `POLL` seconds.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..tiling import UpscaleCancelled
from .render import RenderOptions

log = logging.getLogger("swin2sr")

POLL = 0.5  # seconds between a worker's looks at the drain flag while idle
FINISHED = ("done", "failed", "cancelled")
SHUTDOWN_MESSAGE = "the server is shutting down; send the image again when it is back"

Progress = Callable[[int, int], None]
Runner = Callable[["Job", str, Progress, Callable[[], bool]], None]


class QueueFull(Exception):
    """No room in the queue; `retry_after` is the estimated wait in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the queue is full; try again in {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The queue takes no new jobs (SIGTERM received)."""


@dataclass
class Job:
    """One upload being upscaled: its folder, input, result and where it stands."""

    folder: Path
    source: Path
    destination: Path
    options: RenderOptions
    status: str = "queued"
    progress: float = 0.0
    error: str | None = None
    user_error: bool = False  # failed because of the input or an option (the client's to fix), not the server
    finished_at: float | None = None
    cancel_requested: bool = False

    @property
    def id(self) -> str:
        """The job's id is its folder's random name."""
        return self.folder.name

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def view(self, position: int) -> dict:
        """The JSON of GET /v1/jobs/{id}."""
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 4),
                "queue_position": position, "error": self.error}


def new_job_folder(root: Path) -> Path:
    """A fresh folder for one job's files, named by a random id (never by anything a client sent)."""
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


class JobQueue:
    """At most `capacity` waiting jobs, one worker per device, results kept `keep_seconds` after finishing."""

    def __init__(
        self, run_job: Runner, devices: list[str], *, capacity: int, keep_seconds: float, drain_seconds: float,
        on_finish: Callable[[Job, float], None] | None = None,
    ) -> None:  # fmt: skip
        self.run_job, self.capacity = run_job, capacity
        self.keep_seconds, self.drain_seconds = keep_seconds, drain_seconds
        self.on_finish = on_finish or (lambda job, seconds: None)
        self.draining = False
        self.drain_started = 0.0
        self._waiting: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._running = 0
        self._seconds_per_job = 5.0  # running average, for Retry-After
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._workers = [threading.Thread(target=self._work, args=(d,), name=f"swin2sr-{d}", daemon=True)
                         for d in devices]
        self._janitor = threading.Thread(target=self._expire_loop, name="swin2sr-expiry", daemon=True)

    def start(self) -> None:
        for thread in (*self._workers, self._janitor):
            thread.start()

    # --- what the routes call ------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue `job`, or raise ShuttingDown / QueueFull (the caller then removes its folder)."""
        with self._cond:
            self.check_room()
            self._waiting.append(job)
            self._jobs[job.id] = job
            self._cond.notify()

    def check_room(self) -> None:
        """Raise ShuttingDown or QueueFull now, so that a refused upload is not even read."""
        if self.draining:
            raise ShuttingDown(SHUTDOWN_MESSAGE)
        if len(self._waiting) >= self.capacity:
            raise QueueFull(self._retry_after())

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def view(self, job: Job) -> dict:
        """The job's JSON with its place in the queue (1 = next; 0 once it runs or has finished)."""
        with self._cond:
            position = next((i + 1 for i, waiting in enumerate(self._waiting) if waiting is job), 0)
            return job.view(position)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now, a running one at its next tile batch; forget a finished one (files go)."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job in self._waiting:
                self._waiting.remove(job)
                self._finish(job, "cancelled", "cancelled by the client")
            elif job.finished:
                self._forget(job)
            else:
                job.cancel_requested = True
            return job

    def counts(self) -> dict[str, int]:
        """Jobs known now, by status (for /metrics and /healthz)."""
        with self._cond:
            counts = dict.fromkeys(("queued", "running", *FINISHED), 0)
            for job in self._jobs.values():
                counts[job.status] += 1
            return counts

    def __len__(self) -> int:
        """Waiting jobs."""
        return len(self._waiting)

    # --- shutting down -------------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Take no new jobs; waiting ones are cancelled; the running one gets `drain_seconds` to finish.

        Only sets attributes: safe inside a signal handler.
        """
        if not self.draining:
            self.drain_started = time.monotonic()
            self.draining = True

    def close(self) -> None:
        """Drain, wait for the workers (the running job finishes or is cancelled), remove every job's files."""
        self.begin_drain()
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._workers:
            thread.join(timeout=self.drain_seconds + 30)
        with self._cond:
            for job in list(self._jobs.values()):
                self._forget(job)

    # --- the workers ---------------------------------------------------------------------------------

    def _work(self, device: str) -> None:
        while (job := self._next_job()) is not None:
            self._run(job, device)

    def _next_job(self) -> Job | None:
        with self._cond:
            while True:
                if self.draining:
                    self._cancel_waiting()
                if self._waiting:
                    job = self._waiting.popleft()
                    job.status = "running"
                    self._running += 1
                    return job
                if self._closed.is_set():
                    return None
                self._cond.wait(POLL)

    def _cancel_waiting(self) -> None:
        while self._waiting:
            self._finish(self._waiting.popleft(), "cancelled", SHUTDOWN_MESSAGE)

    def _run(self, job: Job, device: str) -> None:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            job.progress = max(job.progress, min(done / total, 1.0)) if total > 0 else job.progress

        def cancel() -> bool:
            overdue = self.draining and time.monotonic() - self.drain_started > self.drain_seconds
            return job.cancel_requested or overdue

        status, error, user_error = "done", None, False
        try:
            self.run_job(job, device, progress, cancel)
        except UpscaleCancelled:
            status, error = "cancelled", SHUTDOWN_MESSAGE if self.draining else "cancelled by the client"
        except ValueError as exc:  # the input or an option (CheckpointError included): the client's to fix
            status, error, user_error = "failed", _one_line(exc), True
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the worker
            log.exception("job %s failed", job.id)
            status, error = "failed", f"unexpected {type(exc).__name__}: {_one_line(exc)} (see the server log)"
        if job.cancel_requested and status == "done":
            status, error = "cancelled", "cancelled by the client"
        seconds = time.monotonic() - started
        with self._cond:
            self._running -= 1
            job.user_error = user_error
            if status == "done":
                self._seconds_per_job = 0.8 * self._seconds_per_job + 0.2 * seconds
            self._finish(job, status, error)
        self.on_finish(job, seconds)

    def _finish(self, job: Job, status: str, error: str | None) -> None:
        """Record the outcome (lock held); anything but a result loses its files at once, before the outcome is
        visible, so whoever sees a job finished sees its files in their final state."""
        if status == "done":
            job.source.unlink(missing_ok=True)
            job.progress = 1.0
        else:
            shutil.rmtree(job.folder, ignore_errors=True)
        job.status, job.error, job.finished_at = status, error, time.monotonic()

    def _forget(self, job: Job) -> None:
        shutil.rmtree(job.folder, ignore_errors=True)
        self._jobs.pop(job.id, None)

    def _retry_after(self) -> int:
        workers = max(1, len(self._workers))
        return max(1, math.ceil(self._seconds_per_job * (len(self._waiting) + self._running) / workers))

    # --- expiry --------------------------------------------------------------------------------------

    def _expire_loop(self) -> None:
        interval = max(0.5, min(30.0, self.keep_seconds / 4))
        while not self._closed.wait(interval):
            self.expire()

    def expire(self) -> None:
        """Forget finished jobs older than keep_seconds; their files go."""
        now = time.monotonic()
        with self._cond:
            for job in list(self._jobs.values()):
                if job.finished and now - job.finished_at > self.keep_seconds:
                    self._forget(job)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
