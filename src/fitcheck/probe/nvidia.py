"""NVIDIA GPUs through NVML. The NVML module is injectable so tests fake it at this one seam.

Each GPU's bandwidth and compute come from fitcheck's hardware table when the NVML name is in it; otherwise the
peak memory bandwidth is derived from NVML's bus width and memory clock (see `nvml_bandwidth_gbps`) and the
compute figures stay unknown. Every NVML query beyond the name and memory may fail (old drivers, vGPUs, MIG):
the field is then None, never an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ..model import Gpu

# find(name, memory_bytes) -> DeviceSpec | None, the hardware table's lookup (probe/catalog.py)
Lookup = Callable[[str, int | None], Any]

NVML_CLOCK_MEM = 2  # pynvml.NVML_CLOCK_MEM, for fakes that do not define it

# PCIe bandwidth per lane and direction, GB/s: the signalling rate (2.5 ... 64 GT/s) / 8, the convention of the
# hardware table (catalog.py), so x16 reads 16 / 32 / 64 / 128 for gen 3-6 and the two compare. Theoretical
# peaks: encoding takes 20% (gen 1-2) or ~1.5% (gen 3+), and real host copies reach ~80% of them.
PCIE_LANE_GBPS = {1: 0.3125, 2: 0.625, 3: 1.0, 4: 2.0, 5: 4.0, 6: 8.0}


def _load_nvml() -> Any:
    import pynvml  # provided by the nvidia-ml-py distribution

    return pynvml


def table_lookup(name: str, memory_bytes: int | None) -> Any:
    """The hardware table's `find`, imported only when a device needs it."""
    from .catalog import find

    return find(name, memory_bytes)


def spec_for(lookup: Lookup, name: str, memory_bytes: int | None) -> tuple[Any, str | None]:
    """(DeviceSpec or None, a note when the table itself could not be consulted)."""
    try:
        return lookup(name, memory_bytes), None
    except Exception as exc:  # a missing or broken table costs the figures, not the probe
        return None, f"hardware table unavailable ({_reason(exc)}); device figures from the driver only"


def probe_gpus(nvml: Any | None = None, lookup: Lookup | None = None) -> tuple[tuple[Gpu, ...], tuple[str, ...]]:
    """All NVIDIA GPUs with total and free memory and, where known, bandwidth, compute and host link.

    A failing NVML is a note, never an exception. `lookup` defaults to the hardware table (catalog.find)."""
    lookup = lookup if lookup is not None else table_lookup
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
            gpu, note = _describe(nvml, handle, index, str(name), int(memory.total), int(memory.free), lookup)
            gpus.append(gpu)
            if note:
                notes.append(note)
    except Exception as exc:
        notes.append(f"NVML failed while listing GPUs ({_reason(exc)})")
    finally:
        with contextlib.suppress(Exception):  # shutting down a half-initialised NVML can fail too
            nvml.nvmlShutdown()
    return tuple(gpus), tuple(dict.fromkeys(notes))


def _describe(nvml: Any, handle: Any, index: int, name: str, total: int, free: int,
              lookup: Lookup) -> tuple[Gpu, str | None]:
    link = nvml_link_gbps(nvml, handle)
    spec, table_note = spec_for(lookup, name, total)
    if spec is not None:
        # The table knows the card; NVML knows the slot. A card in a narrower slot (x8, x4 riser) gets the slot.
        table_link = spec.link_gbps
        if getattr(spec, "unified", False):
            link = None  # the GPU shares the CPU's memory: no host link to cross
        elif table_link is not None and link is not None:
            link = min(table_link, link)
        elif table_link is not None:
            link = table_link
        gpu = Gpu(index=index, name=name, total_bytes=total, free_bytes=free, bandwidth_gbps=spec.bandwidth_gbps,
                  fp16_tflops=spec.fp16_tflops, fp32_tflops=spec.fp32_tflops, link_gbps=link,
                  backend=spec.backend or "cuda", spec_source=spec.source)
        return gpu, table_note
    bandwidth = nvml_bandwidth_gbps(nvml, handle)
    gpu = Gpu(index=index, name=name, total_bytes=total, free_bytes=free, bandwidth_gbps=bandwidth,
              link_gbps=link, backend="cuda", spec_source="nvml" if bandwidth is not None else None)
    if table_note:
        return gpu, table_note
    how = f"{bandwidth:.0f} GB/s from NVML's bus width and memory clock" if bandwidth is not None else "unknown"
    return gpu, f"GPU {index} ({name}) is not in the hardware table: memory bandwidth {how}, compute unknown"


def nvml_bandwidth_gbps(nvml: Any, handle: Any) -> float | None:
    """Peak memory bandwidth, GB/s: bus width (bits) / 8 × max memory clock (MHz) × 2 / 1000.

    NVML reports the memory clock at half the per-pin data rate on current drivers, for GDDR5/5X/6/6X/7 and HBM
    alike: RTX 4090 384 bit × 10501 MHz → 1008 GB/s, A100 40GB 5120 bit × 1215 MHz → 1555 GB/s, H100 SXM 5120
    bit × 2619 MHz → 3352 GB/s, GTX 1080 256 bit × 5005 MHz → 320 GB/s, all matching the vendors' figures. The
    factor 2 is an observation, not an NVML contract: a driver that reported the command clock of GDDR5 (1/4 of
    the data rate) would read half the true figure. Needs nvmlDeviceGetMemoryBusWidth (NVML 11.x, driver R450+);
    None when either query fails or reads zero."""
    try:
        bus_bits = int(nvml.nvmlDeviceGetMemoryBusWidth(handle))
        clock_mhz = int(nvml.nvmlDeviceGetMaxClockInfo(handle, getattr(nvml, "NVML_CLOCK_MEM", NVML_CLOCK_MEM)))
    except Exception:
        return None
    if bus_bits <= 0 or clock_mhz <= 0:
        return None
    return round(bus_bits / 8 * clock_mhz * 2 / 1000, 1)


def nvml_link_gbps(nvml: Any, handle: Any) -> float | None:
    """Host PCIe bandwidth per direction, GB/s, for the link the card can train to in this slot.

    The maximum generation and width "possible with this device and system" (a gen 4 card in a gen 3 slot reads
    3) rather than the current link: an idle GPU drops its link to gen 1 to save power, which would read as a
    16x slower bus. The current generation is the fallback where the maximum is not supported."""
    gen = _first(nvml, handle, "nvmlDeviceGetMaxPcieLinkGeneration", "nvmlDeviceGetCurrPcieLinkGeneration")
    width = _first(nvml, handle, "nvmlDeviceGetMaxPcieLinkWidth", "nvmlDeviceGetCurrPcieLinkWidth")
    if gen is None or width is None or gen not in PCIE_LANE_GBPS or width <= 0:
        return None
    return round(PCIE_LANE_GBPS[gen] * width, 1)


def _first(nvml: Any, handle: Any, *names: str) -> int | None:
    for name in names:
        try:
            value = int(getattr(nvml, name)(handle))
        except Exception:
            continue
        if value > 0:
            return value
    return None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__
