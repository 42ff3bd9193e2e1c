"""fitcheck against public llama.cpp GPU logs (logs.yaml): weights, KV, compute and output per device.

    python benchmarks/accuracy/gpu/compare.py          # prints the table, writes AGREEMENT.md
    python benchmarks/accuracy/gpu/compare.py --check  # also exits 1 when a row is outside its tolerance

For every row the model's header is rebuilt (models.py shapes + quant_mix.py types, written by
tests.gguf_builder into a temp dir), fitcheck plans it through the library API with the log's settings and
placement (-ngl, --n-cpu-moe, enough VRAM that nothing is re-planned), and each device's parts are set
against the buffer lines the log printed. `rows()` is the importable half (tests use it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# FITCHECK_SRC: another fitcheck source tree to compare (e.g. `git archive HEAD src` unpacked somewhere)
SRC = os.environ.get("FITCHECK_SRC") or str(HERE.parent.parent.parent / "src")
sys.path[:0] = [str(HERE), str(HERE.parent), SRC]

import layout_io  # noqa: E402  (benchmarks/accuracy: the layout -> GGUF writer)
import quant_mix  # noqa: E402
from models import MODELS  # noqa: E402

MiB = 1 << 20
PARTS = ("weights", "kv", "compute", "output")
# tolerances of issue #12: weights and KV exact (the log prints MiB with 2 decimals), compute 5 % on a
# device and 10 % on the host; the output buffer is exact too
EXACT_MIB = 0.01
COMPUTE_TOL = {"device": 0.05, "host": 0.10}

# "<stage>:  <buffer> <kind> buffer size =  <x> MiB" (llama-model.cpp, llama-kv-cache.cpp, llama-context.cpp);
# builds before mid-2024 print "llm_load_tensors:  CUDA0 buffer size" for the model buffers; a note that
# paraphrases the lines ("CUDA0 model buffer 4455.34 MiB") is read too
_LINE = re.compile(r"(?:(?P<stage>\w+):\s+)?(?P<dev>[A-Za-z_0-9]+)\s+(?:(?P<kind>model|KV|RS|compute|output)\s+)?"
                   r"buffer(?:\s+size\s*=|:)?\s*(?P<mib>[0-9.]+)\s*MiB")
_KIND = {"model": "weights", None: "weights", "KV": "kv", "RS": "kv", "compute": "compute", "output": "output"}


def device_role(name: str) -> str:
    """'gpu0', 'gpu1', ... for an accelerator's buffer, 'host' for CPU-side ones (CPU, CPU_Mapped, CUDA_Host)."""
    base = name.removesuffix("_Mapped")
    if base in ("CPU", "CPU_REPACK") or base.endswith("_Host"):
        return "host"
    m = re.fullmatch(r"(CUDA|ROCm|Vulkan|MTL|Metal|SYCL|CANN|OpenCL)(\d*)", base)
    if not m:
        raise ValueError(f"unknown buffer {name!r}")
    return f"gpu{m.group(2) or 0}"


def logged_parts(lines: list[str]) -> dict[str, dict[str, int]]:
    """{role: {part: bytes}} from the verbatim buffer lines (MiB with 2 decimals -> bytes, rounded)."""
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        m = _LINE.search(line)
        if not m or (m.group("kind") is None and "load_tensors" not in (m.group("stage") or "")):
            continue
        part = _KIND[m.group("kind")]
        role = device_role(m.group("dev"))
        slot = out.setdefault(role, {})
        slot[part] = slot.get(part, 0) + round(float(m.group("mib")) * MiB)
    return out


@cache
def header(model: str, ftype: str) -> str:
    """A header-only GGUF of the model's file. Writing one (a ~150k-token vocabulary through gguf's writer)
    costs most of a run, so headers are kept between runs in a cache dir, named by a hash of the layout."""
    m, _ = MODELS[model]
    lay = quant_mix.layout(m, ftype, f"{model}-{ftype}", model)
    digest = hashlib.sha256(json.dumps(lay, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(_cachedir()) / f"{model}-{ftype}-{digest}.gguf"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        os.close(fd)
        try:
            layout_io.write_gguf(lay, tmp, sparse=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return str(path)


@cache
def _cachedir() -> str:
    """FITCHECK_GPU_LOGS_CACHE, else <tmp>/fitcheck-gpu-logs-cache (headers only, a few MiB each)."""
    d = Path(os.environ.get("FITCHECK_GPU_LOGS_CACHE") or Path(tempfile.gettempdir()) / "fitcheck-gpu-logs-cache")
    d.mkdir(parents=True, exist_ok=True)
    return str(d)


def settings_of(row: dict[str, Any]) -> Any:
    from fitcheck import Settings

    s = row["settings"]
    fa = s.get("flash_attn")
    kw: dict[str, Any] = {
        "ctx": s["n_ctx"], "batch": s.get("n_batch") or 2048, "ubatch": s.get("n_ubatch") or 512,
        "parallel": s.get("n_seq") or 1, "kv_unified": bool(s.get("kv_unified")),
        "cache_type_k": s.get("type_k") or "f16", "cache_type_v": s.get("type_v") or "f16",
        "flash_attn": "auto" if fa is None else ("on" if fa else "off"),
        "gpu_layers": s["n_gpu_layers"], "n_cpu_moe": s.get("n_cpu_moe") or 0,
    }
    if s.get("tensor_split"):
        kw["tensor_split"] = tuple(float(x) for x in s["tensor_split"])
    names = {f.name for f in fields(Settings)}
    if "llama_cpp_build" in names and row.get("build_number"):  # the build the log ran (issue #12's --llama-cpp)
        kw["llama_cpp_build"] = row["build_number"]
    if "backend" in names and row.get("backend"):  # the log's backend decides how compute buffers split
        kw["backend"] = str(row["backend"]).lower()
    return Settings(**kw)


def estimated_parts(row: dict[str, Any]) -> dict[str, dict[str, int]]:
    """{role: {part: bytes}} of fitcheck's plan for the row's model, settings and placement."""
    from fitcheck import HardwareOverrides, check

    n_gpu = row["settings"].get("n_gpus") or 1
    hw = HardwareOverrides(vram=(256 << 30,) * n_gpu, ram=4 << 40, ram_bandwidth_gbps=50.0)
    report: Any = check(header(row["model"]["layout"], row["model"]["ftype"]), settings_of(row), hw)
    out: dict[str, dict[str, int]] = {}
    gpu = 0
    for dev in report.plan.devices:
        if dev.kind.value == "cpu":
            out["host"] = {"weights": dev.weights_bytes, "kv": dev.kv_cache_bytes, "compute": dev.compute_bytes,
                           "output": report.needs.output_bytes}
        else:
            out[f"gpu{gpu}"] = {"weights": dev.weights_bytes, "kv": dev.kv_cache_bytes, "compute": dev.compute_bytes}
            gpu += 1
    return out


@dataclass(frozen=True)
class Part:
    row: str
    role: str  # gpu0 ... | host
    part: str  # weights | kv | compute | output
    logged: int
    estimated: int
    tolerance: float | None  # relative; None: exact to EXACT_MIB

    @property
    def delta_pct(self) -> float:
        return 100.0 * (self.estimated - self.logged) / self.logged if self.logged else 0.0

    @property
    def ok(self) -> bool:
        if self.tolerance is None:
            return abs(self.estimated - self.logged) <= EXACT_MIB * MiB
        return abs(self.estimated - self.logged) <= self.tolerance * self.logged


def load_rows() -> list[dict[str, Any]]:
    import yaml

    with open(HERE / "logs.yaml") as f:
        return list(yaml.safe_load(f)["rows"])


def rows() -> Iterator[tuple[dict[str, Any], dict[str, int], dict[str, int]]]:
    """(row, logged, estimated) per device of every usable row: {part: bytes} for the parts the log shows.
    A device's dicts carry the key "role" too ('gpu0', 'host')."""
    for row in load_rows():
        if not row.get("usable", True):
            continue
        logged = logged_parts(row["buffers"])
        est = estimated_parts(row)
        for role, parts in sorted(logged.items()):
            e = est.get(role, {})
            yield row, {"role": role, **parts}, {"role": role, **{k: e.get(k, 0) for k in parts}}  # type: ignore[dict-item]


def parts() -> Iterator[Part]:
    for row, logged, est in rows():
        role = str(logged["role"])
        for name in PARTS:
            if name not in logged:
                continue
            tol = None
            if name == "compute":
                tol = COMPUTE_TOL["host" if role == "host" else "device"] if row.get("settings_known", True) else None
            yield Part(row["id"], role, name, int(logged[name]), int(est[name]), tol)


def _mib(b: int) -> str:
    return f"{b / MiB:.2f}"


def table() -> tuple[str, int, int]:
    by_id = {r["id"]: r for r in load_rows()}
    lines = ["| row | backend | build | model | setting | device | part | logged MiB | fitcheck MiB | Δ % | ok |",
             "|---|---|---|---|---|---|---|---:|---:|---:|---|"]
    n = bad = 0
    for p in parts():
        r = by_id[p.row]
        s = r["settings"]
        setting = (f"c {s['n_ctx']} b {s.get('n_batch')} ub {s.get('n_ubatch')} np {s.get('n_seq')} "
                   f"fa {s.get('flash_attn')} {s.get('type_k') or 'f16'}/{s.get('type_v') or 'f16'} "
                   f"ngl {s['n_gpu_layers']}" + (f" ncmoe {s['n_cpu_moe']}" if s.get("n_cpu_moe") else ""))
        ok = "yes" if p.ok else ("n/a" if p.part == "compute" and not r.get("settings_known", True) else "NO")
        bad += ok == "NO"
        n += 1
        lines.append(f"| {p.row} | {r['backend']} | {r.get('build') or '?'} | {r['model']['layout']} "
                     f"{r['model']['ftype']} | {setting} | {p.role} | {p.part} | {_mib(p.logged)} | "
                     f"{_mib(p.estimated)} | {p.delta_pct:+.1f} | {ok} |")
    return "\n".join(lines), n, bad


def main(argv: list[str]) -> int:
    text, n, bad = table()
    rows_n = len([r for r in load_rows() if r.get("usable", True)])
    doc = (HERE / "AGREEMENT.head.md").read_text() if (HERE / "AGREEMENT.head.md").exists() else ""
    label = os.environ.get("FITCHECK_SRC_LABEL") or "the working tree"
    out = (f"{doc}\n## Table ({rows_n} rows, {n} parts, {bad} outside tolerance; fitcheck from {label})\n\n"
           "Generated by `python benchmarks/accuracy/gpu/compare.py`; do not edit by hand.\n\n" + text + "\n")
    (HERE / "AGREEMENT.md").write_text(out)
    print(text)
    print(f"\n{rows_n} rows, {n} parts, {bad} outside tolerance")
    return 1 if "--check" in argv and bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
