"""llama.cpp truth harness: one command builds llama.cpp (CPU), writes the sparse GGUFs and measures them.

    .venv/bin/python benchmarks/accuracy/run.py              # everything (build if needed, all layouts)
    .venv/bin/python benchmarks/accuracy/run.py qwen3-4b     # only some layouts (by name or arch); merges into results

Build products and sparse GGUFs live under benchmarks/accuracy/work/ (git-ignored).
Results: benchmarks/accuracy/results/measurements.json
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import layout_io  # noqa: E402

SDIST_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098"  # from the sdist's CHANGELOG: "update llama.cpp to ggml-org/llama.cpp@0c1e57098"
WORK = HERE / "work"
SRC = WORK / f"llama_cpp_python-{SDIST_VERSION}" / "vendor" / "llama.cpp"
BUILD = WORK / "build"
MEASURE = WORK / "measure"
RESULTS = HERE / "results" / "measurements.json"


def sh(cmd: list[str], **kw: Any) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def ensure_built() -> None:
    WORK.mkdir(exist_ok=True)
    if not SRC.exists():
        sdist = WORK / f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
        if not sdist.exists():
            sh([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                f"llama-cpp-python=={SDIST_VERSION}", "-d", str(WORK)])
        with tarfile.open(sdist) as tar:
            tar.extractall(WORK)
    if not (BUILD / "bin" / "libllama.so").exists():
        sh(["cmake", "-S", str(SRC), "-B", str(BUILD), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
            "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DBUILD_SHARED_LIBS=ON", "-DGGML_OPENMP=ON"])
        sh(["cmake", "--build", str(BUILD), "-j2", "--target", "llama"])
    src = HERE / "measure.cpp"
    if not MEASURE.exists() or MEASURE.stat().st_mtime < src.stat().st_mtime:
        sh(["g++", "-std=c++17", "-O1", "-o", str(MEASURE), str(src), f"-I{SRC / 'include'}", f"-I{SRC / 'src'}",
            f"-I{SRC / 'ggml' / 'include'}", f"-L{BUILD / 'bin'}", "-lllama", "-lggml", "-lggml-base",
            f"-Wl,-rpath,{BUILD / 'bin'}"])


# ---------------------------------------------------------------------------------------------------------------
# settings

def S(ctx, batch, ubatch, par, unified, tk, tv, fa, swa_full=True, emb=False) -> dict[str, Any]:
    """A C API context (llama_context_default_params + these): consumer "library", n_outputs_max 0 = n_batch."""
    return {"ctx": ctx, "batch": batch, "ubatch": ubatch, "parallel": par, "kv_unified": unified,
            "cache_type_k": tk, "cache_type_v": tv, "flash_attn": fa, "swa_full": swa_full, "embeddings": emb,
            "consumer": "library"}


def SERVER(ctx, batch, ubatch, par, unified, tk, tv, fa, n_draft=0) -> dict[str, Any]:
    """A context as llama-server creates it: --swa-full off, and the output limits of server_output_limits
    (tools/server/server-context.cpp): n_outputs_max = min(n_batch, np x (1 + n_draft)), per sequence 1 + n_draft."""
    per_seq = min(batch, 1 + n_draft)
    return {**S(ctx, batch, ubatch, par, unified, tk, tv, fa, swa_full=False), "consumer": "llama-server",
            "n_draft": n_draft, "n_outputs_max": min(batch, par * per_seq), "n_outputs_max_per_seq": per_seq}


DECODER = [
    S(512, 2048, 512, 1, False, "f16", "f16", "auto"),
    S(4096, 2048, 512, 1, False, "f16", "f16", "off"),
    S(4096, 2048, 512, 1, False, "q8_0", "q8_0", "on"),
    S(4096, 2048, 128, 1, False, "q8_0", "f16", "off"),
    S(8192, 2048, 512, 4, False, "f16", "f16", "on"),
    S(8192, 2048, 512, 4, True, "f16", "f16", "on"),
    S(5000, 1024, 256, 3, False, "f16", "f16", "off"),
    S(16384, 512, 512, 1, False, "f16", "f16", "off"),
    S(32768, 2048, 1024, 2, True, "q8_0", "q8_0", "on"),
    S(8192, 4096, 2048, 1, False, "f16", "f16", "on"),
    S(8192, 4096, 2048, 1, False, "f16", "f16", "off"),
    S(4096, 2048, 512, 2, False, "q4_0", "q4_0", "on"),
]
SWA_EXTRA = [
    S(8192, 2048, 512, 1, False, "f16", "f16", "on", swa_full=False),
    S(8192, 2048, 512, 4, False, "f16", "f16", "on", swa_full=False),
    S(8192, 2048, 512, 4, True, "f16", "f16", "on", swa_full=False),
    S(4096, 2048, 128, 1, False, "f16", "f16", "off", swa_full=False),
    S(32768, 2048, 1024, 2, True, "q8_0", "q8_0", "on", swa_full=False),
]
ENCODER = [
    S(512, 512, 512, 1, False, "f16", "f16", "auto", emb=True),
    S(512, 2048, 2048, 1, False, "f16", "f16", "off", emb=True),
    S(2048, 2048, 2048, 4, False, "f16", "f16", "on", emb=True),
    S(2048, 8192, 512, 1, False, "f16", "f16", "off", emb=True),
    S(512, 512, 512, 1, False, "f16", "f16", "off", emb=False),
    S(2048, 2048, 1024, 2, False, "f16", "f16", "auto", emb=True),
]
# llama-server's own defaults (-np auto = 4 slots, unified) and the settings its users change most
SERVER_ROWS = [
    SERVER(8192, 2048, 512, 4, True, "f16", "f16", "auto"),
    SERVER(4096, 2048, 512, 1, False, "f16", "f16", "off"),
    SERVER(16384, 2048, 512, 4, True, "q8_0", "q8_0", "on"),
    SERVER(8192, 2048, 512, 4, False, "f16", "f16", "on"),
    SERVER(8192, 2048, 512, 2, False, "f16", "f16", "on", n_draft=3),
    SERVER(8192, 4096, 2048, 1, False, "f16", "f16", "off"),
]
SWA_ARCHS = {"gemma2", "gemma3", "gemma3n", "gpt-oss", "cohere2", "llama4"}
ENCODER_ARCHS = {"bert", "nomic-bert"}


def settings_for(layout: dict[str, Any]) -> list[dict[str, Any]]:
    if layout["arch"] in ENCODER_ARCHS:
        return ENCODER
    return DECODER + (SWA_EXTRA if layout["arch"] in SWA_ARCHS else []) + SERVER_ROWS


# ---------------------------------------------------------------------------------------------------------------
# measuring

EXCERPT = re.compile(r"n_ctx|n_batch|n_ubatch|n_seq_max|flash_attn|Flash Attention|kv_unified|KV buffer|RS buffer|"
                     r"llama_kv_cache|llama_memory_recurrent|iswa|SWA|output buffer|compute buffer|model buffer|"
                     r"n_swa|swa_type|is_swa|causal|warn|WARN|error|failed", re.I)


def run_layout(layout: dict[str, Any], gguf: Path) -> tuple[list[dict[str, Any]], list[str]]:
    settings = settings_for(layout)
    lines = [f"{s['ctx']} {s['batch']} {s['ubatch']} {s['parallel']} {int(s['kv_unified'])} {s['cache_type_k']} "
             f"{s['cache_type_v']} {s['flash_attn']} {int(s['swa_full'])} {int(s['embeddings'])} "
             f"{s.get('n_outputs_max', 0)} {s.get('n_outputs_max_per_seq', 0)}" for s in settings]
    proc = subprocess.run([str(MEASURE), str(gguf)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    out = proc.stdout.splitlines()
    if proc.returncode != 0 and not any(l.startswith("@@JSON") for l in out):
        raise RuntimeError(f"{layout['name']}: measure failed (rc={proc.returncode})\n" + "\n".join(out[-40:]) + proc.stderr[-4000:])
    blocks: dict[str, list[str]] = {}
    results: dict[int, dict[str, Any]] = {}
    cur = None
    for line in out:
        if line.startswith("@@BEGIN "):
            cur = line.split(" ", 1)[1]
            blocks[cur] = []
        elif line.startswith("@@END "):
            cur = None
        elif line.startswith("@@JSON "):
            obj = json.loads(line[7:])
            if "index" in obj:
                results[obj["index"]] = obj
            else:
                raise RuntimeError(f"{layout['name']}: {obj}\n" + "\n".join(blocks.get("model", [])[-30:]))
        elif cur is not None:
            blocks[cur].append(line)
    model_log = [l for l in blocks.get("model", []) if re.search(r"model buffer|n_swa|swa|type\s*=|n_layer|n_head|"
                                                                 r"n_embd|file size|n_expert|n_ctx_train|ssm_", l)]
    rows = []
    for i, s in enumerate(settings):
        r = results.get(i)
        log = [l for l in blocks.get(str(i), []) if EXCERPT.search(l)]
        if r is None or "error" in r:
            rows.append({"layout": layout["name"], "arch": layout["arch"], "settings": s,
                         "error": (r or {}).get("error", "no result"), "log_excerpt": blocks.get(str(i), [])[-15:]})
            continue
        mem = r["memory"]
        caches = mem.get("caches", [])
        rec = mem.get("recurrent")
        swa = [c for c in caches if c["tag"] == "swa"]
        measured = {
            "model_bytes": r["model_bytes"],
            "kv_cache_bytes": sum(c["k_bytes"] + c["v_bytes"] for c in caches),
            "kv_k_bytes": sum(c["k_bytes"] for c in caches),
            "kv_v_bytes": sum(c["v_bytes"] for c in caches),
            "recurrent_state_bytes": (rec["r_bytes"] + rec["s_bytes"] + rec["p_bytes"]) if rec else 0,
            "compute_bytes": r["compute_bytes"],
            "output_bytes": r["output_bytes"],
            "context_buffer_bytes": r["context_bytes"],
        }
        if swa:
            measured["swa_kv_bytes"] = sum(c["k_bytes"] + c["v_bytes"] for c in swa)
            measured["non_swa_kv_bytes"] = measured["kv_cache_bytes"] - measured["swa_kv_bytes"]
        if rec:
            measured["recurrent_r_bytes"] = rec["r_bytes"]
            measured["recurrent_s_bytes"] = rec["s_bytes"]
        resolved = {"flash_attn": r["flash_attn"], "n_ctx": r["n_ctx"], "n_ctx_seq": r["n_ctx_seq"],
                    "n_batch": r["n_batch"], "n_ubatch": r["n_ubatch"], "n_seq_max": r["n_seq_max"],
                    "n_outputs_max": r["n_outputs_max"], "n_outputs_max_per_seq": r["n_outputs_max_per_seq"],
                    "memory_type": mem["type"],
                    "kv_caches": [{"tag": c["tag"], "cells": c["cells"], "n_stream": c["n_stream"],
                                   "n_layers": len(c["layers"]), "k_bytes": c["k_bytes"], "v_bytes": c["v_bytes"],
                                   "v_trans": c["v_trans"]} for c in caches]}
        if rec:
            resolved["recurrent"] = {"cells": rec["cells"], "n_layers": len(rec["layers"])}
        rows.append({"layout": layout["name"], "arch": layout["arch"], "settings": s, "resolved": resolved,
                     "measured": measured, "by_buffer_type": r["by_buffer_type"], "log_excerpt": log})
    # per-layout structure (which layers hold KV / state, row widths) from the first successful setting
    first = next((results[i] for i in sorted(results) if "memory" in results[i]), None)
    struct: dict[str, Any] = {"n_vocab": first["n_vocab"] if first else None, "model_log": model_log}
    if first:
        m = first["memory"]
        struct["memory_type"] = m["type"]
        struct["kv_layers"] = {c["tag"]: [{"il": l[0], "n_embd_k_gqa": l[1], "n_embd_v_gqa": l[3]} for l in c["layers"]]
                               for c in m.get("caches", [])}
        if m.get("recurrent"):
            struct["recurrent_layers"] = [{"il": l[0], "n_embd_r": l[1], "n_embd_s": l[2]} for l in m["recurrent"]["layers"]]
        if m.get("caches"):
            struct["n_swa"] = max(c["n_swa"] for c in m["caches"])
    return rows, struct


def llama_cpp_version() -> str:
    ggml_ver = ""
    cm = SRC / "ggml" / "CMakeLists.txt"
    if cm.exists():
        v = {k: re.search(rf"set\(GGML_VERSION_{k}\s+(\d+)\)", cm.read_text()) for k in ("MAJOR", "MINOR", "PATCH")}
        if all(v.values()):
            ggml_ver = f", ggml {v['MAJOR'].group(1)}.{v['MINOR'].group(1)}.{v['PATCH'].group(1)}"
    return f"ggml-org/llama.cpp@{LLAMA_CPP_COMMIT} (vendored in llama-cpp-python {SDIST_VERSION}{ggml_ver})"


def main(argv: list[str]) -> None:
    t0 = time.time()
    ensure_built()
    t_build = time.time() - t0
    only = set(argv)
    gg = WORK / "gguf"
    gg.mkdir(exist_ok=True)
    old: dict[str, Any] = {}
    if only and RESULTS.exists():
        old = json.loads(RESULTS.read_text())
    rows: list[dict[str, Any]] = []
    structs: dict[str, Any] = {}
    failed: list[str] = []
    for path in layout_io.layout_paths():
        lay = layout_io.load_layout(path)
        if only and lay["name"] not in only and lay["arch"] not in only:
            continue
        t1 = time.time()
        gguf = gg / f"{lay['name']}.gguf"
        full = layout_io.write_gguf(lay, gguf)
        try:
            r, st = run_layout(lay, gguf)
        except RuntimeError as e:
            print(f"FAILED {lay['name']}: {str(e)[-3000:]}", flush=True)
            failed.append(lay["name"])
            continue
        finally:
            gguf.unlink(missing_ok=True)
        st["file_bytes"] = full
        st["source_model"] = lay["source_model"]
        rows += r
        structs[lay["name"]] = st
        n_err = sum(1 for x in r if "error" in x)
        print(f"{lay['name']:24s} {lay['arch']:14s} {len(r)} settings ({n_err} failed) "
              f"file {full / 2**30:.2f} GiB  {time.time() - t1:.1f}s", flush=True)
    if old:
        names = {r["layout"] for r in rows}
        rows = [r for r in old["rows"] if r["layout"] not in names] + rows
        structs = {**{k: v for k, v in old.get("layouts", {}).items() if k not in structs}, **structs}
    order = [p.stem for p in layout_io.layout_paths()]
    rows.sort(key=lambda r: order.index(r["layout"]) if r["layout"] in order else 999)
    out = {
        "llama_cpp_version": llama_cpp_version(),
        "llama_cpp_python_sdist": SDIST_VERSION,
        "measured_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} cores, CPU backend only "
                   "(GGML_NATIVE=OFF, use_extra_bufts=false, mmap)",
        "method": "benchmarks/accuracy/measure.cpp: byte-exact sizes from llama_get_memory_breakdown() and the memory "
                  "module's own K/V/R/S tensors (ggml_nbytes); output buffer from ggml_backend_buffer_get_size",
        "layouts": {k: structs[k] for k in sorted(structs, key=lambda n: order.index(n) if n in order else 999)},
        "rows": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(HERE.parent.parent)}: {len(rows)} rows, {len(structs)} layouts; "
          f"build/check {t_build:.0f}s, total {time.time() - t0:.0f}s")
    if failed:
        print("layouts that failed to load:", ", ".join(failed))


if __name__ == "__main__":
    main(sys.argv[1:])
