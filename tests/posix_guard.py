"""Make POSIX-only facilities unavailable to the pack's own code, as on Windows (used in a subprocess).

`install(root)` refuses, for code in the pack (swin2sr/, the ComfyUI and A1111 entry files), to import
`resource`, `fcntl` and the other POSIX-only modules, and to open anything under /proc. Third-party code
keeps them: on Linux the standard library (subprocess imports fcntl) and psutil (which reads /proc) need them
for their own work, and on Windows they have their own means; what is checked is that the pack never relies
on them directly. An import counts as the pack's when the statement runs in a pack file; an open, when the
nearest caller outside the standard library is a pack file (so Path.read_text() from the pack is caught).
"""

from __future__ import annotations

import builtins
import io
import os
import site
import sys
import sysconfig
from pathlib import Path

BLOCKED_MODULES = ("resource", "fcntl", "termios", "pwd", "grp", "posix")
PACK_PARTS = ("swin2sr", "scripts", "__init__.py", "nodes.py", "comfy_adapter.py", "preload.py", "install.py")

_STDLIB = sysconfig.get_paths()["stdlib"]
# Every site-packages folder: in a venv made with --system-site-packages the base interpreter's one sits under
# _STDLIB and holds third-party code (psutil) all the same.
_SITE = tuple({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()})


def install(root: str | os.PathLike) -> None:
    pack = tuple(str(Path(root).resolve() / part) for part in PACK_PARTS)
    real_import, real_open = builtins.__import__, io.open

    def is_pack(filename: str) -> bool:
        return filename.startswith(pack)

    def is_stdlib(filename: str) -> bool:
        return filename.startswith("<frozen") or (filename.startswith(_STDLIB) and not filename.startswith(_SITE))

    def importer(frame):
        while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        return frame

    def caller_outside_stdlib(frame):
        while frame is not None and is_stdlib(frame.f_code.co_filename):
            frame = frame.f_back
        return frame

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        frame = importer(sys._getframe(1))
        if level == 0 and name.split(".")[0] in BLOCKED_MODULES and frame and is_pack(frame.f_code.co_filename):
            raise ModuleNotFoundError(f"No module named {name!r} (POSIX-only; blocked as on Windows)", name=name)
        return real_import(name, globals, locals, fromlist, level)

    def guarded_open(file, *args, **kwargs):
        path = os.fsdecode(file) if isinstance(file, (str, bytes, os.PathLike)) else ""
        frame = caller_outside_stdlib(sys._getframe(1))
        if path.startswith("/proc") and frame and is_pack(frame.f_code.co_filename):
            raise FileNotFoundError(2, "No such file or directory (no /proc, as on Windows)", path)
        return real_open(file, *args, **kwargs)

    builtins.__import__ = guarded_import
    builtins.open = io.open = guarded_open


def assert_guarded(root: str | os.PathLike) -> None:
    """Proof that the guard bites: code compiled as a pack file can neither import `resource` nor read /proc."""
    probe = str(Path(root).resolve() / "swin2sr" / "_probe.py")
    for source, error in (("import resource", ImportError), ("open('/proc/self/status')", FileNotFoundError),
                          ("import pathlib; pathlib.Path('/proc/meminfo').read_text()", FileNotFoundError)):
        try:
            exec(compile(source, probe, "exec"), {})  # noqa: S102 - the fixed probe snippets above, test-only
        except error:
            continue
        raise AssertionError(f"the POSIX guard let {source!r} through")
