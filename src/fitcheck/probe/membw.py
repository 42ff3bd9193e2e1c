"""System RAM bandwidth as the CPU sees it, measured in a quarter of a second and cached per machine.

llama.cpp's CPU decode streams the weights once per token: a read-dominated load spread over all its threads.
So is this measurement: one thread per physical core (llama.cpp's default thread count) each reduces its own
array with `np.maximum.reduce` (numpy releases the GIL in the loop and runs it with SIMD, ~40-60 GB/s per core
from cache, so it is the memory, not the loop, that limits a thread), and the figure counts the bytes READ.
A copy would count read + write and report less, write-allocate traffic included. The result is the best of a
few barrier-synchronised rounds: what the memory delivers when every core reads at once, i.e. an upper bound
for llama.cpp's decode, which also computes. One thread alone underestimates a multi-channel system, which is
why the threads run together.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..cachedir import cache_dir as default_cache_dir
from ..model import GiB, MiB

CACHE_FILE = "membw.json"
CACHE_FORMAT = 1
_MIN_ROUND_S = 0.01  # shorter rounds run more passes
_MIN_MEASURE_S = 0.03  # time spent in rounds, whatever the budget
_ROUND_LIMIT_S = 10.0  # a barrier that waits this long means a worker died: give up instead of hanging


def measure_ram_bandwidth(threads: int | None = None, budget_s: float = 0.25, *,
                          available_bytes: int | None = None) -> float:
    """Read bandwidth of system RAM with `threads` threads (default: physical cores), GB/s (decimal).

    Each thread gets its own array (see `_array_bytes`: 4x the last-level cache in all, 128 MiB - 1 GiB) and
    fills it itself (the first touch places its pages on the thread's NUMA node).
    Rounds run until `budget_s` (numpy's import and the allocation included) is spent, and at least three of
    them for 30 ms. Raises RuntimeError or MemoryError when it cannot measure."""
    start = time.perf_counter()  # the budget covers importing numpy (~0.1 s cold) and allocating too
    import numpy as np

    n = max(1, threads or cpu_info()[1] or 1)
    per_thread = _array_bytes(n, available_bytes if available_bytes is not None else _available_bytes())
    barrier = threading.Barrier(n + 1, timeout=_ROUND_LIMIT_S)
    stop = threading.Event()
    passes = [1]  # passes over its array per thread and round, set by the main thread between rounds
    errors: list[Exception] = []

    def worker() -> None:
        try:
            data = np.empty(per_thread // 4, dtype=np.float32)
            data.fill(1.0)  # untouched pages all map the kernel's one zero page and would read from cache
        except Exception as exc:  # MemoryError above all: handed to the main thread, which raises it
            errors.append(exc)
            barrier.abort()
            return
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # everyone allocated
            while True:
                barrier.wait()  # round starts
                if stop.is_set():
                    return
                for _ in range(passes[0]):
                    np.maximum.reduce(data)
                barrier.wait()  # round ends

    workers = [threading.Thread(target=worker, name=f"membw-{i}", daemon=True) for i in range(n)]
    for w in workers:
        w.start()
    best = 0.0
    try:
        barrier.wait()
        rounds, slowest, measured = 0, 0.0, 0.0
        # a slow allocation (a VM backing fresh pages) may eat the budget: still take a few rounds
        while rounds < 3 or measured < _MIN_MEASURE_S or time.perf_counter() - start + slowest < budget_s:
            t0 = time.perf_counter()
            barrier.wait()
            barrier.wait()
            elapsed = time.perf_counter() - t0
            best = max(best, n * per_thread * passes[0] / elapsed / 1e9)
            slowest, rounds, measured = max(slowest, elapsed), rounds + 1, measured + elapsed
            if elapsed < _MIN_ROUND_S and passes[0] < 64:
                # waking many threads through a Python barrier takes ~1 ms: a round must be long against it
                passes[0] *= 2
        stop.set()
        barrier.wait()
    except threading.BrokenBarrierError:
        if errors:
            raise errors[0] from None
        raise RuntimeError("a bandwidth worker did not finish") from None
    finally:
        stop.set()
        barrier.abort()
        for w in workers:
            w.join(timeout=1.0)
    if not (best > 0 and math.isfinite(best)):
        raise RuntimeError("no bandwidth round completed")
    return round(best, 1)


def _array_bytes(threads: int, available: int | None, llc: int | None = None) -> int:
    """Bytes per thread: 4x the last-level cache in all (a cyclic scan of 4x the cache misses it throughout),
    at least 128 MiB and at most 1 GiB, at least 8 MiB a thread, and no more than 1/4 of the available RAM.
    Small, because first-touching the pages costs more than reading them (much more in some VMs)."""
    total = min(max(4 * (llc if llc is not None else _llc_bytes() or 64 * MiB), 128 * MiB), GiB)
    if available:
        total = min(total, available // 4)
    per = max(8 * MiB, total // threads)
    if available:
        per = min(per, max(MiB, available // 4 // threads))
    return per // 4096 * 4096


def _llc_bytes(cpus: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """The last-level caches of all CPUs together (each shared cache once), from Linux sysfs; None elsewhere."""
    caches: dict[tuple[int, str], int] = {}
    with contextlib.suppress(OSError, ValueError):
        for index in cpus.glob("cpu[0-9]*/cache/index[0-9]*"):
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip().upper()
            shared = (index / "shared_cpu_list").read_text().strip()
            scale = {"K": 1024, "M": MiB, "G": GiB}.get(size[-1:], 1)
            caches[(level, shared)] = int(size.rstrip("KMG")) * scale
    if not caches:
        return None
    top = max(level for level, _ in caches)
    return sum(size for (level, _), size in caches.items() if level == top)


def _available_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        return None


def cpu_info(psutil_module: Any | None = None, cpuinfo: Path = Path("/proc/cpuinfo"),
             system: str | None = None) -> tuple[str | None, int | None]:
    """(CPU model name, physical core count). Either may be None; never raises."""
    return _cpu_name(cpuinfo, system or platform.system()), _physical_cores(psutil_module)


def _physical_cores(psutil_module: Any | None) -> int | None:
    try:
        if psutil_module is None:
            import psutil

            psutil_module = psutil
        cores = psutil_module.cpu_count(logical=False)
        if cores:
            return int(cores)
    except Exception:
        pass
    return os.cpu_count()  # logical CPUs: an overcount with SMT, the best left


def _cpu_name(cpuinfo: Path, system: str) -> str | None:
    if system == "Darwin":
        with contextlib.suppress(Exception):
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=2, check=False).stdout.strip()
            if out:
                return out  # "Apple M2 Max"
    with contextlib.suppress(OSError):
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip().lower(), value.strip())
        for field in ("model name", "hardware", "model", "cpu model", "processor"):  # x86, ARM SoCs, others
            found = fields.get(field)
            if found and not found.isdigit():
                return found
    return platform.processor() or platform.machine() or None


def fingerprint(threads: int | None = None, psutil_module: Any | None = None) -> str:
    """What a measurement belongs to: CPU model, physical cores, total RAM (GiB), threads used."""
    name, cores = cpu_info(psutil_module)
    ram: int | None = None
    with contextlib.suppress(Exception):
        if psutil_module is None:
            import psutil

            psutil_module = psutil
        ram = round(int(psutil_module.virtual_memory().total) / GiB)
    return f"{name or '?'}|{cores or '?'} cores|{ram if ram is not None else '?'} GiB|{threads or cores} threads"


def cached_ram_bandwidth(cache_dir: Path | None = None, *, threads: int | None = None,
                         measure: Callable[[int | None], float] | None = None,
                         key: str | None = None) -> tuple[float, str]:
    """(GB/s, "measured"): this machine's cached measurement, else a fresh one, stored for next time.

    The cache is `membw.json` under `cache_dir` (default: fitcheck's cache folder), one entry per `fingerprint()`;
    a missing, corrupt or unwritable cache just costs a measurement. Raises what the measurement raises."""
    path = (cache_dir if cache_dir is not None else default_cache_dir()) / CACHE_FILE
    key = key if key is not None else fingerprint(threads)
    entries = _read_entries(path)
    entry = entries.get(key)
    if isinstance(entry, dict):
        value = entry.get("gbps")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return float(value), "measured"
    gbps = (measure or (lambda t: measure_ram_bandwidth(t)))(threads)
    if not (math.isfinite(gbps) and gbps > 0):
        raise RuntimeError(f"implausible RAM bandwidth measured ({gbps})")
    entries[key] = {"gbps": gbps, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write_entries(path, entries)
    return gbps, "measured"


def _read_entries(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    return dict(data["entries"])


def _write_entries(path: Path, entries: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # written whole, then renamed: readers never see half
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "entries": entries}, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
