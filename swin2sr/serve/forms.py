"""The upscale request's envelope: the body-size limit, the multipart field `image` and the option fields.

Everything here refuses with an `UploadError` (status + one line) before the upload is written anywhere.
"""

from __future__ import annotations

import json
import math

from ..settings import FALSE_WORDS, TRUE_WORDS
from .render import RenderOptions
from .uploads import UploadError, too_large_message

MULTIPART = "multipart/form-data"
MULTIPART_OVERHEAD = 64 << 10  # bytes of a multipart body besides the file: boundaries, headers, option fields
_FALSE = (*FALSE_WORDS, "")  # an empty form field is "no"
PATH_CHARACTERS = ("/", "\\", "\0", "..")


class BodyTooLarge(Exception):
    """The request body grew past the limit while being read."""


class BodyLimit:
    """ASGI middleware: a body larger than the upload limit is refused with 413 before it is stored.

    A declared Content-Length over the limit is answered at once, unread; a body without one (chunked) is
    counted as it arrives and reading stops with BodyTooLarge at the limit.
    """

    def __init__(self, app, path: str, max_bytes: int) -> None:
        self.app, self.path, self.limit = app, path, max_bytes + MULTIPART_OVERHEAD
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_json(send, 413, {"error": too_large_message(self.max_bytes)})
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge()
            return message

        await self.app(scope, counted, send)


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_multipart(content_type: str) -> None:
    if not content_type.lower().startswith(MULTIPART):
        raise UploadError(415, f"send the image as {MULTIPART} with the file in the field 'image' "
                               f"(got Content-Type {content_type or 'none'!r})")


def upload_field(form):
    """The file in the field `image`; its client-side name is checked but never used as a path."""
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise UploadError(400, "no file in the multipart field 'image'; send the picture as image=@photo.png")
    name = upload.filename or ""
    if any(part in name for part in PATH_CHARACTERS) or any(ord(ch) < 32 for ch in name):
        raise UploadError(400, f"the file name {name[:80]!r} looks like a path; send a plain file name such as "
                               "photo.png (names are never used as paths here)")
    return upload


def read_options(form, models: tuple[str, ...]) -> RenderOptions:
    """RenderOptions from the form's text fields; an unknown model or a malformed value is a 400."""
    model = _text(form, "model") or models[0]
    if model not in models:
        raise UploadError(400, f"model {model[:80]!r} is not served here; choose one of: {', '.join(models)}")
    return RenderOptions(
        model=model,
        factor=_number(form, "factor", float),
        width=_number(form, "width", int),
        height=_number(form, "height", int),
        sharpen=_number(form, "sharpen", float) or 0.0,
        faces=_flag(form, "faces"),
    )


def _text(form, name: str) -> str:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise UploadError(400, f"the field {name!r} must be text, not a file")
    return (value or "").strip()


def _number(form, name: str, kind: type):
    text = _text(form, name)
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        kind_name = "a whole number" if kind is int else "a number"
        raise UploadError(400, f"{name} must be {kind_name}, not {text[:40]!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and name != "sharpen"):
        raise UploadError(400, f"{name} must be positive, not {text[:40]!r}")
    return value


def _flag(form, name: str) -> bool:
    text = _text(form, name).lower()
    if text in TRUE_WORDS or text in _FALSE:
        return text in TRUE_WORDS
    raise UploadError(400, f"{name} must be true or false, not {text[:40]!r}")
