"""AMD and Intel GPUs on Linux, read from the DRM sysfs tree (no vendor library needed).

What the kernel drivers expose, per card, under /sys/class/drm/cardN/device/:
- amdgpu (vendor 0x1002): `mem_info_vram_total` and `mem_info_vram_used` in bytes; `product_name` on boards
  with an FRU EEPROM (mostly Instinct / Radeon Pro). Other boards are named from libdrm's `amdgpu.ids`
  (device id + revision -> "AMD Radeon RX 7900 XTX", the name ROCm and Vulkan report) when that file is
  installed, else "AMD GPU 0x744c".
- Intel (0x8086): the xe driver publishes `tileN/physical_vram_size_bytes` (or `tileN/memory/...` on newer
  kernels) for discrete cards, summed over tiles; it includes a small reserved part, so it overstates what is
  usable by a little. Mainline i915 (Arc A-series on older kernels) publishes no VRAM size at all; Intel's
  out-of-tree i915 has `lmem_total_bytes` (on cardN or cardN/device), which is read where present. Intel
  drivers publish no used-VRAM figure, so free memory is unknown. Integrated GPUs have none of these files
  and are skipped (they share system RAM); the note saying so appears only when no GPU is found at all.
- NVIDIA (0x10de) cards are NVML's and skipped here.
- An AMD APU's VRAM is a BIOS carve-out (often 512 MiB): under 1 GiB it counts only when no other GPU is
  there. Strix Halo style carve-outs of many GiB count as ordinary VRAM.

Backends assumed where the hardware table has no row: ROCm (HIP) for AMD, SYCL for Intel (llama.cpp's
Intel-maintained backend; Vulkan also runs both vendors). Memory bandwidth and compute come only from the
hardware table: sysfs has the memory clock but not the bus width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..model import GiB, Gpu
from .nvidia import Lookup, spec_for, table_lookup

AMD, INTEL = 0x1002, 0x8086  # NVIDIA (0x10de) is NVML's
AMDGPU_IDS = Path("/usr/share/libdrm/amdgpu.ids")
SMALL_VRAM = 1 * GiB  # below this a card is an integrated GPU's carve-out (APU UMA buffer)
_CARD = re.compile(r"card(\d+)$")
_SKIPPED = "no VRAM size in sysfs (an integrated GPU, or a driver that does not publish it): skipped"


@dataclass(frozen=True)
class _Card:
    card: str
    vendor: int
    device: int
    name: str
    total: int
    free: int | None


def probe_sysfs_gpus(root: Path = Path("/sys"), *, lookup: Lookup | None = None, others: int = 0,
                     amdgpu_ids: Path | None = AMDGPU_IDS) -> tuple[tuple[Gpu, ...], tuple[str, ...]]:
    """AMD and Intel GPUs with VRAM. `others` GPUs were already found (by NVML): indices follow them, and with
    any other GPU present an integrated GPU's tiny carve-out (< 1 GiB) is dropped. Never raises."""
    lookup = lookup if lookup is not None else table_lookup
    notes: list[str] = []
    cards: list[_Card] = []
    try:
        for path in _card_dirs(root / "class" / "drm"):
            card = _read_card(path, notes, amdgpu_ids)
            if card is not None:
                cards.append(card)
    except OSError as exc:
        notes.append(f"GPUs in {root}/class/drm could not be listed ({exc.strerror or exc})")
    big = [c for c in cards if c.total >= SMALL_VRAM]
    if others or big:
        cards = big  # an integrated GPU next to a real one is not where llama.cpp puts a model
    elif cards:
        notes.append("only an integrated GPU's small VRAM carve-out was found; llama.cpp's Vulkan backend can also "
                     "use shared system memory, which this does not count")
    if others or cards:
        notes = [n for n in notes if not n.endswith(_SKIPPED)]  # skipped iGPUs are noise once a GPU is found
    gpus = []
    for i, card in enumerate(cards):
        gpu, note = _describe(others + i, card, lookup)
        gpus.append(gpu)
        if note:
            notes.append(note)
    return tuple(gpus), tuple(dict.fromkeys(notes))


def _card_dirs(drm: Path) -> list[Path]:
    if not drm.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in drm.iterdir() if (m := _CARD.match(p.name))]  # not card0-DP-1
    seen: set[Path] = set()
    cards = []
    for _, path in sorted(found):
        device = (path / "device").resolve()
        if device not in seen:  # one PCI function, one GPU
            seen.add(device)
            cards.append(path)
    return cards


def _read_card(path: Path, notes: list[str], amdgpu_ids: Path | None) -> _Card | None:
    device = path / "device"
    vendor, device_id = _hex(device / "vendor"), _hex(device / "device")
    if vendor not in (AMD, INTEL) or device_id is None:
        return None  # NVIDIA (NVML's), virtual and display-only devices
    if vendor == AMD:
        total, used = _int(device / "mem_info_vram_total"), _int(device / "mem_info_vram_used")
        free = total - used if total is not None and used is not None else None
        name = _text(device / "product_name") or _amdgpu_name(amdgpu_ids, device_id, _hex(device / "revision"))
        name = name or f"AMD GPU {device_id:#06x}"
    else:
        total, free = _intel_vram(path)
        name = _text(device / "product_name") or f"Intel GPU {device_id:#06x}"
    if not total:
        notes.append(f"{path.name} ({name}): {_SKIPPED}")
        return None
    if free is not None:
        free = max(0, min(free, total))
    return _Card(path.name, vendor, device_id, name, total, free)


def _intel_vram(card: Path) -> tuple[int | None, int | None]:
    device = card / "device"
    total = _int(device / "mem_info_vram_total")
    if total:
        used = _int(device / "mem_info_vram_used")
        return total, (total - used if used is not None else None)
    tiles = [t for t in sorted(device.glob("tile*")) if t.is_dir()]
    sizes = [_int(t / "physical_vram_size_bytes") or _int(t / "memory" / "physical_vram_size_bytes") for t in tiles]
    if any(sizes):
        return sum(s for s in sizes if s), None
    for where in (card, device):  # out-of-tree i915
        total = _int(where / "lmem_total_bytes")
        if total:
            return total, _int(where / "lmem_avail_bytes")
    return None, None


def _describe(index: int, card: _Card, lookup: Lookup) -> tuple[Gpu, str | None]:
    spec, note = spec_for(lookup, card.name, card.total)
    default_backend = "rocm" if card.vendor == AMD else "sycl"
    if spec is None:
        gpu = Gpu(index=index, name=card.name, total_bytes=card.total, free_bytes=card.free, backend=default_backend)
        return gpu, note or (f"GPU {index} ({card.name}) is not in the hardware table: memory bandwidth and "
                             "compute unknown")
    return Gpu(index=index, name=card.name, total_bytes=card.total, free_bytes=card.free,
               bandwidth_gbps=spec.bandwidth_gbps, fp16_tflops=spec.fp16_tflops, fp32_tflops=spec.fp32_tflops,
               link_gbps=spec.link_gbps, backend=spec.backend or default_backend, spec_source=spec.source), None


def _amdgpu_name(ids: Path | None, device: int, revision: int | None) -> str | None:
    """libdrm's marketing name: the (device, revision) row, else the device's name if all its rows agree."""
    if ids is None:
        return None
    try:
        lines = ids.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    names: dict[int | None, str] = {}
    for line in lines:
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) != 3 or line.startswith("#"):
            continue
        try:
            if int(parts[0], 16) != device:
                continue
            names[int(parts[1], 16)] = parts[2]
        except ValueError:
            continue
    if revision in names:
        return names[revision]
    distinct = set(names.values())
    return distinct.pop() if len(distinct) == 1 else None


def _text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def _int(path: Path) -> int | None:
    """A non-negative integer file; None when missing or not one."""
    text = _text(path)
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _hex(path: Path) -> int | None:
    text = _text(path)
    try:
        return int(text, 16) if text is not None else None
    except ValueError:
        return None
