"""Prometheus metrics of one server: jobs by status, queue length, seconds per job, peak memory, refusals."""

from __future__ import annotations

from .queue import Job, JobQueue


class Telemetry:
    """A registry of its own (so two apps in one process do not collide), read by GET /metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.finished = Counter("swin2sr_serve_jobs_finished", "jobs finished, by outcome", ["status"],
                                registry=self.registry)
        self.seconds = Histogram("swin2sr_serve_job_seconds", "seconds a job ran on its worker", ["status"],
                                 buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=self.registry)
        self.refused = Counter("swin2sr_serve_refused", "requests refused before queueing, by HTTP status",
                               ["code"], registry=self.registry)

    def watch(self, queue: JobQueue) -> None:
        """Report the queue's live figures (jobs by status, waiting jobs) and the process's peak memory."""
        self.registry.register(_LiveFigures(queue))

    def job_finished(self, job: Job, seconds: float) -> None:
        self.finished.labels(job.status).inc()
        self.seconds.labels(job.status).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LiveFigures:
    """A custom collector: figures read at scrape time rather than kept up to date."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self):
        import torch
        from prometheus_client.core import GaugeMetricFamily

        from ..system import peak_rss

        jobs = GaugeMetricFamily("swin2sr_serve_jobs", "jobs the server knows now, by status", labels=["status"])
        for status, count in self.queue.counts().items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("swin2sr_serve_queue_length", "jobs waiting for a worker", value=len(self.queue))
        yield GaugeMetricFamily("swin2sr_serve_peak_rss_bytes", "peak resident memory of the server process",
                                value=peak_rss())
        if torch.cuda.is_available():
            gpu = GaugeMetricFamily("swin2sr_serve_peak_gpu_bytes", "peak memory allocated by torch, per GPU",
                                    labels=["device"])
            for index in range(torch.cuda.device_count()):
                gpu.add_metric([f"cuda:{index}"], torch.cuda.max_memory_allocated(index))
            yield gpu
