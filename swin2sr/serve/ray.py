"""`swin2sr serve --ray [ADDRESS]`: the same app on Ray Serve, with the upscaling spread over replicas.

Two deployments:
- `Ingress` (one replica) serves the FastAPI app of `app.py` unchanged: the page, the API, the bounded queue
  and the job records live there, so every GET sees every job.  Its queue has one worker per upscaling
  replica; each worker hands a job to the replicas through a deployment handle (`ReplicaRunner`).
- `Upscaler` (one replica per GPU, or N CPU replicas of `threads` CPUs each; `cluster.worker_shape` decides,
  as for `upscale --ray`) loads the served models once and runs `render` on a private copy of the input.  It
  streams ("progress", done, total) events back and then the result's bytes; a job cancelled on the ingress
  closes the stream, which cancels the render at its next tile batch.
"""

from __future__ import annotations

import logging
import queue as queues
import signal
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from ..cluster import ClusterOptions, import_ray, ray_session, worker_shape
from ..io.image_files import atomic_write
from ..tiling import UpscaleCancelled
from .queue import Job
from .render import RenderOptions, render
from .service import ModelShelf, ServeConfig, Service

log = logging.getLogger("swin2sr")

APP_NAME = "swin2sr"
UPSCALER = "Upscaler"


class UpscalerReplica:
    """One upscaling replica: the served models on its device (the GPU Ray gave it, else the CPU)."""

    def __init__(self, config: ServeConfig, threads: int | None) -> None:
        import ray
        import torch

        if threads:
            torch.set_num_threads(threads)
        device = "cuda" if ray.get_gpu_ids() else "cpu"
        self.models = ModelShelf(config.models, (device,))
        self.device, self.upscale = device, dict(config.upscale, device=device)

    def render(self, data: bytes, source_suffix: str, result_suffix: str, options: RenderOptions):
        """Events for one job: ("progress", done, total) ..., then ("result", bytes) or ("failed", kind, line)."""
        events: queues.Queue = queues.Queue()
        stop = threading.Event()
        with tempfile.TemporaryDirectory(prefix="swin2sr-replica-") as folder:
            source, result = Path(folder, "input" + source_suffix), Path(folder, "result" + result_suffix)
            source.write_bytes(data)

            def work() -> None:
                try:
                    render(self.models.get(options.model, self.device), source, result, options, self.upscale,
                           lambda done, total: events.put(("progress", done, total)), stop.is_set)
                    events.put(("result", result.read_bytes()))
                except UpscaleCancelled:
                    events.put(("failed", "cancelled", "cancelled"))
                except ValueError as exc:
                    events.put(("failed", "user", str(exc)))
                except Exception as exc:  # noqa: BLE001 - reported to the ingress, which records the job failed
                    events.put(("failed", "server", f"{type(exc).__name__}: {exc}"))

            thread = threading.Thread(target=work, name="swin2sr-render")
            thread.start()
            try:
                while True:
                    event = events.get()
                    yield event
                    if event[0] != "progress":
                        return
            finally:  # also when the ingress closes the stream (the job was cancelled)
                stop.set()
                thread.join()


class ReplicaRunner:
    """The ingress queue's runner: each job goes to a free upscaling replica through the deployment handle."""

    def __init__(self) -> None:
        from ray import serve

        self.handle = serve.get_deployment_handle(UPSCALER, app_name=APP_NAME).options(stream=True)

    def __call__(self, job: Job, _slot: str, progress, cancel) -> None:
        stream = self.handle.render.remote(job.source.read_bytes(), job.source.suffix, job.destination.suffix,
                                           job.options)
        for event in stream:
            if cancel():
                stream.cancel()
                raise UpscaleCancelled("cancelled")
            if event[0] == "progress":
                progress(event[1], event[2])
            elif event[0] == "result":
                _save(job.destination, event[1])
                return
            else:
                _raise_failure(event[1], event[2])
        raise RuntimeError("the upscaling replica ended the job without a result")


def _save(path: Path, data: bytes) -> None:
    atomic_write(path, lambda out: out.write(data))


def _raise_failure(kind: str, message: str) -> None:
    if kind == "cancelled":
        raise UpscaleCancelled(message)
    if kind == "user":
        raise ValueError(message)
    raise RuntimeError(message)


def build_application(config: ServeConfig, replicas: int, threads: int | None, resources: dict):
    """The Ray Serve application: the ingress bound to `replicas` upscalers with `resources` each."""
    from ray import serve

    from .app import create_app

    ingress_config = replace(config, devices=tuple(f"replica-{i}" for i in range(replicas)))

    @serve.deployment(name="Ingress", num_replicas=1, max_ongoing_requests=4 * config.queue + 64,
                      ray_actor_options={"num_cpus": 0})
    @serve.ingress(lambda: create_app(ingress_config, lambda: Service(ingress_config, ReplicaRunner())))
    class Ingress:
        def __init__(self, upscaler) -> None:
            self.upscaler = upscaler  # bound so that Ray Serve deploys the upscalers with this app

    upscaler = serve.deployment(name=UPSCALER, num_replicas=replicas, max_ongoing_requests=1,
                                ray_actor_options=resources)(UpscalerReplica)
    return Ingress.bind(upscaler.bind(config, threads))


def run_on_ray(config: ServeConfig, args) -> int:
    """Deploy on Ray Serve at --host/--port and serve until SIGTERM or Ctrl-C, then shut the deployments down."""
    ray = import_ray()
    try:
        from ray import serve
    except ImportError:
        raise ValueError("swin2sr serve --ray needs Ray Serve; install it with: "
                         "pip install 'swin2sr-upscaler[serve,serve-ray]'") from None

    cluster = ClusterOptions(address=args.ray or None, actors=args.ray_replicas, threads=args.ray_threads)
    with ray_session(ray, cluster.address):
        available = ray.cluster_resources()
        replicas, threads, resources = worker_shape(available, _default_replicas(cluster, available))
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(build_application(config, replicas, threads, resources), name=APP_NAME, route_prefix="/")
        log.info("swin2sr serve on Ray: http://%s:%d/ (%d upscaling replica%s, %s each)", args.host, args.port,
                 replicas, "s" if replicas > 1 else "", resources)
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        while not stopped.wait(0.5):  # polled: a signal taken by one of Ray's threads would not wake a plain wait
            pass
        log.info("swin2sr serve: stopping (draining the queue)")
        serve.shutdown()  # the ingress's lifespan shutdown drains its queue and removes its data folder
    return 0


def _default_replicas(cluster: ClusterOptions, available: dict) -> ClusterOptions:
    """Without --ray-replicas on a CPU-only cluster: 2 replicas (the GPU default, one each, is worker_shape's)."""
    if cluster.actors is None and not available.get("GPU"):
        return ClusterOptions(cluster.address, actors=2, threads=cluster.threads)
    return cluster
