"""Read llama.cpp's own memory figures out of its log (what its memory-fit pass prints).

The lines (llama.cpp 0c1e57098; each may carry common_log's "0.00.216.051 D " prefix):
- `llama_kv_cache: size =  256.00 MiB (  8192 cells, ...)`: one per KV cache (two with sliding windows);
- `llama_memory_recurrent: size =   13.84 MiB (...)`: the recurrent state;
- `llama_context:        CPU  output buffer size =     0.49 MiB`;
- `sched_reserve:        CPU compute buffer size =   266.50 MiB`: one per backend buffer type;
- common_memory_breakdown_print's table (whole MiB, rounded down): per device `model + context + compute`.
In the fit pass (no_alloc) the per-buffer `model buffer size` and `KV buffer size` lines read 0.00, so the
weights come from the table (or the caller's exact byte count) and the KV cache from its `size =` lines.
The `%.2f MiB` figures are within 0.005 MiB (5.2 KiB) of llama.cpp's bytes; the table's within 1 MiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MiB = 1024**2
MIB_2DP = -(-MiB // 200)  # half of 0.01 MiB, rounded up: the rounding of a "%.2f MiB" figure

_KV = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \(")
_RS = re.compile(r"llama_memory_recurrent: size = +([\d.]+) MiB \(")
_OUTPUT = re.compile(r"(\S+) +output buffer size = +([\d.]+) MiB")
_COMPUTE = re.compile(r"(\S+) compute buffer size = +([\d.]+) MiB")
# |  - CUDA0 (H200) | 140000 = 139000 + (1000 = 900 + 60 + 40) + 0 |   and   |  - Host | 2275 = 1752 + 256 + 266 |
_DEV_ROW = re.compile(r"\|\s+- (?P<name>.+?)\s+\|\s+\d+\s+=\s+\d+\s+\+\s+\(\s*\d+\s+=\s+(?P<model>\d+)\s+\+\s+"
                      r"(?P<context>\d+)\s+\+\s+(?P<compute>\d+)\s*\)")
_HOST_ROW = re.compile(r"\|\s+- (?P<name>\S+)\s+\|\s+\d+\s+=\s+(?P<model>\d+)\s+\+\s+(?P<context>\d+)\s+\+\s+"
                       r"(?P<compute>\d+)\s+\|")


@dataclass
class DeviceFigures:
    name: str  # "Host", or a device such as "CUDA0 (H200)"
    weights_bytes: int | None = None  # whole MiB (the breakdown table)
    context_bytes: int | None = None  # KV cache + recurrent state on it, whole MiB
    compute_bytes: int | None = None  # its compute buffers, to 0.01 MiB


@dataclass
class LogFigures:
    kv_cache_bytes: int = 0
    recurrent_state_bytes: int = 0
    output_bytes: int = 0
    compute: dict[str, int] = field(default_factory=dict)  # buffer type -> bytes (last reservation wins)
    devices: list[DeviceFigures] = field(default_factory=list)  # from the breakdown table
    kv_lines: int = 0

    @property
    def compute_bytes(self) -> int:
        return sum(self.compute.values())

    @property
    def table_weights_bytes(self) -> int | None:
        known = [d.weights_bytes for d in self.devices if d.weights_bytes is not None]
        return sum(known) if known else None

    @property
    def complete(self) -> bool:
        """Whether llama.cpp got as far as reserving its compute buffers (the last step of the fit pass)."""
        return bool(self.compute)


def _mib(text: str) -> int:
    return round(float(text) * MiB)


def host_buffer(name: str) -> bool:
    """Buffer types that live in system RAM (CPU, CUDA_Host, ...): counted on the host."""
    return name == "CPU" or name.endswith("_Host") or name.startswith("CPU_")


def read_log(text: str) -> LogFigures:
    figures = LogFigures()
    for line in text.splitlines():
        if "create_tensor:" in line or "llama_graph_n_input_tensors" in line:
            continue  # the bulk of a verbose log, never a figure
        if m := _KV.search(line):
            figures.kv_cache_bytes += _mib(m[1])
            figures.kv_lines += 1
        elif m := _RS.search(line):
            figures.recurrent_state_bytes += _mib(m[1])
        elif m := _OUTPUT.search(line):
            figures.output_bytes += _mib(m[2])
        elif m := _COMPUTE.search(line):
            figures.compute[m[1]] = _mib(m[2])
        elif "memory breakdown" in line:
            figures.devices = []  # a later table replaces an earlier one
        elif m := _DEV_ROW.search(line) or _HOST_ROW.search(line):
            figures.devices.append(DeviceFigures(m["name"].strip(), int(m["model"]) * MiB,
                                                 int(m["context"]) * MiB, None))
    _attach_compute(figures)
    return figures


def _attach_compute(figures: LogFigures) -> None:
    """Each compute buffer to its table row: host buffer types to Host, the others to the device named so."""
    for buft, size in figures.compute.items():
        row = next((d for d in figures.devices if (d.name == "Host" if host_buffer(buft)
                                                   else d.name.split(" ")[0] == buft)), None)
        if row is not None:
            row.compute_bytes = (row.compute_bytes or 0) + size


_LEVEL = re.compile(r"^(?:\d+\.\d+\.\d+\.\d+ )?([DIWE]) ")  # common_log's prefix, or the worker's level


def first_error(text: str) -> str | None:
    """The line that explains a failed load: the first at error level, else the first naming an error."""
    lines = [line.strip() for line in text.splitlines()]
    for line in lines:
        m = _LEVEL.match(line)
        if m and m[1] == "E":
            return line[m.end():][:300]
    for line in lines:
        low = line.lower()
        if ("error" in low or "failed" in low) and "create_tensor" not in low:
            return _LEVEL.sub("", line)[:300]
    return None
