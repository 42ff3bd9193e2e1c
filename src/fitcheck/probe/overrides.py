"""Hardware from command-line values (--gpu, --vram, --ram, --ram-bandwidth, --cpu-only, --rpc, --unified),
mixed with the probe."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UsageError
from ..model import GiB, Gpu, Hardware, HardwareSource
from .catalog import Selection, resolve

UNIFIED_SMALL_RAM = 36 * GiB


@dataclass(frozen=True)
class HardwareOverrides:
    vram: tuple[int, ...] | None = None  # one entry per local GPU
    ram: int | None = None
    cpu_only: bool = False
    rpc: tuple[tuple[str, int], ...] = ()  # (host:port, memory) of llama.cpp RPC servers
    unified: bool = False  # simulate a shared-memory machine (Apple Silicon)
    gpu_share: float | None = None  # share of RAM the GPU may use on a unified machine
    gpu: str | None = None  # --gpu NAME: a device from the GPU table ("2x RTX 3090", "M2 Max 64GB")
    ram_bandwidth_gbps: float | None = None  # --ram-bandwidth: what the CPU reaches in RAM, GB/s

    @property
    def probe_gpus(self) -> bool:
        return not self.cpu_only and self.vram is None and not self.unified and self.gpu is None


def unified_gpu_share(ram_total: int) -> float:
    """macOS lets the GPU wire about 2/3 of RAM up to 36 GiB and 3/4 above (recommendedMaxWorkingSetSize);
    `sudo sysctl iogpu.wired_limit_mb=N` raises it, which --gpu-share models."""
    return 2 / 3 if ram_total <= UNIFIED_SMALL_RAM else 3 / 4


def unified_gpu(ram_total: int, share: float | None) -> Gpu:
    cap = int(ram_total * (share if share is not None else unified_gpu_share(ram_total)))
    return Gpu(index=0, name=f"Apple GPU (unified, {cap / GiB:.0f} GiB usable)", total_bytes=cap, free_bytes=cap)


def apply_overrides(probed: Hardware, o: HardwareOverrides) -> Hardware:
    _validate(o)
    selection = resolve(o.gpu) if o.gpu is not None else None
    if selection is not None and o.unified and not selection.device.unified:
        raise UsageError(f"--unified and --gpu '{o.gpu}' disagree: {selection.device.name} has its own memory",
                         hint="drop --unified; it describes a machine whose GPU shares RAM")
    overridden = (o.ram is not None or o.cpu_only or o.vram is not None or o.unified or o.gpu_share is not None
                  or bool(o.rpc) or selection is not None or o.ram_bandwidth_gbps is not None)
    hw = probed
    if o.ram is not None:
        hw = replace(hw, ram_total_bytes=o.ram, ram_available_bytes=o.ram)
    if selection is not None:
        hw = _with_selection(hw, selection, o)
    elif o.cpu_only:
        hw = replace(hw, gpus=(), unified_memory=False)
    elif o.unified or (hw.unified_memory and (o.ram is not None or o.gpu_share is not None or o.vram is not None)):
        hw = replace(hw, gpus=(_unified_override(hw, o),), unified_memory=True)
    elif o.vram is not None:
        gpus = tuple(Gpu(index=i, name=f"GPU {i} ({_gib(size)})", total_bytes=size, free_bytes=size)
                     for i, size in enumerate(o.vram) if size > 0)
        hw = replace(hw, gpus=gpus)
    if o.ram_bandwidth_gbps is not None:
        hw = replace(hw, ram_bandwidth_gbps=o.ram_bandwidth_gbps, ram_bandwidth_source="override")
    if o.rpc and not o.cpu_only:
        remote = tuple(Gpu(index=i, name=f"remote ({_gib(size)})", total_bytes=size, free_bytes=size, remote=host)
                       for i, (host, size) in enumerate(o.rpc))
        hw = replace(hw, gpus=remote + hw.gpus)
    return replace(hw, source=HardwareSource.OVERRIDE) if overridden else hw


def _unified_override(hw: Hardware, o: HardwareOverrides) -> Gpu:
    """The GPU of a unified machine after --unified/--ram/--gpu-share/--vram; a probed GPU keeps its figures."""
    total = hw.ram_total_bytes or 0
    gpu = unified_gpu(total, o.gpu_share) if o.vram is None else Gpu(0, "Apple GPU (unified)", o.vram[0], o.vram[0])
    probed = hw.gpus[0] if len(hw.gpus) == 1 and hw.gpus[0].remote is None else None
    if probed is None or o.unified:
        return gpu
    name = gpu.name if probed.name.startswith("Apple GPU (unified") else probed.name
    return replace(probed, name=name, total_bytes=gpu.total_bytes, free_bytes=gpu.free_bytes)


def _validate(o: HardwareOverrides) -> None:
    if o.gpu is not None and o.vram is not None:
        raise UsageError("--gpu and --vram both set the GPU: pick one",
                         hint="--gpu NAME takes the memory from fitcheck's table; --vram SIZE sets it by hand")
    if o.gpu is not None and o.cpu_only:
        raise UsageError("--gpu and --cpu-only contradict each other: pick one",
                         hint="--cpu-only plans for RAM alone; --gpu NAME plans for that GPU")
    if o.ram_bandwidth_gbps is not None and not o.ram_bandwidth_gbps > 0:
        raise UsageError(f"--ram-bandwidth must be a positive number of GB/s, not {o.ram_bandwidth_gbps:g}",
                         hint="e.g. --ram-bandwidth 90 (dual-channel DDR5-5600)")


def _with_selection(hw: Hardware, s: Selection, o: HardwareOverrides) -> Hardware:
    """A named device. A discrete one replaces the GPUs and keeps this machine's RAM; a unified one (Apple,
    Strix Halo, DGX Spark) is the whole machine: its memory is the RAM, the GPU gets a share of it, and the
    CPU reads at the device's bandwidth."""
    d = s.device
    if not d.unified:
        notes = s.notes
        if o.gpu_share is not None:
            notes += (f"--gpu-share ignored: {d.name} has its own memory",)
        return replace(hw, gpus=s.gpus(), unified_memory=False, notes=hw.notes + notes)
    # with --ram, that is the machine's memory and the assumed memory option no longer applies
    notes = s.notes if o.ram is None else tuple(n for n in (s.note,) if n)
    total = o.ram if o.ram is not None else s.memory_gib * GiB
    share = o.gpu_share if o.gpu_share is not None else unified_gpu_share(total)
    cap = int(total * share)
    notes += (f"unified memory: the GPU of {d.name} may use {_gib(cap)} of {_gib(total)} "
              f"(--gpu-share sets its part)",)
    return replace(hw, gpus=s.gpus(total_bytes=cap), ram_total_bytes=total, ram_available_bytes=total,
                   unified_memory=True, ram_bandwidth_gbps=d.bandwidth_gbps, ram_bandwidth_source="table",
                   notes=hw.notes + notes)


def _gib(size: int) -> str:
    return f"{size / GiB:.0f} GiB" if size % GiB == 0 else f"{size / GiB:.1f} GiB"
