"""System RAM through psutil (injectable for tests), and the whole probe put together."""

from __future__ import annotations

import platform
from typing import Any

from ..model import Hardware, HardwareSource
from .nvidia import probe_gpus
from .overrides import unified_gpu


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
                   machine: str | None = None, system: str | None = None) -> Hardware:
    total, available, ram_notes = probe_ram(psutil_module)
    # Apple Silicon shares one memory pool between CPU and GPU (llama.cpp's Metal backend).
    unified = (system or platform.system()) == "Darwin" and (machine or platform.machine()) == "arm64"
    found, gpu_notes = probe_gpus(nvml) if gpus and not unified else ((), ())
    notes = ram_notes + gpu_notes
    if unified and total:
        found = (unified_gpu(total, None),)
        notes = ram_notes + ("unified memory (Apple Silicon): GPU and CPU share RAM; --gpu-share sets the GPU's part",)
    return Hardware(source=HardwareSource.PROBE, gpus=found, ram_total_bytes=total, ram_available_bytes=available,
                    unified_memory=unified, notes=notes)
