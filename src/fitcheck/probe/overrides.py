"""Hardware from command-line values (--vram, --ram, --cpu-only), mixed with what was probed."""

from __future__ import annotations

from dataclasses import replace

from ..model import Gpu, Hardware


def apply_overrides(probed: Hardware, vram: list[int] | None, ram: int | None, cpu_only: bool) -> Hardware:
    hw = probed
    if cpu_only:
        hw = replace(hw, gpus=(), source="override")
    elif vram is not None:
        gpus = tuple(Gpu(index=i, name=f"GPU {i} ({_gib(size)})", total_bytes=size, free_bytes=size)
                     for i, size in enumerate(vram) if size > 0)
        hw = replace(hw, gpus=gpus, source="override")
    if ram is not None:
        hw = replace(hw, ram_total_bytes=ram, ram_available_bytes=ram, source="override")
    return hw


def _gib(size: int) -> str:
    return f"{size / 1024**3:.0f} GiB" if size % 1024**3 == 0 else f"{size / 1024**3:.1f} GiB"
