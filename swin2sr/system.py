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
MMAP_THRESHOLD_BYTES = 16 << 20  # blocks above this are mapped on their own and unmapped when freed
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
    info = psutil.Process().memory_info()
    if hasattr(info, "peak_wset"):
        return int(info.peak_wset)
    own = _linux_high_water_mark()
    if own is not None:
        return own
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
    memory for page faults.  Measured on a 2-core AMD EPYC, 400x300 -> 1600x1200 with builtin-x4 (--tile 128):
    dynamic 0.80-0.90 GB peak; 16 MiB for both 0.73 GB at +10-20% wall time; 64 KiB 0.72 GB at +50-60% (every
    tensor in fresh pages).  16 MiB keeps the 4000x3000 -> 16000x12000 files under 1 GB (benchmarks/README.md).
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
