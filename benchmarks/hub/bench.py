"""Hub header reads over an emulated wide-area link: wall time, requests and bytes for one GGUF and a quant repo.

The fake hub (tests/fake_hub.py, a real HTTP/1.1 keep-alive server on 127.0.0.1) runs in this process with an
emulated link: a round-trip time added to every answer, `--handshake` more per new connection, and one shared
downlink of the given bandwidth. LFS files redirect to a second host name, as the Hub's do to its CDN. Every
measurement is a fresh client process with an empty cache, so the hub's threads never share a GIL with it:

- `fetch`: `resolve(ref)` inside the client, after its imports and HTTP session are set up (the listing, the
  header reads and their parsing: the time the network costs);
- `cli`: the whole `python -m fitcheck REF --json --cpu-only --ram 64G` process (start-up, listing, headers,
  estimate, output), as a user waits for it.

The files are header-only Qwen2.5-7B-shaped GGUFs as its real ones are laid out: 152,064 tokens, token types,
151,387 merges, a chat template, 339 tensor infos (a ~6 MiB header), one per quant type.

    python benchmarks/hub/bench.py                        # all three links, one GGUF and a 25-quant repo
    python benchmarks/hub/bench.py --links 50:100 --runs 3  # 50 ms and 100 Mbit/s only, median of 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_hub import FakeHub, qwen7b_bpe_layout  # noqa: E402

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
REPO, SINGLE = "bench/Qwen2.5-7B-Instruct-GGUF", "bench/Qwen-single"


def build(folder: Path) -> dict[str, tuple[Path, int]]:
    """The 25 headers (kept in `folder` with their full sizes, so a second run skips the ~1 min build)."""
    from fitcheck import quant
    from tests import gguf_builder as synth

    index = folder / "sizes.json"
    if index.exists():
        sizes = json.loads(index.read_text())
        return {label: (folder / f"Qwen2.5-7B-Instruct-{label}.gguf", sizes[label]) for label in QUANTS}
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for label, (main, down) in QUANTS.items():
        meta, tensors = qwen7b_bpe_layout("Qwen2.5 7B Instruct")
        meta["general.file_type"] = quant.file_types()[label].id
        tensors = [(n, s, main if t == "Q4_K" else down if t == "Q6_K" else t) for n, s, t in tensors]
        sizes[label] = synth.write_header_only(folder / f"Qwen2.5-7B-Instruct-{label}.gguf", "qwen2", meta, tensors)
    index.write_text(json.dumps(sizes))
    return build(folder)


def client(ref: str) -> None:
    """In the client process: resolve `ref` once and print the wall time and per-file stats as JSON."""
    from huggingface_hub import HfApi, get_session

    from fitcheck.sources import hf  # noqa: F401  # imports and the HTTP session before the clock starts
    from fitcheck.sources.resolve import resolve
    from fitcheck.sources.types import QuantSet

    get_session(), HfApi()

    stats: list[dict] = []
    t = time.perf_counter()
    found = resolve(ref, stats=stats)
    wall = time.perf_counter() - t
    n = len(found.choices) if isinstance(found, QuantSet) else 1
    print(json.dumps({"wall_s": wall, "models": n, "stats": stats}))


MEMBW: Path | None = None  # this machine's RAM-bandwidth measurement, copied into every fresh cache
DATA: Path | None = None  # fitcheck's parsed data tables (fitcheck.data), likewise


def measure(hub: FakeHub, ref: str, mode: str, cache: Path, src: str) -> dict:
    # The headers' cache starts empty; what any earlier fitcheck run leaves, whatever the model (the machine's
    # RAM measurement, the parsed data tables: CPU, not network), is kept.
    cache.mkdir(parents=True, exist_ok=True)
    if MEMBW is not None and MEMBW.exists():
        (cache / MEMBW.name).write_bytes(MEMBW.read_bytes())
    if DATA is not None and DATA.is_dir():
        shutil.copytree(DATA, cache / "data", dirs_exist_ok=True)
    # As installed (a wheel's bytecode is compiled at install): no source compiling on the clock.
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1", "NO_COLOR": "1",
           "FITCHECK_CACHE_DIR": str(cache), "HF_HOME": str(cache / "hf"), "PYTHONPATH": src}
    env.pop("HF_TOKEN", None)
    if mode == "fetch":
        cmd = [sys.executable, __file__, "--client", ref]
    else:
        cmd = [sys.executable, "-m", "fitcheck", ref, "--json", "--cpu-only", "--ram", "64G"]
    hub.reset_counters()
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1) or (mode == "fetch" and proc.returncode):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = {"wall_s": wall, "requests": len(hub.requests), "bytes": hub.bytes_sent(), "connections": hub.connections,
           "file_gets": len([r for r in hub.requests if r.method == "GET" and r.path.split("?")[0].endswith(".gguf")
                             and r.status in (200, 206)])}
    if mode == "fetch":
        data = json.loads(proc.stdout)
        out.update(fetch_s=data["wall_s"], models=data["models"],
                   header_bytes=sum(s.get("header_bytes", 0) for s in data["stats"]))
    return out


def row(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--links", default="0:0,50:100,150:20", help="RTT_MS:MBIT pairs (0 Mbit: unlimited)")
    parser.add_argument("--runs", type=int, default=1, help="runs per measurement (the median is shown)")
    parser.add_argument("--handshake", type=int, default=1, help="round trips per new connection (2: TCP+TLS)")
    parser.add_argument("--only", choices=("single", "repo"), help="one of the two references")
    parser.add_argument("--src", default=str(ROOT / "src"), help="the fitcheck package's parent folder to measure")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "fitcheck-hub-bench"))
    args = parser.parse_args()
    if args.client:
        return client(args.client)
    work = Path(args.work)
    files = build(work / "files")
    global MEMBW
    sys.path.insert(0, args.src)
    compile_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(args.src) / "fitcheck")], check=True,
                   env=compile_env)
    try:  # a checkout from before the speed estimate has no RAM measurement to keep
        from fitcheck.probe.membw import CACHE_FILE, cached_ram_bandwidth

        cached_ram_bandwidth(work / "membw")  # once, before any clock runs
        MEMBW = work / "membw" / CACHE_FILE
    except ImportError:
        MEMBW = None
    global DATA
    os.environ["FITCHECK_CACHE_DIR"] = str(work / "once")
    try:  # a checkout from before the data cache keeps nothing there
        from fitcheck.data import load_yaml

        for name in ("quant_types.yaml", "compute_model.yaml", "speed_model.yaml", "llama_cpp_builds.yaml",
                     "hardware.yaml", "quant_quality.yaml"):
            load_yaml(name)
        DATA = work / "once" / "data"
    except (ImportError, FileNotFoundError):
        DATA = None
    header = {"single": f"hf:{SINGLE}:Q4_K_M", "repo": f"hf:{REPO}"}
    with FakeHub() as hub:
        for path, size in files.values():
            hub.add_file(REPO, path.name, path, size=size)
        hub.add_file(SINGLE, files["Q4_K_M"][0].name, files["Q4_K_M"][0], size=files["Q4_K_M"][1])
        hub.redirect_lfs = True
        for repo in hub.repos.values():  # the fake hub hashes its files on first use: not on the clock
            _ = repo.sha
        print(f"# fitcheck Hub header reads (handshake {args.handshake} RTT per connection, LFS redirected)\n")
        print("| link | reference | models | fetch wall | CLI wall | requests | GGUF GETs | connections | "
              "bytes fetched | fetched / header |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for link in args.links.split(","):
            rtt_ms, mbit = (float(x) for x in link.split(":"))
            hub.set_link(rtt_ms / 1000, mbit * 1e6 or None, args.handshake)
            label = f"{rtt_ms:g} ms, {f'{mbit:g} Mbit/s' if mbit else 'unlimited'}"
            for what, ref in header.items():
                if args.only and what != args.only:
                    continue
                fetch, cli = [], []
                for i in range(args.runs):
                    fetch.append(measure(hub, ref, "fetch", work / f"cache-{time.time_ns()}-{i}", args.src))
                    cli.append(measure(hub, ref, "cli", work / f"cache-{time.time_ns()}-{i}c", args.src))
                f = fetch[len(fetch) // 2]
                print(f"| {label} | `{ref}` | {f['models']} | {row(fetch, 'fetch_s'):.2f} s | {row(cli, 'wall_s'):.2f} s "
                      f"| {f['requests']} | {f['file_gets']} | {f['connections']} | {f['bytes']:,} "
                      f"| {f['bytes'] / f['header_bytes']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
