"""Wall time and peak memory of `fitcheck MODEL --json` on a 7B header with a 152k-token vocabulary.

Builds a Qwen2.5-7B-shaped header (152,064 tokens, real shapes, Q4_K_M-like types), then runs the CLI N
times as a fresh process and reports the median wall time and the peak RSS (largest ru_maxrss of the runs).
Usage: python benchmarks/local/header_speed.py [runs]
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.gguf_builder: not shipped

from tests import gguf_builder as synth


def build(folder: Path) -> Path:
    meta, tensors = synth.llama_layout(arch="qwen2", n_layer=28, n_embd=3584, n_head=28, n_head_kv=4, n_ff=18944,
                                       n_vocab=152064, n_ctx_train=32768, attn_bias=True,
                                       name="Qwen2.5-7B-shaped (header only)")
    # A BPE tokenizer also ships ~150k merges: strings the reader must walk without building
    meta["tokenizer.ggml.merges"] = [f"t{i} t{i + 1}" for i in range(151387)]
    path = folder / "qwen2.5-7b-header.gguf"
    synth.write_header_only(path, "qwen2", meta, tensors)
    return path


def main() -> None:
    if sys.argv[1:2] == ["--build"]:
        build(Path(sys.argv[2]))
        return
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        # Built in another process: a forked child's ru_maxrss would include this process's numpy pages.
        subprocess.run([sys.executable, __file__, "--build", tmp], check=True)
        path = Path(tmp) / "qwen2.5-7b-header.gguf"
        cmd = [sys.executable, "-m", "fitcheck", str(path), "--json", "--cpu-only", "--ram", "64G"]
        # As installed: pip compiles a wheel's bytecode at install time, so a user's run never compiles fitcheck's
        # sources. An editable checkout (or PYTHONDONTWRITEBYTECODE=1) would add ~0.1 s of compiling to every run.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"NO_COLOR": "1"}
        package = Path(importlib.util.find_spec("fitcheck").origin).parent
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, env=env)
        walls, peaks = [], []
        for _ in range(runs):
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
            walls.append(time.perf_counter() - start)
            peaks.append(usage.ru_maxrss)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit("fitcheck failed")
        peak_kib = max(peaks)
        print("| header | size | runs | median wall | min wall | peak RSS |")
        print("|---|---|---|---|---|---|")
        print(f"| Qwen2.5-7B shape, 152,064 tokens + 151,387 merges | {path.stat().st_size / 2**20:.1f} MiB | {runs} "
              f"| {statistics.median(walls):.3f} s | {min(walls):.3f} s | {peak_kib / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
