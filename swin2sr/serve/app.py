"""The routes: parse, validate, enqueue, answer.  No model code (that is `render`, run by the queue's workers).

API (fixed shape; docs/serve.md is the reference):
  POST   /v1/upscale              multipart: image (+ model, factor, width, height, sharpen, faces) -> 202 or,
                                  with ?wait=true, 200 and the image
  GET    /v1/jobs/{id}            {"id", "status", "progress", "queue_position", "error"}
  GET    /v1/jobs/{id}/result     the image, streamed from disk in chunks
  DELETE /v1/jobs/{id}            cancels (queued or running) or forgets (finished); its files go
  GET    /healthz, GET /metrics, GET / (the page)
Every error is {"error": "<one line: the problem and the fix>"} with a 4xx status (5xx only for the server's
own faults and for shutting down).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .forms import BodyLimit, BodyTooLarge, check_multipart, read_options, upload_field
from .queue import Job, QueueFull, ShuttingDown, new_job_folder
from .render import check_options
from .service import ServeConfig, Service
from .telemetry import Telemetry
from .uploads import CHUNK, UploadError, inspect_upload, save_upload, too_large_message

WAIT_POLL = 0.1  # seconds between looks at a job (and at the client's connection) for ?wait=true
MEDIA_TYPES = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}


def create_app(config: ServeConfig, make_service: Callable[[], Service]) -> FastAPI:
    """The FastAPI app; the service comes from `make_service()` at startup and is closed (drained) at shutdown.

    Made at startup, in the process that serves: here that is this one (the models are already loaded), on
    Ray Serve the ingress replica (where the service's runner is a handle to the upscaling replicas).
    """
    service: Service | None = None
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        nonlocal service
        service = make_service()
        telemetry.watch(service.queue)
        service.queue.on_finish = telemetry.job_finished
        service.start()
        try:
            yield
        finally:
            await asyncio.to_thread(service.close)

    app = FastAPI(title="Swin2SR upscaler", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, path="/v1/upscale", max_bytes=config.max_upload_bytes)
    static = resources.files(__package__) / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    _add_error_handlers(app, telemetry)

    def authorize(request: Request) -> None:
        if config.token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {config.token}".encode()):
            raise HTTPException(401, "this server needs a token: send the header 'Authorization: Bearer <token>' "
                                     "(the page asks for it)")

    def job_or_404(job_id: str) -> Job:
        job = service.queue.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:40]!r}: it never existed, was deleted or its result expired "
                                     f"(results are kept {config.keep_seconds / 60:g} minutes)")
        return job

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status = "draining" if service.queue.draining else "ok"
        return JSONResponse({"status": status, "models": list(config.models), "devices": list(config.devices),
                             "queue": len(service.queue), "queue_capacity": config.queue,
                             "token_required": config.token is not None})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        authorize(request)
        body, media_type = telemetry.render()
        return Response(body, media_type=media_type)

    @app.post("/v1/upscale")
    async def upscale(request: Request, wait: bool = False) -> Response:
        authorize(request)
        try:
            service.queue.check_room()  # before the upload is read; and again when the job joins the queue
            job = await _accept(request, service)
            _submit(service, job)
        except QueueFull as exc:
            telemetry.refused.labels("429").inc()
            return _error(429, f"{exc}; the server holds {config.queue} waiting jobs",
                          {"Retry-After": str(exc.retry_after)})
        except ShuttingDown as exc:
            raise HTTPException(503, str(exc)) from None
        if wait:
            return await _wait_for(job, request, service)
        base = f"/v1/jobs/{job.id}"
        return JSONResponse({"id": job.id, "status_url": base, "result_url": f"{base}/result"}, status_code=202)

    @app.get("/v1/jobs/{job_id}")
    async def job_status(job_id: str, request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse(service.queue.view(job_or_404(job_id)))

    @app.get("/v1/jobs/{job_id}/result")
    async def job_result(job_id: str, request: Request) -> Response:
        authorize(request)
        return _result(job_or_404(job_id))

    @app.delete("/v1/jobs/{job_id}")
    async def job_delete(job_id: str, request: Request) -> JSONResponse:
        authorize(request)
        job = job_or_404(job_id)
        service.queue.cancel(job.id)
        return JSONResponse(service.queue.view(job))

    return app


async def _accept(request: Request, service: Service) -> Job:
    """The upload saved and checked in a new job folder, with its options; UploadError/HTTPException otherwise."""
    config = service.config
    check_multipart(request.headers.get("content-type", ""))
    try:
        form = await request.form(max_files=1, max_fields=16)
    except BodyTooLarge:
        raise UploadError(413, too_large_message(config.max_upload_bytes)) from None
    try:
        upload, options = upload_field(form), read_options(form, config.models)
        folder = new_job_folder(service.root)
        try:
            source = await save_upload(_chunks(upload), folder, config.max_upload_bytes)
            found = await asyncio.to_thread(inspect_upload, source, config.max_pixels)
            _check_options(options, found)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    finally:
        await form.close()
    return Job(folder, found.path, folder / f"result{found.result_suffix}", options)


def _submit(service: Service, job: Job) -> None:
    """Queue the job; one refused after all (the queue filled meanwhile) loses its files."""
    try:
        service.queue.submit(job)
    except (QueueFull, ShuttingDown):
        shutil.rmtree(job.folder, ignore_errors=True)
        raise


def _check_options(options, found) -> None:
    try:
        check_options(options, (found.width, found.height), found.animated)
    except ValueError as exc:
        raise UploadError(400, str(exc)) from None


async def _chunks(upload):
    while chunk := await upload.read(CHUNK):
        yield chunk


async def _wait_for(job: Job, request: Request, service: Service) -> Response:
    """?wait=true: hold the connection until the job ends; a client that goes away cancels its job."""
    while not job.finished:
        if await request.is_disconnected():
            service.queue.cancel(job.id)
            return Response(status_code=499)
        await asyncio.sleep(WAIT_POLL)
    return _result(job, draining=service.queue.draining)


def _result(job: Job, draining: bool = False) -> Response:
    if job.status == "done":
        suffix = job.destination.suffix
        return FileResponse(str(job.destination), media_type=MEDIA_TYPES[suffix],
                            filename=f"upscaled-{job.id[:8]}{suffix}")
    if job.status == "failed":
        return _error(400 if job.user_error else 500, job.error)
    if job.status == "cancelled":
        return _error(503 if draining else 409, job.error)
    return _error(409, f"job {job.id} is {job.status}; poll its status_url until status is done")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI, telemetry: Telemetry) -> None:
    """Every error as {"error": one line}; uploads refused before queueing are counted by status."""

    @app.exception_handler(UploadError)
    async def upload_error(_request: Request, exc: UploadError) -> JSONResponse:
        telemetry.refused.labels(str(exc.status)).inc()
        return _error(exc.status, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":  # an unknown address (our 404s say more)
            message = f"no such address {request.url.path!r}; the API is under /v1 (see /healthz, the page at /)"
        else:
            message = str(exc.detail)
        headers = {"Retry-After": "10"} if exc.status_code == 503 else None
        return _error(exc.status_code, " ".join(message.split()), headers)

    @app.exception_handler(RequestValidationError)
    async def bad_query(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _error(400, f"bad parameter {where}: {first.get('msg', 'invalid')}; see docs/serve.md for the API")
