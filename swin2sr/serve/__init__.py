"""`swin2sr serve`: the upscaler as a web service (a page and an HTTP API) that no upload can bring down.

An optional extra (`pip install swin2sr-upscaler[serve]`): nothing here imports FastAPI, uvicorn or
prometheus_client until the service starts (`require` names the extra when one is missing).

    command.py   the `serve` subcommand: flags and environment knobs -> ServeConfig, then uvicorn or Ray Serve
    forms.py     the request's envelope: body-size limit, the multipart field `image`, the option fields
    uploads.py   an upload becomes a checked input file: size, header (pixel count) and format, before decoding
    render.py    one job through the core: the CLI's `upscale_file`, or `upscale` + sharpen/resize/faces
    queue.py     the bounded queue, one worker per device, cancellation, expiry, drain on SIGTERM
    service.py   ServeConfig, the models per device, the data folder and the queue of one server
    telemetry.py the Prometheus metrics
    app.py       the routes: parse, validate, enqueue, answer (no model code)
    local.py     uvicorn on this machine, draining on SIGTERM
    ray.py       the same app on Ray Serve replicas
    static/      the page (HTML, JS, CSS), nothing loaded from the internet
"""

from __future__ import annotations

import importlib

EXTRA_HINT = "pip install 'swin2sr-upscaler[serve]'"


def require(*modules: str) -> None:
    """Import check for the service's optional packages: one line naming the extra when one is missing."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ValueError(f"swin2sr serve needs the package {name!r}; install the extra: {EXTRA_HINT}") from None
