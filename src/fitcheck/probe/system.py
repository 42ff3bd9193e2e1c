"""System RAM and CPU through psutil (injectable for tests), and the whole probe put together:
NVIDIA through NVML, then AMD/Intel through sysfs (Linux), or Apple Silicon's unified memory."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model import Gpu, Hardware, HardwareSource
from .membw import cached_ram_bandwidth, cpu_info
from .nvidia import Lookup, probe_gpus
from .overrides import unified_gpu
from .sysfs import probe_sysfs_gpus

SYSFS_ROOT = Path("/sys")
Bandwidth = Callable[[], tuple[float, str]]  # () -> (GB/s, source), e.g. cached_ram_bandwidth


def probe_ram(psutil_module: Any | None = None) -> tuple[int | None, int | None, tuple[str, ...]]:
    try:
        if psutil_module is None:
            import psutil

            psutil_module = psutil
        memory = psutil_module.virtual_memory()
        return int(memory.total), int(memory.available), ()
    except Exception as exc:
        return None, None, (f"system RAM could not be read ({exc})",)


def probe_hardware(nvml: Any | None = None, psutil_module: Any | None = None, *, gpus: bool = True,
                   machine: str | None = None, system: str | None = None, measure_bandwidth: bool = False,
                   bandwidth: Bandwidth | None = None, sysfs_root: Path | None = None,
                   lookup: Lookup | None = None,
                   cpu: Callable[[], tuple[str | None, int | None]] | None = None) -> Hardware:
    """This machine. The RAM bandwidth is measured (or read from its cache) only with `measure_bandwidth`,
    i.e. when speed is shown, through `bandwidth` (default: `cached_ram_bandwidth` with llama.cpp's thread
    count). Tests inject `nvml`, `psutil_module`, `sysfs_root`, `lookup`, `cpu` and `bandwidth`."""
    system = system or platform.system()
    total, available, ram_notes = probe_ram(psutil_module)
    cpu_name, cores = (cpu or (lambda: cpu_info(psutil_module)))()
    notes = list(ram_notes)
    # Apple Silicon shares one memory pool between CPU and GPU (llama.cpp's Metal backend).
    unified = system == "Darwin" and (machine or platform.machine()) == "arm64"
    found: tuple[Gpu, ...] = ()
    if unified:
        if total:
            found = (unified_gpu(total, None),)
            notes.append("unified memory (Apple Silicon): GPU and CPU share RAM; --gpu-share sets the GPU's part")
    elif gpus:
        found, gpu_notes = probe_gpus(nvml, lookup)
        notes += gpu_notes
        if system == "Linux":
            others, sysfs_notes = probe_sysfs_gpus(sysfs_root or SYSFS_ROOT, lookup=lookup, others=len(found))
            if others:  # NVML's "no NVIDIA GPU" is noise on a machine whose GPU is an AMD or Intel one
                notes = [n for n in notes if not n.startswith("no NVIDIA GPU")]
            found, notes = found + others, notes + list(sysfs_notes)
    ram_bw = ram_bw_source = None
    if measure_bandwidth:
        measure = bandwidth or (lambda: cached_ram_bandwidth(threads=cores))
        try:
            ram_bw, ram_bw_source = measure()
        except Exception as exc:  # MemoryError, a worker that died: speed goes without the figure
            notes.append(f"RAM bandwidth could not be measured ({type(exc).__name__}: {exc})")
    return Hardware(source=HardwareSource.PROBE, gpus=tuple(found), ram_total_bytes=total,
                    ram_available_bytes=available, unified_memory=unified, notes=tuple(dict.fromkeys(notes)),
                    ram_bandwidth_gbps=ram_bw, ram_bandwidth_source=ram_bw_source, cpu_threads=cores,
                    cpu_name=cpu_name)

