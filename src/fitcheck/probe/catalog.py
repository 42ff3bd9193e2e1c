"""The GPU table (data/hardware.yaml) as values: `find` names a probed device, `resolve` reads `--gpu NAME`.

Both match on a normalised key: lower case, punctuation and (R)/(TM) dropped, letters split from digits
("RTX3060" = "rtx 3060"), vendor and series words made optional ("NVIDIA GeForce RTX 4090" = "4090"), and
memory ("12GB", "12 GB") and Apple core counts ("38-core") taken out as their own parts. "laptop" (or
"mobile") is an ordinary word, so laptop rows match only a query that says so.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from ..errors import UsageError
from ..model import GiB, Gpu

MAX_COUNT = 16  # llama.cpp's GGML_CUDA_MAX_DEVICES

# Host-link bandwidth per lane and direction, GB/s: the raw signalling rate (8, 16, 32, 64 GT/s ÷ 8) so
# x16 reads 16 / 32 / 64 / 128. These are theoretical per-direction peaks: 128b/130b encoding takes ~1.5%
# and real copies reach ~80% of them.
_PCIE_LANE_GBPS = {3: 1.0, 4: 2.0, 5: 4.0, 6: 8.0}
_NVLINK_C2C_GBPS = 450.0  # GH200: NVIDIA's 900 GB/s NVLink-C2C is 450 GB/s per direction


@dataclass(frozen=True)
class DeviceSpec:
    """One row of the GPU table."""

    name: str
    vendor: str
    family: str
    backend: str
    aliases: tuple[str, ...]
    memory_gib: tuple[int, ...]  # ascending; unified devices: every option sold
    bandwidth_gbps: float
    fp16_tflops: float
    fp32_tflops: float
    bus: str
    released: int
    source: str
    note: str = ""
    gpu_cores: int | None = None  # Apple only
    slow_fp16: bool = False
    unified: bool = field(init=False)  # the GPU shares the CPU's memory (bus: unified)

    def __post_init__(self) -> None:
        object.__setattr__(self, "unified", self.bus.strip().lower() == "unified")

    @property
    def link_gbps(self) -> float | None:
        """Host-link bandwidth, GB/s per direction (theoretical); None on unified memory."""
        bus = self.bus.strip().lower()
        pcie = re.fullmatch(r"pcie\s*(\d)(?:\.0)?\s*x\s*(\d+)", bus)
        if pcie:
            per_lane = _PCIE_LANE_GBPS.get(int(pcie[1]))
            return per_lane * int(pcie[2]) if per_lane else None
        if bus.startswith(("sxm", "oam")):
            # A module's host link is the PCIe x16 of its generation: V100 SXM2 gen 3, A100 SXM4 and MI250
            # gen 4, H100/H200/B200 and MI300X gen 5.
            gen = 3 if self.released <= 2018 else 4 if self.released <= 2021 else 5
            return _PCIE_LANE_GBPS[gen] * 16
        if bus == "nvlink-c2c":
            return _NVLINK_C2C_GBPS
        return None

    @property
    def tier(self) -> str:
        """The name without an Apple core count: "M2 Max (38-core GPU)" -> "M2 Max"."""
        return re.sub(r"\s*\(\d+-core GPU\)", "", self.name).strip()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeviceSpec:
        cores = row.get("gpu_cores")
        return cls(
            name=str(row["name"]), vendor=str(row["vendor"]), family=str(row["family"]),
            backend=str(row["backend"]), aliases=tuple(str(a) for a in row.get("aliases") or ()),
            memory_gib=tuple(sorted(int(m) for m in row["memory_gib"])),
            bandwidth_gbps=float(row["bandwidth_gbps"]), fp16_tflops=float(row["fp16_tflops"]),
            fp32_tflops=float(row["fp32_tflops"]), bus=str(row["bus"]), released=int(row["released"]),
            source=str(row["source"]), note=str(row.get("note") or ""),
            gpu_cores=int(cores) if cores is not None else None, slow_fp16=bool(row.get("slow_fp16", False)))


@dataclass(frozen=True)
class Selection:
    """What `--gpu` named: a device, how many of it, and which memory option."""

    device: DeviceSpec
    count: int
    memory_gib: int
    note: str | None = None  # an assumption made for the user (which core-count variant)
    memory_assumed: bool = False  # several memory options and the query named none

    @property
    def memory_note(self) -> str | None:
        if not self.memory_assumed:
            return None
        others = [m for m in self.device.memory_gib if m != self.memory_gib]
        return (f"{self.device.name}: assumed {self.memory_gib} GB, the smallest sold (also {_sizes(others)}); "
                f"add e.g. '{others[-1]}GB' to --gpu for another")

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(n for n in (self.note, self.memory_note) if n)

    def gpus(self, total_bytes: int | None = None) -> tuple[Gpu, ...]:
        """`count` identical GPUs; `total_bytes` replaces the memory (a unified device's GPU share)."""
        size = total_bytes if total_bytes is not None else self.memory_gib * GiB
        d = self.device
        return tuple(Gpu(index=i, name=d.name, total_bytes=size, free_bytes=size, bandwidth_gbps=d.bandwidth_gbps,
                         fp16_tflops=d.fp16_tflops, fp32_tflops=d.fp32_tflops, link_gbps=d.link_gbps,
                         backend=d.backend, spec_source=d.source)
                     for i in range(self.count))


def load_devices(rows: Iterable[Mapping[str, Any]]) -> tuple[DeviceSpec, ...]:
    """Table rows as DeviceSpecs; a row missing a field is skipped (tests/test_hardware_table.py flags it)."""
    out = []
    for row in rows:
        try:
            out.append(DeviceSpec.from_row(row))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(out)


@lru_cache(maxsize=1)
def devices() -> tuple[DeviceSpec, ...]:
    """Every device of the packaged table, read once."""
    from ..data import load_yaml

    return load_devices(load_yaml("hardware.yaml").get("devices") or ())


# ---- normalisation ------------------------------------------------------------------------------------------

# Words a query may leave out: vendors, brands and series prefixes. Dropping them keeps every row of the table
# distinct (tests/probe/test_catalog.py checks it).
_OPTIONAL = frozenset({"nvidia", "geforce", "tesla", "quadro", "rtx", "gtx", "amd", "radeon", "rx", "instinct",
                       "apple", "intel", "graphics", "gpu", "generation"})
_MEMORY_UNITS = frozenset({"gb", "g", "gib"})
_CORE_UNITS = frozenset({"core", "cores"})


class Key(NamedTuple):
    base: tuple[str, ...]  # sorted words
    memory_gib: int | None
    cores: int | None


def _words(text: str) -> list[str]:
    t = re.sub(r"\((?:r|tm)\)|[®™]", " ", text.lower())
    t = re.sub(r"[^a-z0-9]+", " ", t)
    t = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", t)
    words = ["laptop" if w == "mobile" else w for w in t.split()]
    return [w for w in words if w not in _OPTIONAL]


def key(text: str) -> Key:
    words = _words(text)
    base: list[str] = []
    memory = cores = None
    i = 0
    while i < len(words):
        w, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
        if w.isdigit() and nxt in _MEMORY_UNITS:
            memory, i = int(w), i + 2
        elif w.isdigit() and nxt in _CORE_UNITS:
            cores, i = int(w), i + 2
        else:
            base.append(w)
            i += 1
    return Key(tuple(sorted(base)), memory, cores)


@dataclass(frozen=True)
class _Entry:
    device: DeviceSpec
    name: Key
    aliases: tuple[Key, ...]
    raw: frozenset[str]  # name and aliases, case-folded

    @property
    def keys(self) -> tuple[Key, ...]:
        return (self.name, *self.aliases)


@lru_cache(maxsize=8)
def _index(table: tuple[DeviceSpec, ...]) -> tuple[_Entry, ...]:
    return tuple(_Entry(d, key(d.name), tuple(key(a) for a in d.aliases),
                        frozenset(s.strip().casefold() for s in (d.name, *d.aliases))) for d in table)


def _fits(k: Key, q: Key) -> bool:
    """k (a row's key) agrees with the query on its base words, cores and a memory its name carries."""
    return (k.base == q.base and (q.cores is None or k.cores == q.cores)
            and (q.memory_gib is None or k.memory_gib is None or k.memory_gib == q.memory_gib))


def _table(table: Sequence[DeviceSpec] | None) -> tuple[DeviceSpec, ...]:
    return devices() if table is None else tuple(table)


# ---- find: a probed device --------------------------------------------------------------------------------

def find(name: str, memory_bytes: int | None = None, *, table: Sequence[DeviceSpec] | None = None
         ) -> DeviceSpec | None:
    """The row for a name a tool reports (NVML, ROCm, sysfs), or None. Rows matched by their own name come
    before rows matched by an alias; among several (RTX 3060 8GB / 12GB) the memory closest to
    `memory_bytes` wins, then a row whose spelling matches exactly. Never raises."""
    try:
        entries = _index(_table(table))
        q = key(name)
        if not q.base:
            return None
        found = [e for e in entries if _fits(e.name, q)] or [e for e in entries if any(_fits(k, q) for k in e.aliases)]
        if not found:
            return None
        folded = name.strip().casefold()

        def rank(e: _Entry) -> tuple[float, int]:
            distance = (min(abs(m * GiB - memory_bytes) for m in e.device.memory_gib)
                        if memory_bytes is not None and e.device.memory_gib else 0)
            exact = folded in e.raw or q in e.keys
            return distance, 0 if exact else 1

        return min(found, key=rank).device  # min keeps table order among equals
    except Exception:  # a broken table or an odd name: unknown, never an error for the probe
        return None


# ---- resolve: --gpu NAME ------------------------------------------------------------------------------------

def resolve(text: str, *, table: Sequence[DeviceSpec] | None = None) -> Selection:
    """`--gpu` text as a Selection: "RTX 3060 12GB", "2x RTX 3090", "M2 Max 64GB", "7900 xtx"."""
    shown = " ".join(text.split())
    count, rest = _count(shown)
    q = key(rest)
    if not q.base:
        raise UsageError(f"--gpu '{shown}' names no GPU", hint="e.g. --gpu 'RTX 3060 12GB' or --gpu 'M2 Max 64GB'")
    entries = _index(_table(table))
    exact = [e for e in entries if e.name == q]
    found = exact if len(exact) == 1 else _candidates(entries, q)
    if not found:
        raise _unknown(shown, entries, q)
    if q.memory_gib is not None:
        sized = [e for e in found if q.memory_gib in e.device.memory_gib]
        if not sized:
            raise _no_such_size(shown, [e.device for e in found])
        found = sized
    note = None
    if len(found) > 1:
        picked, note = _variant(found, q)
        if picked is None:
            names = sorted(e.device.name for e in found)
            listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            raise UsageError(f"--gpu '{shown}' is ambiguous: {listed}",
                             hint=f"name one of them, e.g. --gpu '{names[0]}'")
        found = [picked]
    device = found[0].device
    if device.unified and count > 1:
        raise UsageError(f"--gpu '{shown}': {device.name} has unified memory and cannot be multiplied",
                         hint="plan one machine; add others as llama.cpp RPC servers with --rpc HOST:PORT=SIZE")
    memory = q.memory_gib if q.memory_gib is not None else device.memory_gib[0]
    return Selection(device, count, memory, note, memory_assumed=q.memory_gib is None and len(device.memory_gib) > 1)


def _count(text: str) -> tuple[int, str]:
    """A count before or after the name: "2x RTX 3090", "2 x RTX 3090", "RTX 3090 x2" -> (2, "RTX 3090").
    One or two digits only, so "7900 xtx" carries no count."""
    lead = re.fullmatch(r"(\d{1,2})\s*[x×*]\s*(.+)", text, re.IGNORECASE)
    trail = re.fullmatch(r"(.+?)\s*[x×*]\s*(\d{1,2})", text, re.IGNORECASE)
    if lead:
        n, rest = int(lead[1]), lead[2]
    elif trail:
        n, rest = int(trail[2]), trail[1]
    else:
        return 1, text
    if not 1 <= n <= MAX_COUNT:
        raise UsageError(f"--gpu '{text}': the count must be 1 to {MAX_COUNT}", hint="e.g. --gpu '2x RTX 3090'")
    return n, rest


def _candidates(entries: tuple[_Entry, ...], q: Key) -> list[_Entry]:
    """Rows whose own name matches, else an alias; else rows whose words include all the query's (a laptop
    row only when the query says laptop)."""
    by_name = [e for e in entries if _fits(e.name, q)]
    if by_name:
        return by_name
    by_alias = [e for e in entries if any(_fits(k, q) for k in e.aliases)]
    if by_alias:
        return by_alias
    return [e for e in entries if any(_contains(k, q) for k in e.keys)
            and ("laptop" in q.base or "laptop" not in e.name.base)]


def _contains(k: Key, q: Key) -> bool:
    return (not Counter(q.base) - Counter(k.base) and (q.cores is None or k.cores == q.cores)
            and (q.memory_gib is None or k.memory_gib is None or k.memory_gib == q.memory_gib))


def _variant(found: list[_Entry], q: Key) -> tuple[_Entry | None, str | None]:
    """Apple core-count variants of one chip: the fewest cores, with a note naming the others."""
    devs = [e.device for e in found]
    if any(d.gpu_cores is None for d in devs) or len({d.tier for d in devs}) != 1:
        return None, None
    picked = min(found, key=lambda e: e.device.gpu_cores or 0)
    d = picked.device
    others = [o.name for o in devs if o is not d]
    them = "the other" if len(others) == 1 else "the others"
    return picked, f"{d.tier}: assumed the {d.gpu_cores}-core GPU; name {_or(repr(n) for n in others)} for {them}"


def _no_such_size(shown: str, devs: list[DeviceSpec]) -> UsageError:
    tiers = sorted({d.tier for d in devs})
    sizes = sorted({m for d in devs for m in d.memory_gib})
    what = tiers[0] if len(tiers) == 1 else _or(tiers)
    return UsageError(f"--gpu '{shown}': {what} comes with {_sizes(sizes)}",
                      hint="name one of those sizes, or set the memory with --vram / --ram")


def _unknown(shown: str, entries: tuple[_Entry, ...], q: Key) -> UsageError:
    words = " ".join(q.base)
    near = [e.device.name for e in entries if any(not Counter(q.base) - Counter(k.base) for k in e.keys)]
    flat = {" ".join(e.name.base): e.device.name for e in entries}
    near += [flat[m] for m in difflib.get_close_matches(words, list(flat), n=5, cutoff=0.5)]
    names = list(dict.fromkeys(near))[:5]
    guess = f"; did you mean: {', '.join(names)}?" if names else ""
    return UsageError(f"--gpu '{shown}': no such GPU in fitcheck's table{guess}",
                      hint="names read like 'RTX 3060 12GB', 'RX 7900 XTX', 'M2 Max (38-core GPU)'; "
                           "or give the memory with --vram")


def _sizes(sizes: Sequence[int]) -> str:
    return f"{_or(str(s) for s in sizes)} GB"


def _or(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
