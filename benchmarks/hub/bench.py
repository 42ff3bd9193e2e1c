"""Hub header reads on loopback: bytes and requests per file, and the wall time of a 25-quant repo.

Serves header-only GGUFs from the fake hub (tests/fake_hub.py, a real HTTP server on 127.0.0.1) and reads them
through fitcheck's Hub source and huggingface_hub's HTTP session, exactly as `fitcheck hf:...` does.

    .venv/bin/python benchmarks/hub/bench.py            # prints a Markdown report (see RESULTS.md)
    .venv/bin/python benchmarks/hub/bench.py --latency 0.03   # add 30 ms to every file request (a WAN-ish RTT)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_hub import FakeHub, qwen7b_layout  # noqa: E402

# 25 llama.cpp quants: label -> (main ggml type, ffn_down/output type)
QUANTS = {
    "IQ1_S": ("IQ1_S", "Q2_K"), "IQ1_M": ("IQ1_M", "Q2_K"), "IQ2_XXS": ("IQ2_XXS", "Q2_K"),
    "IQ2_XS": ("IQ2_XS", "Q2_K"), "IQ2_S": ("IQ2_S", "Q3_K"), "IQ2_M": ("IQ2_S", "Q4_K"), "Q2_K": ("Q2_K", "Q3_K"),
    "IQ3_XXS": ("IQ3_XXS", "Q4_K"), "IQ3_XS": ("IQ3_XXS", "Q4_K"), "Q3_K_S": ("Q3_K", "Q3_K"),
    "IQ3_M": ("IQ3_S", "Q4_K"), "Q3_K_M": ("Q3_K", "Q4_K"), "Q3_K_L": ("Q3_K", "Q5_K"), "IQ4_XS": ("IQ4_XS", "Q6_K"),
    "IQ4_NL": ("IQ4_NL", "Q6_K"), "Q4_0": ("Q4_0", "Q6_K"), "Q4_K_S": ("Q4_K", "Q5_K"), "Q4_K_M": ("Q4_K", "Q6_K"),
    "Q4_1": ("Q4_1", "Q6_K"), "Q5_K_S": ("Q5_K", "Q6_K"), "Q5_K_M": ("Q5_K", "Q6_K"), "Q6_K": ("Q6_K", "Q6_K"),
    "Q8_0": ("Q8_0", "Q8_0"), "F16": ("F16", "F16"), "BF16": ("BF16", "BF16"),
}


def build(folder: Path) -> dict[str, tuple[Path, int]]:
    from fitcheck import quant
    from tests import gguf_builder as synth

    files = {}
    for label, (main, down) in QUANTS.items():
        meta, tensors = qwen7b_layout()
        meta["general.file_type"] = quant.file_types()[label].id
        tensors = [(n, s, main if t == "Q4_K" else down if t == "Q6_K" else t) for n, s, t in tensors]
        path = folder / f"Qwen2.5-7B-Instruct-{label}.gguf"
        files[label] = (path, synth.write_header_only(path, "qwen2", meta, tensors))
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every file request")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fitcheck-hub-bench-"))
    t0 = time.perf_counter()
    files = build(work)
    build_s = time.perf_counter() - t0
    with FakeHub() as hub:
        for path, size in files.values():
            hub.add_file("bench/Qwen2.5-7B-Instruct-GGUF", path.name, path, size=size)
        hub.add_file("bench/Qwen-single", files["Q4_K_M"][0].name, files["Q4_K_M"][0], size=files["Q4_K_M"][1])
        if args.latency:
            hub.delay["/resolve/"] = args.latency
        os.environ.update(HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_TELEMETRY="1",
                          FITCHECK_CACHE_DIR=str(work / "cache"), HF_HOME=str(work / "hf"))
        from fitcheck.sources import hf
        from fitcheck.sources.resolve import resolve

        print(f"# fitcheck Hub header reads (loopback{f', +{args.latency * 1000:.0f} ms per request' if args.latency else ''})\n")
        print(f"built 25 header-only Qwen2.5-7B-shaped GGUFs (152064-token vocab) in {build_s:.1f} s\n")

        # 1. one 7B header, cold cache
        stats: list[dict] = []
        hub.reset_counters()
        t = time.perf_counter()
        resolve("hf:bench/Qwen-single:Q4_K_M", stats=stats)
        single_s = time.perf_counter() - t
        s = stats[0]
        name = files["Q4_K_M"][0].name
        gets = [r for r in hub.file_requests(name) if r.method == "GET"]
        print("## One 7B header (152k vocab)\n")
        print("| file size | header bytes | bytes fetched | fetched / header | file requests | all requests | wall |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {files['Q4_K_M'][1]:,} | {s['header_bytes']:,} | {s['bytes_fetched']:,} | "
              f"{s['bytes_fetched'] / s['header_bytes']:.3f} | {len(gets)} | {len(hub.requests)} | "
              f"{single_s * 1000:.0f} ms |\n")

        # 2. the 25-file repo: concurrency 1 vs default, then warm
        print("## 25-quant repo\n")
        print("| run | workers | wall | requests | bytes fetched | bytes / file (mean) | requests / file (mean) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        repo = "bench/Qwen2.5-7B-Instruct-GGUF"
        for workers in (1, hf.MAX_WORKERS):
            os.environ["FITCHECK_CACHE_DIR"] = str(work / f"cache-{workers}")
            hub.reset_counters()
            stats = []
            t = time.perf_counter()
            listing = hf.list_repo(repo, None)
            loaded = hf.load_groups(listing, hf.gguf_groups(listing), stats=stats, workers=workers)
            wall = time.perf_counter() - t
            assert len(loaded.specs) == 25, loaded.notes
            fetched = sum(x["bytes_fetched"] for x in stats)
            print(f"| cold | {workers} | {wall:.2f} s | {len(hub.requests)} | {fetched:,} | {fetched // 25:,} | "
                  f"{sum(x['requests'] for x in stats) / 25:.1f} |")
        hub.reset_counters()
        t = time.perf_counter()
        found = resolve(f"hf:{repo}")
        wall = time.perf_counter() - t
        print(f"| warm (cache) | {hf.MAX_WORKERS} | {wall:.2f} s | {len(hub.requests)} | 0 | 0 | 0 |\n")
        assert len(found.choices) == 25
        ratios = [x["bytes_fetched"] / x["header_bytes"] for x in stats]
        print(f"fetched/header over the 25 files: min {min(ratios):.3f}, max {max(ratios):.3f}; "
              f"complete files would be {sum(size for _, size in files.values()) / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
