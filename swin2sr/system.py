"""What the machine offers, measured the same way on Linux, Windows and macOS.

Most ComfyUI users run the Windows portable build and many run macOS, so nothing here (or anywhere in the
package) imports a POSIX-only module at import time or relies on /proc: host RAM figures come from psutil, which
ComfyUI and the WebUI both ship and which is a dependency of this package; `peak_rss` reads Linux's own
high-water mark from /proc where it can and falls back to psutil and `resource` (imported only there). The
Apple GPU (MPS) gets its own free-memory figure, and a device that the machine lacks is refused in one line
before any work.
"""

from __future__ import annotations

import sys

import psutil
import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 2 << 20  # blocks above this are mapped on their own and unmapped when freed
TRIM_THRESHOLD_BYTES = 16 << 20  # free memory above this at the heap's top goes back to the system


def available_ram() -> int:
    """Bytes of host RAM available to new allocations without swapping (Linux MemAvailable and its equivalents)."""
    return int(psutil.virtual_memory().available)


def peak_rss() -> int:
    """This process's own peak resident memory so far, in bytes, however it was started.

    Linux: VmHWM, the high-water mark of this process's memory since it began (exec or fork).  Not
    getrusage's ru_maxrss: Linux carries that across exec, so a CLI started from a large process (a test,
    a benchmark, a host) would report its parent's peak as its own.  Windows: the peak working set (its own).
    Elsewhere (macOS, the BSDs) ru_maxrss, bytes on macOS, KiB on the BSDs; where none of these can be read,
    the current resident size (a lower bound).
    """
    own = _linux_high_water_mark()
    if own is not None:
        return own
    info = psutil.Process().memory_info()
    if hasattr(info, "peak_wset"):
        return int(info.peak_wset)
    try:
        import resource
    except ImportError:
        return int(info.rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _linux_high_water_mark() -> int | None:
    """VmHWM from /proc/self/status in bytes (psutil does not report it); None off Linux or without /proc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def release_freed_memory_promptly() -> bool:
    """Have glibc give large freed blocks back to the system (a process-wide setting, so only the CLI's entry,
    which owns its process, calls it; a host keeps its allocator as it is).  False where there is no glibc.

    glibc serves blocks above its mmap threshold from their own mappings, unmapped on free, but raises that
    threshold (up to 32 MiB) whenever such a block is freed; from then on tiles, bands and a layer's outputs come
    from the heap, whose freed space it keeps.  Fixed thresholds (mallopt, which also ends the raising) trade
    memory for page faults.  builtin-x4, --tile 128, 2-core AMD EPYC, idle, through a small launcher
    (benchmarks/README.md, bench_streaming.py --cli), peak RSS and time for 4000x3000 / 16000x12000 outputs:
    mmap 2 MiB + trim 16 MiB (chosen) 0.817 / 0.911 GB, 26 / 381 s; 16 MiB + 16 MiB 0.836 / 0.953 GB (+14.0%,
    at the edge of the +15% target), 19 / 278 s; 64 KiB about 0.79 / 0.86 GB at about twice the 16 MiB time
    (8000x6000: 116 s against 58 s), every tensor in fresh pages.  Left to glibc (dynamic), a 1600x1200 output
    already peaks at 0.80-0.93 GB and a 4000x3000 one at 1.01 GB.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (no mallopt exported)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)


def mps_free_memory() -> int:
    """Bytes the Apple GPU may still allocate: Metal's recommended working set less what the driver already holds
    (torch >= 2.3), never more than the host's available RAM (the memory is shared); older torch: that RAM."""
    mps = getattr(torch, "mps", None)
    if not hasattr(mps, "recommended_max_memory"):
        return available_ram()
    return max(0, min(mps.recommended_max_memory() - mps.driver_allocated_memory(), available_ram()))
