"""What the machine offers, measured the same way on Linux, Windows and macOS.

Most ComfyUI users run the Windows portable build and many run macOS, so nothing here (or anywhere in the
package) imports a POSIX-only module at import time or reads /proc: host RAM figures come from psutil, which
ComfyUI and the WebUI both ship and which is a dependency of this package; `resource` is imported only inside
`peak_rss`, where it exists. The Apple GPU (MPS) gets its own free-memory figure, and a device that the machine
lacks is refused in one line before any work.
"""

from __future__ import annotations

import sys

import psutil
import torch


def available_ram() -> int:
    """Bytes of host RAM available to new allocations without swapping (Linux MemAvailable and its equivalents)."""
    return int(psutil.virtual_memory().available)


def peak_rss() -> int:
    """The process's peak resident memory so far, in bytes.

    Windows: the peak working set. Elsewhere getrusage's ru_maxrss, which is bytes on macOS but KiB on Linux
    and the BSDs. Where neither exists, the current resident size (a lower bound).
    """
    info = psutil.Process().memory_info()
    if hasattr(info, "peak_wset"):
        return int(info.peak_wset)
    try:
        import resource
    except ImportError:
        return int(info.rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def mps_free_memory() -> int:
    """Bytes the Apple GPU may still allocate: Metal's recommended working set less what the driver already holds
    (torch >= 2.3), never more than the host's available RAM (the memory is shared); older torch: that RAM."""
    mps = getattr(torch, "mps", None)
    if not hasattr(mps, "recommended_max_memory"):
        return available_ram()
    return max(0, min(mps.recommended_max_memory() - mps.driver_allocated_memory(), available_ram()))
