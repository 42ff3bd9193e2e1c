"""NVIDIA GPUs through NVML. The NVML module is injectable so tests fake it at this one seam."""

from __future__ import annotations

import contextlib
from typing import Any

from ..model import Gpu


def _load_nvml() -> Any:
    import pynvml  # provided by the nvidia-ml-py distribution

    return pynvml


def probe_gpus(nvml: Any | None = None) -> tuple[tuple[Gpu, ...], tuple[str, ...]]:
    """All NVIDIA GPUs with total and free memory; a failing NVML is a note, never an exception."""
    try:
        nvml = nvml if nvml is not None else _load_nvml()
        nvml.nvmlInit()
    except Exception as exc:  # no driver, no library, no GPU: all mean "no NVIDIA GPU here"
        return (), (f"no NVIDIA GPU found ({_reason(exc)})",)
    gpus = []
    notes: list[str] = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:
                notes.append(f"GPU {index}: could not be read ({_reason(exc)})")
                continue
            if isinstance(name, bytes):
                name = name.decode("utf-8", errors="replace")
            gpus.append(Gpu(index=index, name=str(name), total_bytes=int(memory.total),
                            free_bytes=int(memory.free)))
    except Exception as exc:
        notes.append(f"NVML failed while listing GPUs ({_reason(exc)})")
    finally:
        with contextlib.suppress(Exception):  # shutting down a half-initialised NVML can fail too
            nvml.nvmlShutdown()
    return tuple(gpus), tuple(notes)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__
