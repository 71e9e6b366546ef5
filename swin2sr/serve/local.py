"""The service on this machine: uvicorn, with the queue's drain started the moment SIGTERM arrives."""

from __future__ import annotations

import logging

from .service import ServeConfig, Service

log = logging.getLogger("swin2sr")


def run_uvicorn(config: ServeConfig, host: str, port: int, *, quiet: bool = False, threads: int | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C, then drain: no new jobs, the running one finishes, the data folder goes.

    threads: torch's CPU threads (None: torch's default, one per core).
    """
    import torch
    import uvicorn

    from .app import create_app

    if threads:
        torch.set_num_threads(threads)
    service = Service(config)
    server = uvicorn.Server(uvicorn.Config(
        create_app(config, lambda: service), host=host, port=port, log_level="warning" if quiet else "info",
        timeout_graceful_shutdown=int(config.drain_seconds) + 5,
    ))  # fmt: skip
    server.handle_exit = _draining_first(service, server.handle_exit)
    log.info("swin2sr serve: http://%s:%d/ (models: %s; devices: %s)", host, port, ", ".join(config.models),
             ", ".join(config.devices))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the signal it drained on; the drain is done by now
        pass
    return 0


def _draining_first(service: Service, handle_exit):
    """uvicorn's signal handler, preceded by the start of the queue's drain.

    Waiting jobs are cancelled at once, so the connections that ?wait=true requests hold end and uvicorn's
    graceful shutdown does not wait on them; the running job gets the drain time, then the app's shutdown
    closes the service (workers joined, data folder removed).
    """

    def handler(sig, frame) -> None:
        service.queue.begin_drain()  # sets two attributes: safe in a signal handler
        handle_exit(sig, frame)

    return handler
