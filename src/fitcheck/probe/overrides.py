"""Hardware from command-line values (--vram, --ram, --cpu-only, --rpc, --unified), mixed with the probe."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import GiB, Gpu, Hardware, HardwareSource

UNIFIED_SMALL_RAM = 36 * GiB


@dataclass(frozen=True)
class HardwareOverrides:
    vram: tuple[int, ...] | None = None  # one entry per local GPU
    ram: int | None = None
    cpu_only: bool = False
    rpc: tuple[tuple[str, int], ...] = ()  # (host:port, memory) of llama.cpp RPC servers
    unified: bool = False  # simulate a shared-memory machine (Apple Silicon)
    gpu_share: float | None = None  # share of RAM the GPU may use on a unified machine

    @property
    def probe_gpus(self) -> bool:
        return not self.cpu_only and self.vram is None and not self.unified


def unified_gpu_share(ram_total: int) -> float:
    """macOS lets the GPU wire about 2/3 of RAM up to 36 GiB and 3/4 above (recommendedMaxWorkingSetSize);
    `sudo sysctl iogpu.wired_limit_mb=N` raises it, which --gpu-share models."""
    return 2 / 3 if ram_total <= UNIFIED_SMALL_RAM else 3 / 4


def unified_gpu(ram_total: int, share: float | None) -> Gpu:
    cap = int(ram_total * (share if share is not None else unified_gpu_share(ram_total)))
    return Gpu(index=0, name=f"Apple GPU (unified, {cap / GiB:.0f} GiB usable)", total_bytes=cap, free_bytes=cap)


def apply_overrides(probed: Hardware, o: HardwareOverrides) -> Hardware:
    hw = probed
    if o.ram is not None:
        hw = replace(hw, ram_total_bytes=o.ram, ram_available_bytes=o.ram, source=HardwareSource.OVERRIDE)
    if o.cpu_only:
        hw = replace(hw, gpus=(), unified_memory=False, source=HardwareSource.OVERRIDE)
    elif o.unified or hw.unified_memory:
        total = hw.ram_total_bytes or 0
        gpu = unified_gpu(total, o.gpu_share) if o.vram is None else Gpu(0, "Apple GPU (unified)", o.vram[0], o.vram[0])
        hw = replace(hw, gpus=(gpu,), unified_memory=True, source=HardwareSource.OVERRIDE)
    elif o.vram is not None:
        gpus = tuple(Gpu(index=i, name=f"GPU {i} ({_gib(size)})", total_bytes=size, free_bytes=size)
                     for i, size in enumerate(o.vram) if size > 0)
        hw = replace(hw, gpus=gpus, source=HardwareSource.OVERRIDE)
    if o.rpc and not o.cpu_only:
        remote = tuple(Gpu(index=i, name=f"remote ({_gib(size)})", total_bytes=size, free_bytes=size, remote=host)
                       for i, (host, size) in enumerate(o.rpc))
        hw = replace(hw, gpus=remote + hw.gpus, source=HardwareSource.OVERRIDE)
    return hw


def _gib(size: int) -> str:
    return f"{size / GiB:.0f} GiB" if size % GiB == 0 else f"{size / GiB:.1f} GiB"
