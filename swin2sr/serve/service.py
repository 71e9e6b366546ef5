"""The service behind the routes: its settings, its models (loaded once per device), its data folder and queue.

`ServeConfig` is plain data (the `serve` command builds it from flags and environment knobs; Ray Serve
replicas receive it pickled).  `Service` owns what lives as long as the server: a fresh data folder (removed
on close), the models, and the `JobQueue` whose workers call `render` with the CLI's machinery.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .queue import Job, JobQueue, Runner
from .render import render

log = logging.getLogger("swin2sr")


@dataclass(frozen=True)
class ServeConfig:
    """Everything the service needs; the defaults are `swin2sr serve`'s."""

    models: tuple[str, ...] = ("builtin-x4",)  # the first is the default; requests may name only these
    devices: tuple[str, ...] = ("cpu",)  # one worker each
    upscale: dict = field(default_factory=dict)  # tile, overlap, precision, max_input_size for swin2sr.upscale
    queue: int = 16  # waiting jobs
    max_upload_bytes: int = 50 << 20
    max_pixels: int = 40_000_000  # over all frames of an animation
    token: str | None = None
    keep_seconds: float = 1800.0  # results are kept this long after a job finishes
    drain_seconds: float = 30.0  # on SIGTERM, the running job gets this long to finish
    data_dir: Path | None = None  # where job folders go (a fresh folder inside it; default: the system temp)


class ModelShelf:
    """Each served model loaded once per device, through the loader the CLI's `upscale --model` uses."""

    def __init__(self, names: tuple[str, ...], devices: tuple[str, ...]) -> None:
        from ..jobs import JobOptions, load_job_model

        self._models = {(name, device): load_job_model(JobOptions(model=name, upscale={"device": device}))
                        for device in devices for name in names}  # fmt: skip
        for name in names:
            log.info("model %s: %s", name, getattr(self.get(name, devices[0]), "variant", "loaded"))

    def get(self, name: str, device: str):
        return self._models[(name, device)]


class LocalRunner:
    """Runs jobs in this process: the served models loaded once per device, each job through `render`."""

    def __init__(self, config: ServeConfig) -> None:
        self.models = ModelShelf(config.models, config.devices)
        self.upscale = config.upscale

    def __call__(self, job: Job, device: str, progress, cancel) -> None:
        model = self.models.get(job.options.model, device)
        render(model, job.source, job.destination, job.options, dict(self.upscale, device=device), progress, cancel)


class Service:
    """The data folder and the queue of one server; `runner` does the jobs (default: here, `LocalRunner`).

    The queue has one worker per entry of `config.devices`: a device here, a Ray Serve replica with --ray.
    """

    def __init__(self, config: ServeConfig, runner: Runner | None = None) -> None:
        self.config = config
        runner = runner or LocalRunner(config)
        self.root = Path(tempfile.mkdtemp(prefix="swin2sr-serve-", dir=config.data_dir))
        self.queue = JobQueue(
            runner, list(config.devices), capacity=config.queue, keep_seconds=config.keep_seconds,
            drain_seconds=config.drain_seconds,
        )  # fmt: skip

    def start(self) -> None:
        self.queue.start()

    def close(self) -> None:
        """Drain the queue and remove the data folder with everything in it."""
        self.queue.close()
        shutil.rmtree(self.root, ignore_errors=True)
