"""fitcheck's estimate beside llama.cpp's own figures (`fitcheck --exact`), for published layouts, into RESULTS.md.

    python benchmarks/exact/compare.py [--python /tmp/venv-exact/bin/python] [--binary DIR] [--out RESULTS.md]

Each layout of benchmarks/accuracy/layouts/ named below is written as a header-only GGUF into a temporary
folder and checked with `fitcheck MODEL --exact --json --cpu-only --ram 64G` under each setting: once with the
llama_cpp module (`--python`: an interpreter where llama-cpp-python and fitcheck are installed) and once with
llama-fit-params (`--binary`: a llama.cpp build's bin/ folder), each forced with FITCHECK_EXACT_ENGINE. The
header-only file is what fitcheck reads; --exact makes its own sparse copy of it for llama.cpp.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "accuracy"))
import layout_io  # noqa: E402

MiB = 1024**2
LAYOUTS = [  # (layout, what it stands for)
    ("llama-3.1-8b", "dense llama (Llama 3.1 8B's shapes, 8 of 32 blocks)"),
    ("gemma-3-4b", "gemma3, sliding window 5 of 6 layers"),
    ("qwen3-30b-a3b", "qwen3moe, 128 experts"),
    ("deepseek-v2-lite", "deepseek2, MLA"),
    ("granite-4.0-h-tiny", "granitehybrid: mamba2 + attention, MoE"),
]
SETTINGS = [
    ["-c", "8192"],
    ["-c", "32768", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on", "-np", "2"],
]
PARTS = [("weights", "weights_bytes"), ("KV cache", "kv_cache_bytes"), ("recurrent state", "recurrent_state_bytes"),
         ("compute", "compute_bytes"), ("output", "output_bytes"), ("total", "total_bytes")]


def run(python: str, model: Path, args: list[str], engine: str, binary: str | None) -> tuple[dict[str, Any], float]:
    env = dict(os.environ, FITCHECK_EXACT_ENGINE=engine, NO_COLOR="1")
    if binary:
        env["FITCHECK_LLAMA_CPP"] = binary
    t0 = time.perf_counter()
    out = subprocess.run([python, "-m", "fitcheck", str(model), "--cpu-only", "--ram", "64G", *args, "--exact",
                          "--json"], capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        return {"error": out.stderr.strip()}, wall
    return json.loads(out.stdout), wall


def _fitcheck_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "src", "data")
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (" with uncommitted changes in src/ or data/" if dirty else "")


def mib(n: int) -> str:
    return f"{n / MiB:,.2f}"


def diff(ours: int, theirs: int, resolution: int) -> str:
    d = ours - theirs
    if abs(d) <= resolution:
        return "0" if d == 0 else "= (rounding)"
    return f"{d / MiB:+,.2f} ({d / theirs:+.1%})" if theirs else f"{d / MiB:+,.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--binary", default=str(ROOT / "benchmarks/speed/work/build/bin"))
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    opts = ap.parse_args()
    lines: list[str] = []
    summary = ["| layout | settings | weights | KV cache | recurrent | compute | output | total |",
               "|---|---|---|---|---|---|---|---|"]
    engines: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fitcheck-exact-bench-") as tmp:
        for name, what in LAYOUTS:
            path = Path(tmp) / f"{name}.gguf"
            layout_io.write_gguf(layout_io.load_layout(layout_io.LAYOUT_DIR / f"{name}.json"), path, sparse=False)
            for args in SETTINGS:
                mod, t_mod = run(opts.python, path, args, "module", None)
                bin_, t_bin = run(opts.python, path, args, "binary", opts.binary)
                lines.append(f"\n### {name} ({what}): `{' '.join(args)}`\n")
                if "error" in mod:
                    lines.append(f"llama_cpp module: {mod['error']}\n")
                    continue
                memory, exact = mod["memory"], mod["exact"]
                engines["module"] = exact["engine"]
                res = exact["resolution_bytes"]
                have_bin = "exact" in bin_ and bin_["exact"]
                if have_bin:
                    engines["binary"] = bin_["exact"]["engine"]
                lines.append("| part | fitcheck MiB | llama.cpp MiB (module) | difference | llama-fit-params MiB |")
                lines.append("|---|---:|---:|---:|---:|")
                for label, key in PARTS:
                    ours = memory[key] - (memory["overhead_bytes"] if key == "total_bytes" else 0)
                    theirs = exact["memory"][key]
                    if not (ours or theirs):
                        continue
                    r = sum(res.values()) if key == "total_bytes" else res.get(key, 0)
                    b = mib(bin_["exact"]["memory"][key]) if have_bin else "-"
                    lines.append(f"| {label} | {mib(ours)} | {mib(theirs)} | {diff(ours, theirs, r)} | {b} |")
                cells = []
                for _, key in PARTS:
                    ours = memory[key] - (memory["overhead_bytes"] if key == "total_bytes" else 0)
                    theirs = exact["memory"][key]
                    r = sum(res.values()) if key == "total_bytes" else res.get(key, 0)
                    cells.append(diff(ours, theirs, r) if ours or theirs else "-")
                summary.append(f"| {name} | `{' '.join(args)}` | " + " | ".join(cells) + " |")
                copy = exact["sparse_copy"]
                lines.append(f"\nsparse copy: {copy['disk_bytes'] / MiB:.1f} MiB on disk of {copy['size_bytes'] / MiB:,.0f}"
                             f" MiB (header {copy['header_bytes'] / MiB:.1f} MiB); wall {t_mod:.2f} s (module), "
                             f"{t_bin:.2f} s (llama-fit-params); llama.cpp ran with `{' '.join(exact['args'])}`")
    head = [
        "# fitcheck --exact: the estimate beside llama.cpp's own figures",
        "",
        "Written by `benchmarks/exact/compare.py` (the command and what it runs are in its docstring). Each",
        "layout (benchmarks/accuracy/layouts/, published shapes) is a header-only GGUF; `fitcheck --exact` makes",
        "a sparse copy and asks llama.cpp's memory-fit pass (no_alloc: nothing allocated, no weight read, no",
        "CPU repacking) under the same settings and plan (`--cpu-only --ram 64G`: -ngl 0).",
        "",
        f"- module: {engines.get('module', '?')}, asked as llama-server sizes its outputs "
        "(n_outputs_max = -np, one per sequence: server-context.cpp server_output_limits)",
        f"- binary: {engines.get('binary', '?')}; it keeps common's n_outputs_max = 0 (n_batch logits rows), so",
        "  its compute buffer is llama-cli's, not llama-server's, and larger by about the logits of a micro-batch",
        "- the module's figures are to 0.01 MiB (its `%.2f MiB` log lines) and its weights exact (llama_model_size);",
        "  llama-fit-params' weights come from its breakdown table in whole MiB, rounded down",
        "- `difference` = fitcheck − llama.cpp; `= (rounding)`: within the printed precision; total leaves out",
        "  fitcheck's own GPU reserve (not llama.cpp's)",
        f"- fitcheck: {_fitcheck_state()}",
        f"- machine: {os.uname().sysname} {os.uname().machine}, CPU backend (no GPU here); llama.cpp 0c1e57098",
        "  (vendored in llama-cpp-python 0.3.36)",
    ]
    head += ["", "## Summary: fitcheck − llama.cpp (llama_cpp module), MiB", "", *summary, "", "## Per run"]
    Path(opts.out).write_text("\n".join(head + lines) + "\n", encoding="utf-8")
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
