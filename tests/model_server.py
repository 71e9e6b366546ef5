"""A local stand-in for the release server: seeded random-weight files in the official format, on 127.0.0.1.

The first path segment picks how the server behaves, so a test chooses it through SWIN2SR_MODEL_BASE_URL:

    /ok/<file>         the file, with HTTP Range support (206 Partial Content)
    /drop/<file>       the first request for each file stops half-way (the connection is closed); Range works
    /norange/<file>    like /drop/, but Range is ignored: every answer is the whole file (200)
    /html/<file>       an HTML page with status 200, as a captive portal or a wrong link gives
    /truncated/<file>  the first half of the file, as a complete response (Content-Length of the half)
    /hf/<repo>/resolve/main/pytorch_model.bin   the same weights under Hugging Face transformers names

Every request is logged (path and Range header), so tests can say "a second use sends no request".
"""

from __future__ import annotations

import http.server
import io
import threading
from dataclasses import dataclass, field

import torch

from checkpoints import OFFICIAL_CONFIGS, random_official_state_dict
from swin2sr import catalog, hf_names

HTML = b"<!DOCTYPE html><html><body><h1>Sign in to continue</h1></body></html>\n"
# Only the lightweight release is small (17.6 MB); the variant check needs the released shapes, so the other
# names serve that file too (a "different model" for them) unless a test gives them their own (`files`).
SERVED_CONFIG = "lightweight_x2"


def official_file_bytes(config: str = SERVED_CONFIG, seed: int = 0) -> bytes:
    """A release-format .pth (bare state dict, buffers included) with seeded random weights."""
    buffer = io.BytesIO()
    torch.save(random_official_state_dict(OFFICIAL_CONFIGS[config], seed), buffer)
    return buffer.getvalue()


def hf_file_bytes(config: str = SERVED_CONFIG, seed: int = 0) -> bytes:
    """The same weights as transformers' conversion stores them (pytorch_model.bin, HF names, no buffers)."""
    buffer = io.BytesIO()
    state = random_official_state_dict(OFFICIAL_CONFIGS[config], seed)
    torch.save(hf_names.official_to_hf(state, OFFICIAL_CONFIGS[config]), buffer)
    return buffer.getvalue()


@dataclass
class ModelServer:
    """Handle on the running server: its base URL, the bytes it serves and the requests it saw."""

    url: str
    content: bytes  # served under every release name not in `files`
    hf_content: bytes
    files: dict[str, bytes] = field(default_factory=dict)  # release file name -> its own bytes
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    dropped: set[str] = field(default_factory=set)

    def content_for(self, file: str) -> bytes:
        return self.files.get(file, self.content)

    def requests_for(self, file: str) -> list[tuple[str, str | None]]:
        return [request for request in self.requests if request[0].endswith("/" + file)]


def _handler(server: ModelServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            server.requests.append((self.path, self.headers.get("Range")))
            mode, _, name = self.path.lstrip("/").partition("/")
            if mode == "hf" and name.endswith("/resolve/main/" + catalog.HF_FILE):
                return self._send(server.hf_content, ranged=True)
            if catalog.find(name) is None:
                return self.send_error(404)
            if mode == "html":
                return self._send(HTML, ranged=False, kind="text/html")
            content = server.content_for(name)
            if mode == "truncated":
                return self._send(content[: len(content) // 2], ranged=False)
            if mode in ("drop", "norange") and name not in server.dropped:
                server.dropped.add(name)
                return self._send(content, ranged=mode == "drop", stop_at=len(content) // 2)
            if mode in ("ok", "drop", "norange"):
                return self._send(content, ranged=mode != "norange")
            return self.send_error(404)

        def _send(self, body: bytes, ranged: bool, kind: str = "application/octet-stream", stop_at=None) -> None:
            start = _range_start(self.headers.get("Range")) if ranged else 0
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            self.wfile.write(body[start:stop_at])
            if stop_at is not None:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # drop the connection half-way

    return Handler


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    return int(header.removeprefix("bytes=").split("-")[0] or 0)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up mid-transfer (a cancelled download) is expected here, not worth a traceback."""


class running_server:
    """Context manager: a ModelServer on 127.0.0.1 (a free port) in a daemon thread, stopped on exit."""

    def __init__(self, content: bytes, hf_content: bytes, files: dict[str, bytes] | None = None) -> None:
        self.state = ModelServer("", content, hf_content, dict(files or {}))
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler(self.state))
        self.state.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self.state

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
