"""Run a job's work units on a Ray cluster: `swin2sr upscale DIR -o OUT --ray [ADDRESS]` (optional extra `cluster`).

The units, the options and the function that executes a unit are those of `swin2sr.jobs`; this module only
decides where each unit runs and commits what comes back.

- Workers are Ray actors (`UnitWorker`): each loads the model once and takes one GPU, or `threads` CPU
  threads on a CPU-only cluster.  An image is one unit: a worker runs `jobs.run_unit` on a private
  temporary copy of it (the driver ships the input file's bytes and gets the output file's bytes back).
  A video is decoded and encoded on the driver, and its frames go to the workers in batches
  (`upscale_files.upscale_batch`), encoded back in order.  So a node needs no shared file system, only the model
  (a builtin, or a checkpoint path that exists on every node).
- The driver is the only writer.  It commits each output exactly once (temporary file + rename, logged
  as `wrote PATH`), so a retried unit never leaves two writes or a half-written file.
- Fault tolerance is Ray's: actors are restarted when their process dies (`max_restarts=-1`) and the unit
  they held is retried on the fresh process (`max_task_retries`), the defaults Ray Data gives its own
  actor pools.  A unit whose worker dies on every attempt is reported as failed and the job goes on.
- Dispatch is the plain `ray.wait` loop of Ray's actor-pool pattern: one unit in flight per actor, the next
  one read and sent only when an actor is free, so memory stays bounded and Ctrl-C (which kills the
  actors) loses at most the units in flight.  Ray Data's `map_batches` was measured against it (docs/cluster.md,
  "Why Ray actors and not Ray Data"): same fault-tolerance defaults, but ~3 s of start-up per job here and inputs that must exist
  as a dataset up front, where video chunks are decoded lazily on the driver.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .io.image_files import atomic_write
from .jobs import (
    Job,
    JobOptions,
    JobProgress,
    JobSummary,
    UnitResult,
    WorkUnit,
    attempt,
    load_job_model,
    run_unit,
    video_plan,
)
from .upscale_files import upscale_batch

log = logging.getLogger("swin2sr")

INSTALL_HINT = "pip install swin2sr-upscaler[cluster]"
UNIT_RETRIES = 2  # a unit whose worker process dies is retried this many times before it is reported failed


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how wide to run.

    address: a running cluster ("auto", "ray://head:10001", "10.0.0.5:6379"); None starts a local Ray for
      the job (or uses the one this process already started, as the tests do).
    actors: how many workers (default: one per GPU, else the cluster's CPUs divided by `threads`).
    threads: torch threads per worker on a CPU-only cluster (default: the CPUs divided by `actors`, else
      up to 4).  GPU workers take one GPU (and one CPU) each.
    """

    address: str | None = None
    actors: int | None = None
    threads: int | None = None


@dataclass(frozen=True)
class UnitOutput:
    """What a worker sends back for one unit: the result, the destination file's bytes, and who computed it."""

    index: int
    result: UnitResult
    data: bytes | None  # None when the unit failed
    worker_pid: int


def import_ray():
    """Ray, or the one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--ray needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


# --- the worker ------------------------------------------------------------------------------------


class UnitWorker:
    """A Ray actor that loads the job's model once, then executes units with `jobs.run_unit`.

    The device is the one Ray gave the actor (a GPU, else the CPU) unless the user named one.
    """

    def __init__(self, options: JobOptions, threads: int | None) -> None:
        import ray
        import torch

        if threads:
            torch.set_num_threads(threads)
        if not options.upscale.get("device"):
            device = "cuda" if ray.get_gpu_ids() else "cpu"
            options = replace(options, upscale={**options.upscale, "device": device})
        self.options = options
        self.model = load_job_model(options)

    def run(self, index: int, unit: WorkUnit, source: bytes) -> UnitOutput:
        """Run `unit` on a private copy of its input and return the output file's bytes."""
        with tempfile.TemporaryDirectory(prefix="swin2sr-unit-") as tmp:
            local = replace(
                unit,
                source=str(Path(tmp, "input").with_suffix(Path(unit.source).suffix)),
                destination=str(Path(tmp, "output").with_suffix(Path(unit.destination).suffix)),
            )
            Path(local.source).write_bytes(source)
            result = run_unit(self.model, local, self.options)
            data = Path(local.destination).read_bytes() if result.ok else None
        result = replace(result, unit=unit, reason=result.reason.replace(local.source, unit.source))
        return UnitOutput(index, result, data, os.getpid())

    def video_plan(self, info) -> tuple[tuple[int, int], dict]:
        """(output size, upscale keywords) for a video: planned once, on one worker, shared by all batches."""
        plan, fixed = video_plan(self.model, info, self.options)
        return plan.output_size, fixed

    def upscale_frames(self, rgb, fixed: dict):
        """One batch of a video's frames (uint8 [N, H, W, 3]) with the keywords of `video_plan`."""
        return upscale_batch(self.model, rgb, fixed)


# --- the driver ------------------------------------------------------------------------------------


def run_job_on_ray(
    job: Job,
    cluster: ClusterOptions = ClusterOptions(),
    bar: Callable[[int, int], None] | None = None,
    on_output: Callable[[UnitOutput], None] | None = None,
) -> JobSummary:
    """Execute `job` on Ray and write every output from this process; the same summary as `jobs.run_job`.

    bar(done, total) counts finished images and encoded video frames.  on_output(output) is called after each unit is committed
    (or has failed; images only), e.g. to log which worker computed what.  Ctrl-C kills the workers, keeps every file
    already written (they are complete) and returns an interrupted summary: `--skip-existing` resumes.
    A job with no units (everything skipped) does not start Ray at all.
    """
    summary = JobSummary([], job.skipped)
    if not job.units:
        return summary
    ray = import_ray()
    progress = JobProgress(bar or (lambda done, total: None), [_weight(unit) for unit in job.units])

    def record(index: int, result: UnitResult) -> None:
        if not result.ok:
            log.warning("failed: %s: %s", result.unit.name, result.reason)
        summary.results.append(result)
        progress.finish_unit(index)

    units = list(enumerate(job.units))
    with ray_session(ray, cluster.address):
        workers = start_workers(ray, job.options, cluster)
        try:
            for output in _dispatch(ray, workers, [(i, u) for i, u in units if u.kind != "video"]):
                if output.data is not None:
                    atomic_write(Path(output.result.unit.destination), lambda f: f.write(output.data))
                    log.info("wrote %s", output.result.unit.destination)
                record(output.index, output.result)
                if on_output:
                    on_output(output)
            for index, unit in [(i, u) for i, u in units if u.kind == "video"]:
                report = progress.for_unit(index)
                record(index, attempt(unit, lambda: transcode_on_workers(ray, workers, unit, job.options, report)))
        except KeyboardInterrupt:
            if len(job.units) == 1:
                raise  # as the local runner: one file interrupted is not a job summary
            summary.interrupted = True
        finally:
            for worker in workers:
                ray.kill(worker)
    return summary


def _weight(unit: WorkUnit) -> int:
    """A unit's share of the progress bar: 1 for an image, its frame count for a video."""
    if unit.kind != "video":
        return 1
    from .io import video

    try:
        return max(1, video.probe(Path(unit.source)).frames)
    except Exception:  # noqa: BLE001 - the unit itself will fail with the reason
        return 1


def transcode_on_workers(ray, workers: list, unit: WorkUnit, options: JobOptions, progress) -> None:
    """One video through all workers: this process decodes and encodes (in order), workers upscale batches.

    Batches go to the workers in turn, two per worker in flight, so every worker stays busy while the
    encoder waits for the oldest; memory holds at most those batches.  A batch whose worker dies is
    retried on the restarted worker (Ray's actor task retries), so no frame is lost or encoded twice.
    """
    from .io import video

    info = video.probe(Path(unit.source))
    output_size, fixed = ray.get(workers[0].video_plan.remote(info))
    turn = itertools.cycle(workers)
    done = 0

    def count(frames: int) -> None:
        nonlocal done
        done += frames
        progress(done, max(info.frames, done))

    def send_batch(rgb) -> _PendingFrames:
        return _PendingFrames(ray, next(turn).upscale_frames.remote(rgb, fixed), count)

    video.transcode(
        Path(unit.source), Path(unit.destination), send_batch, output_size,
        frames_per_batch=options.video.frames_per_batch, codec=options.video.codec, crf=options.video.crf,
        in_flight=2 * len(workers),
    )  # fmt: skip


class _PendingFrames:
    """A batch of frames being upscaled by a worker; `result()` waits for it and counts its frames as done."""

    def __init__(self, ray, ref, on_done: Callable[[int], None]) -> None:
        self.ray, self.ref, self.on_done = ray, ref, on_done

    def result(self):
        frames = self.ray.get(self.ref)
        self.on_done(len(frames))
        return frames


@contextmanager
def ray_session(ray, address: str | None) -> Iterator[None]:
    """Connect to `address`, or start a local Ray (shut down afterwards); reuse this process's Ray if running."""
    if ray.is_initialized():
        yield
        return
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise ValueError(
            f"cannot reach the Ray cluster at {address!r} ({_first_line(exc)}); start it with `ray start --head` "
            "or give --ray without an address for a local Ray"
        ) from None
    try:
        yield
    finally:
        ray.shutdown()


def start_workers(ray, options: JobOptions, cluster: ClusterOptions) -> list:
    """The actors, sized to the cluster; a request the cluster cannot hold is refused before any work."""
    count, threads, resources = worker_shape(ray.cluster_resources(), cluster)
    actor = ray.remote(max_restarts=-1, max_task_retries=UNIT_RETRIES, **resources)(UnitWorker)
    each = ", ".join(f"{k}={v}" for k, v in resources.items())
    log.info("ray: %d worker%s, each with %s", count, "s" if count > 1 else "", each)
    return [actor.remote(options, threads) for _ in range(count)]


def worker_shape(available: dict, cluster: ClusterOptions) -> tuple[int, int | None, dict]:
    """(workers, torch threads per worker or None, Ray resources per worker) for the cluster's resources."""
    gpus, cpus = int(available.get("GPU", 0)), int(available.get("CPU", 0))
    if gpus:
        count = cluster.actors or gpus
        _check_fits(count, 1, gpus, "GPU")
        return count, cluster.threads, {"num_gpus": 1, "num_cpus": 1}
    threads = cluster.threads or (max(1, cpus // cluster.actors) if cluster.actors else max(1, min(4, cpus)))
    count = cluster.actors or max(1, cpus // threads)
    _check_fits(count, threads, cpus, "CPU")
    return count, threads, {"num_cpus": threads}


def _check_fits(count: int, each: int, available: int, kind: str) -> None:
    if count * each > available:
        raise ValueError(
            f"{count} Ray workers x {each} {kind} need {count * each} {kind}s but the cluster has {available}; "
            "lower --ray-actors or --ray-threads"
        )


def _dispatch(ray, workers: list, units: list[tuple[int, WorkUnit]]) -> Iterator[UnitOutput]:
    """Outputs in completion order; one unit in flight per worker, each input read only when a worker is free.

    A freed worker gets its next unit before the driver writes the output it returned.
    """
    todo = iter(units)
    idle, running, unreadable = list(workers), {}, []

    def feed() -> None:
        while idle and (item := next(todo, None)) is not None:
            index, unit = item
            try:
                source = Path(unit.source).read_bytes()
            except OSError as exc:
                result = UnitResult(unit, False, f"cannot read {unit.source}: {exc.strerror}")
                unreadable.append(UnitOutput(index, result, None, 0))
                continue
            worker = idle.pop()
            running[worker.run.remote(index, unit, source)] = (worker, index, unit)

    feed()
    while running or unreadable:
        yield from unreadable
        unreadable.clear()
        if not running:
            return
        [ref], _ = ray.wait(list(running), num_returns=1)
        worker, index, unit = running.pop(ref)
        idle.append(worker)
        output = _collect(ray, ref, index, unit)
        feed()
        yield output


def _collect(ray, ref, index: int, unit: WorkUnit) -> UnitOutput:
    """The worker's output, or a failed result (its process died on every attempt, or Ray failed)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        reason = f"the Ray worker failed: {_first_line(exc)}"
        return UnitOutput(index, UnitResult(unit, False, reason), None, 0)


def _first_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message (Ray's messages run to many lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
