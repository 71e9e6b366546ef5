"""One download path for the catalogue's files, shared by the CLI and every host.

What a user can rely on, whichever host asks:

* nothing half-written is ever used: the transfer goes to a hidden `.<file>.part` next to the target,
  is loaded and its variant checked (`verify`, supplied by the loader), and only then renamed into place;
  a refused file (an HTML error page, a truncated transfer, a different model) is deleted;
* a connection that drops is resumed with an HTTP Range request (or restarted cleanly when the server
  ignores Range); a process killed mid-transfer leaves its `.part`, which the next fetch resumes;
  any other interruption (Ctrl-C, ComfyUI's Cancel raising from the progress callback) deletes it;
* two processes fetching the same file take turns on a lock file; the second finds the first one's
  verified file and uses it;
* the SHA-256 of the verified file is recorded beside it (`<file>.sha256`, sha256sum format) and checked
  on every later use, so a file changed or damaged on disk is refused instead of giving wrong pixels.
  A file put in place by hand (or by ComfyUI's Missing Models dialog) is verified once and recorded;
* `SWIN2SR_OFFLINE=1` or `HF_HUB_OFFLINE=1` forbid the network; then, or when no source answers, the
  error is one line naming the URL and the exact folder to put the file in by hand.

The transfer itself is replaceable (`transfer=`): A1111/Forge pass their own downloader, everything else
uses `http_transfer` (urllib from the standard library: Range requests and a progress callback, and no
dependency).  Progress is reported as (bytes done, bytes total); each host plugs in its own bar.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from .catalog import BASE_URL_ENV, ReleaseModel
from .settings import TRUE_WORDS

log = logging.getLogger("swin2sr")

OFFLINE_ENVS = ("SWIN2SR_OFFLINE", "HF_HUB_OFFLINE")
USER_AGENT = "swin2sr-upscaler (+https://github.com/mv-lab/swin2sr)"
TIMEOUT_S = 20  # per connection attempt and per read: an unreachable server fails within seconds
ATTEMPTS = 4  # a transfer that drops is resumed this many times, as long as each attempt makes progress
CHUNK = 1 << 20
_NETWORK_ERRORS = (URLError, ConnectionError, TimeoutError, http.client.HTTPException)

Progress = Callable[[int, int], None]  # (bytes done, bytes total; 0 when the server does not say)
Transfer = Callable[[str, Path, "Progress | None"], None]  # (url, .part file to complete, progress)
Verify = Callable[[Path], None]  # raises (CheckpointError) when the file is not the expected model


class FetchError(ValueError):
    """A catalogue model that cannot be obtained or trusted; the message is one line saying what to do."""


def offline() -> str | None:
    """The variable that forbids network access ("SWIN2SR_OFFLINE"), or None when downloads are allowed."""
    for name in OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() in TRUE_WORDS:
            return name
    return None


def fetch(
    entry: ReleaseModel,
    folder: Path,
    verify: Verify,
    progress: Progress | None = None,
    transfer: Transfer | None = None,
) -> Path:
    """The verified local file of `entry` in `folder`, downloaded first if it is not there yet."""
    target = folder / entry.file
    if target.is_file():
        check_file(entry, target, verify)
        return target
    blocked = offline()
    if blocked:
        raise FetchError(
            f"{entry.name} is not downloaded and {blocked}=1 forbids the network: download {entry.urls()[0]} "
            f"by hand and put it in {folder}{os.sep} as {entry.file}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    lock = _acquire_lock(folder / f".{entry.file}.lock", entry)
    try:
        if target.is_file():  # another process fetched it while we waited
            check_file(entry, target, verify)
        else:
            _download(entry, folder, verify, progress, transfer or http_transfer)
    finally:
        lock.release()
    return target


def _acquire_lock(path: Path, entry: ReleaseModel):
    """An inter-process lock (filelock comes with torch), held by this process; the OS frees it if we die."""
    from filelock import FileLock

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except TimeoutError:  # filelock.Timeout: another process holds it
        log.info("waiting for another process downloading %s", entry.file)
        lock.acquire()
    return lock


def _download(entry: ReleaseModel, folder: Path, verify: Verify, progress: Progress | None, transfer: Transfer) -> None:
    part = folder / f".{entry.file}.part"
    try:
        url = _transfer_from_first_source(entry, folder, part, progress, transfer)
        try:
            verify(part)
        except ValueError as exc:
            raise FetchError(f"{url} did not give the {entry.variant} model, so nothing was kept: {exc}") from None
        digest = sha256_of(part)
        if entry.sha256 and digest != entry.sha256:
            raise FetchError(f"{url} gave a file whose SHA-256 {digest} is not the published {entry.sha256}; "
                             "nothing was kept; try again later or fetch it by hand")  # fmt: skip
        record_hash(folder / entry.file, digest)
        os.replace(part, folder / entry.file)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _transfer_from_first_source(
    entry: ReleaseModel, folder: Path, part: Path, progress: Progress | None, transfer: Transfer
) -> str:
    """The URL that delivered the file into `part`; each source starts afresh (sources hold different bytes)."""
    failures = []
    for url in entry.urls():
        log.info("downloading %s (about %.0f MB) from %s", entry.file, entry.size_mb, url)
        try:
            transfer(url, part, progress)
            return url
        except _NETWORK_ERRORS as exc:
            failures.append((url, _reason(exc)))
            part.unlink(missing_ok=True)
    url, reason = failures[0]
    mirror = "" if os.environ.get(BASE_URL_ENV, "").strip() else f", or set {BASE_URL_ENV} to a mirror"
    raise FetchError(
        f"cannot download {entry.name} from {url} ({reason}); download it by hand and put it in {folder}{os.sep} "
        f"as {entry.file}{mirror}"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def http_transfer(url: str, part: Path, progress: Progress | None = None) -> None:
    """Complete `part` from `url`, resuming with Range requests while each attempt makes progress."""
    for attempt in range(ATTEMPTS):
        start = _held(part)
        try:
            done, total = _one_request(url, part, start, progress)
        except HTTPError as exc:
            if exc.code != 416 or not start:
                raise
            part.unlink()  # the range lies beyond the file: what we hold is not its prefix; start again
            continue
        except _NETWORK_ERRORS:
            if attempt == ATTEMPTS - 1 or _held(part) <= start:
                raise
            log.info("connection dropped at %d bytes; resuming", _held(part))
            continue
        if not total or done == total:
            return
        if done <= start or attempt == ATTEMPTS - 1:
            raise http.client.IncompleteRead(b"", total - done)
        log.info("transfer ended early at %d of %d bytes; resuming", done, total)
    raise http.client.IncompleteRead(b"")


def _held(part: Path) -> int:
    return part.stat().st_size if part.exists() else 0


def _one_request(url: str, part: Path, start: int, progress: Progress | None) -> tuple[int, int]:
    """One GET (ranged from `start` when the part holds bytes): (bytes held at the end, expected total or 0)."""
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={start}-"} if start else {})}
    with urlopen(Request(url, headers=headers), timeout=TIMEOUT_S) as response:
        if start and response.status != 206:
            start = 0  # the server ignored Range and sends the whole file: restart cleanly
        length = int(response.headers.get("Content-Length") or 0)
        total = start + length if length else 0
        done = start
        with open(part, "ab" if start else "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    return done, total


# --- integrity record --------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def hash_record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def record_hash(path: Path, digest: str) -> None:
    """Write `<file>.sha256` (sha256sum format) atomically; a read-only folder only loses the later check."""
    record, temporary = hash_record(path), path.with_name(f".{path.name}.sha256.part")
    try:
        temporary.write_text(f"{digest}  {path.name}\n", encoding="utf-8")
        os.replace(temporary, record)
    except OSError as exc:
        log.warning("cannot record the SHA-256 of %s (%s); it will be verified again next time", path, exc)


def recorded_hash(path: Path) -> str | None:
    try:
        return hash_record(path).read_text(encoding="utf-8").split()[0].lower()
    except (OSError, IndexError):
        return None


def check_file(entry: ReleaseModel, path: Path, verify: Verify) -> None:
    """Use an existing file only if it matches its record; a file without one is verified once, then recorded."""
    expected = recorded_hash(path) or entry.sha256
    if expected is None:
        verify(path)
        record_hash(path, sha256_of(path))
        return
    digest = sha256_of(path)
    if digest != expected:
        raise FetchError(
            f"{path} has changed since it was verified (SHA-256 {digest[:12]}..., recorded {expected[:12]}...); "
            f"delete it and {hash_record(path).name} and fetch it again (swin2sr models get {entry.name})"
        )
