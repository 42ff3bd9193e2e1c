"""In-process time of check.check_model for a few command lines on faked GPUs (the compute replay's cost).

    python benchmarks/local/compute_replay.py DIR      # DIR holds qwen7b.gguf, qwen7b_q8.gguf, moe.gguf

Header-only GGUFs built from tests/gguf_builder.py (Qwen2.5-7B shapes: tests/fake_hub.py:qwen7b_layout and a
Q8_0 sibling; Qwen3-30B-A3B shapes: moe_layout), truncated to their full size. Each case runs in a fresh
process (an empty replay memo) through the CLI's own argument parsing; the time is check_model's alone
(the header parse excluded). `siblings` plans qwen7b.gguf then its Q8_0 sibling in one process and times the
second: what a scan row of another quant of the same model costs. Results: compute_replay.md.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time

CASES = {
    "dense full offload (--vram 24G)": ["{d}/qwen7b.gguf", "--vram", "24G", "--ram", "64G"],
    "dense partial (-ngl 10)": ["{d}/qwen7b.gguf", "--vram", "24G", "--ram", "64G", "-ngl", "10"],
    "dense auto, offload (--vram 6G -c 32k)": ["{d}/qwen7b.gguf", "--vram", "6G", "--ram", "64G", "-c", "32k"],
    "qwen3moe -cmoe (--vram 24G)": ["{d}/moe.gguf", "--vram", "24G", "--ram", "64G", "-cmoe"],
    "qwen3moe auto (--vram 12G)": ["{d}/moe.gguf", "--vram", "12G", "--ram", "64G"],
    "CPU only (--cpu-only)": ["{d}/qwen7b.gguf", "--cpu-only", "--ram", "64G"],
    "2-GPU split (--gpu '2x RTX 4090', moe)": ["{d}/moe.gguf", "--gpu", "2x RTX 4090", "--ram", "64G"],
    "RTX 4090 Q8_0 -c 32k": ["{d}/qwen7b_q8.gguf", "--gpu", "RTX 4090", "--ram", "64G", "-c", "32k"],
}


def one(args: list[str]) -> list[float]:
    """check_model's seconds for each command line, in this process, in order."""
    import importlib

    from fitcheck import cli

    check = importlib.import_module("fitcheck.check")

    spent: list[float] = []
    original = check.check_model

    def timed(*a, **k):
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent.append(time.perf_counter() - start)

    check.check_model = timed
    for line in args:
        with contextlib.redirect_stdout(io.StringIO()):
            cli.app(args=line.split("\x1f") + ["--json"], prog_name="fitcheck", standalone_mode=False)
    return spent


def main() -> None:
    if sys.argv[1] == "--child":
        print(" ".join(f"{s:.4f}" for s in one(sys.argv[2:])))
        return
    d = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rows = dict(CASES)
    rows["siblings: Q8_0 after Q4_K_M (--vram 24G)"] = []
    print(f"| case | check_model (best of {repeat}, fresh process) |")
    print("|---|---:|")
    for name, args in rows.items():
        if args:
            lines = ["\x1f".join(a.format(d=d) for a in args)]
        else:
            lines = ["\x1f".join([f"{d}/{f}", "--vram", "24G", "--ram", "64G"]) for f in ("qwen7b.gguf", "qwen7b_q8.gguf")]
        best = None
        for _ in range(repeat):
            out = subprocess.run([sys.executable, __file__, "--child", *lines], check=True, capture_output=True,
                                 text=True).stdout.split()
            value = float(out[-1])
            best = value if best is None else min(best, value)
        print(f"| {name} | {best * 1000:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
