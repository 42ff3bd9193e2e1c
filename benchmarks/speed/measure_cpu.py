"""Ground truth for fitcheck's CPU speed prediction: llama.cpp's llama-bench on this machine, CPU only.

    /tmp/venv/bin/python benchmarks/speed/measure_cpu.py                   # build if needed, all models
    /tmp/venv/bin/python benchmarks/speed/measure_cpu.py qwen3-4b-q4_k_m   # some models (merged into the results)
    options: --reps N (llama-bench -r, default 5)  --clean (delete the big GGUFs afterwards)  --no-bandwidth
             --no-compare (skip compare_cpu.py, which otherwise checks fitcheck's prediction at the end)
             --append (keep the earlier runs' attempts and pool them: a further pass)  --reverse (models in reverse)
             --resummarize (only recompute results from the stored attempts)  --table (CPU.md's table)
             --wait S (how long to wait for a quiet machine before each llama-bench, default 240)
             --strict (skip a model when the machine does not go quiet; keep only clean attempts, the others
                       go to discarded_attempts)

Builds llama-bench from the same llama.cpp as benchmarks/accuracy/run.py (the llama-cpp-python 0.3.36 sdist,
llama.cpp 0c1e57098) under benchmarks/speed/work/ (git-ignored), writes the models of cpu_models.py there,
and runs, per model and variant (real / materialized / sparse):

    llama-bench -m FILE -t 2 -p 128 -n 64 -r 5 -o json -v       (pp128 and tg64, depth 0, other settings default)

after syncing, dropping the page cache and reading the file once (so no test reads the disk). A CPU probe
(2-thread f32 matmul GFLOPS) runs before and after each llama-bench, to show when the machine was disturbed.
Results: benchmarks/speed/cpu_measured.json
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cpu_models  # noqa: E402

SDIST_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098"  # the sdist's CHANGELOG: "update llama.cpp to ggml-org/llama.cpp@0c1e57098"
WORK = HERE / "work"
SRC = WORK / f"llama_cpp_python-{SDIST_VERSION}" / "vendor" / "llama.cpp"
BUILD = WORK / "build"
BENCH = BUILD / "bin" / "llama-bench"
GGUF_DIR = WORK / "gguf"
HEADER_DIR = WORK / "headers"
RESULTS = HERE / "cpu_measured.json"

CMAKE_FLAGS = ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF",
               "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON",
               "-DLLAMA_BUILD_SERVER=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_OPENMP=ON"]
THREADS = 2
N_PROMPT = 128
N_GEN = 64
CV_RETRY = 0.15      # rerun a model's llama-bench when tg64's stddev/avg exceeds this, or when other processes
FOREIGN_MAX = 0.05   # used more than this fraction of the machine's CPU time during it ...
MAX_ATTEMPTS = 3     # ... at most this many times in all
QUIET_BUSY = 0.10    # before each llama-bench, wait until the machine is this idle (other sessions share it) ...
QUIET_WAIT_S = 240   # ... for at most this long


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
    if not BENCH.exists():
        sh(["cmake", "-S", str(SRC), "-B", str(BUILD), *CMAKE_FLAGS])
        sh(["cmake", "--build", str(BUILD), "-j2", "--target", "llama-bench"])


# ---------------------------------------------------------------------------------------------------------------
# the machine

def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    kv = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in lscpu.splitlines() if ":" in l)}
    flags = set(kv.get("Flags", "").split())
    interest = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512vbmi", "avx_vnni", "amx_tile", "amx_int8"]
    mem = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo"))
    cache_keys = ["L1d cache", "L2 cache", "L3 cache"]
    ninja = BUILD / "build.ninja"
    native = "-march=native" in ninja.read_text() if ninja.exists() else None
    version = subprocess.run([str(BENCH), "--version"], capture_output=True, text=True)
    return {
        "cpu_model": kv.get("Model name"),
        "vendor": kv.get("Vendor ID"),
        "cpu_family_model": f"family {kv.get('CPU family')} model {kv.get('Model')}",
        "logical_cpus": os.cpu_count(),
        "cores_per_socket": kv.get("Core(s) per socket"),
        "threads_per_core": kv.get("Thread(s) per core"),
        "sockets": kv.get("Socket(s)"),
        "caches": {k: kv.get(k) for k in cache_keys},
        "hypervisor": kv.get("Hypervisor vendor"),
        "flags_of_interest": {f: f in flags for f in interest},
        "ram_bytes": int(mem.group(1)) * 1024 if mem else None,
        "swap": _read("/proc/swaps").count("\n") > 1,
        "kernel": platform.release(),
        "os": platform.platform(),
        "transparent_hugepage": _read("/sys/kernel/mm/transparent_hugepage/enabled").strip(),
        "damon_kdamond_on": _read("/sys/kernel/mm/damon/admin/kdamonds/0/state").strip() == "on",
        "damon_scheme_action": _read("/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/schemes/0/action").strip()
                               or None,
        "llama_bench_version": (version.stdout + version.stderr).strip(),
        "built_with_march_native": native,
    }


def _bw_worker(bar: threading.Barrier, op: str, src: Any, dst: Any) -> None:
    import numpy as np

    bar.wait()
    if op == "sum":
        src.sum()
    else:
        np.copyto(dst, src)
    bar.wait()


def bandwidth() -> dict[str, Any]:
    """Memory bandwidth from numpy: each thread sums (reads) its own 1 GiB float64 array, or copies it into
    another (read + write counted: 2 GiB moved per thread). Best of 5 per case, all samples kept."""
    import numpy as np

    n = 2**30 // 8
    out: dict[str, Any] = {"method": "numpy, per thread its own 1 GiB float64 array; threading.Barrier-timed; "
                                     "sum = bytes read / s; copy (np.copyto) = (read + written bytes) / s; GB = 1e9",
                           "numpy": np.__version__}
    for nthreads in (1, 2):
        src = [np.ones(n) for _ in range(nthreads)]
        dst = [np.zeros(n) for _ in range(nthreads)]
        for op in ("sum", "copy"):
            samples = []
            for _ in range(5):
                bar = threading.Barrier(nthreads + 1)
                ts = [threading.Thread(target=_bw_worker, args=(bar, op, src[i], dst[i])) for i in range(nthreads)]
                for t in ts:
                    t.start()
                bar.wait()
                t0 = time.perf_counter()
                bar.wait()
                dt_s = time.perf_counter() - t0
                for t in ts:
                    t.join()
                moved = nthreads * n * 8 * (2 if op == "copy" else 1)
                samples.append(round(moved / dt_s / 1e9, 2))
            out[f"{op}_{nthreads}t_GBps"] = max(samples)
            out[f"{op}_{nthreads}t_samples"] = samples
        del src, dst
    return out


def cpu_probe() -> list[float]:
    """Five ~0.15 s samples of 1024x1024 f32 matmul GFLOPS (numpy BLAS, both cores): machine disturbance."""
    import numpy as np

    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    a @ a
    out = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ a
        out.append(round(10 * 2 * 1024**3 / (time.perf_counter() - t0) / 1e9, 1))
    return out


def cpu_ticks() -> list[int]:
    """/proc/stat cpu line: user nice system idle iowait irq softirq steal."""
    return [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:9]]


TICK = os.sysconf("SC_CLK_TCK")


def _busy_s(t0: list[int], t1: list[int]) -> float:
    d = [b - a for a, b in zip(t0, t1, strict=True)]
    return (d[0] + d[1] + d[2] + d[5] + d[6]) / TICK


def wait_quiet() -> dict[str, Any]:
    """Wait (up to QUIET_WAIT_S) until the whole machine is below QUIET_BUSY busy over a 2 s window."""
    t_start = time.time()
    ncpu = os.cpu_count() or 1
    while True:
        a = cpu_ticks()
        time.sleep(2)
        busy = _busy_s(a, cpu_ticks()) / (2 * ncpu)
        waited = time.time() - t_start
        if busy < QUIET_BUSY or waited > QUIET_WAIT_S:
            return {"waited_s": round(waited, 1), "busy_fraction": round(busy, 3), "quiet": busy < QUIET_BUSY}
        time.sleep(3)


def other_processes() -> list[str]:
    """The busiest processes that are not this one or its children (what shares the machine)."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True,
                         text=True).stdout.splitlines()
    me = str(os.getpid())
    return [" ".join(l.split()[2:]) for l in out if l.split()[0] != me and l.split()[1] != me
            and float(l.split()[2]) >= 5.0][:5]


# ---------------------------------------------------------------------------------------------------------------
# measuring

def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def preread(path: Path) -> float:
    t0 = time.time()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass
    return time.time() - t0


BUFFER_LINE = re.compile(r"buffer size|repack|CPU_REPACK|system_info|n_threads|file type|file size|mmap", re.I)
KEEP = ["n_prompt", "n_gen", "n_depth", "avg_ts", "stddev_ts", "avg_ns", "stddev_ns", "samples_ts", "n_threads",
        "backends", "cpu_info", "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "type_k",
        "type_v", "flash_attn", "repack", "load_mode", "lazy_mode", "poll", "build_commit", "test_time"]


def bench_cmd(path: Path, reps: int) -> list[str]:
    return [str(BENCH), "-m", str(path), "-t", str(THREADS), "-p", str(N_PROMPT), "-n", str(N_GEN),
            "-r", str(reps), "-o", "json", "-v"]


class NotQuiet(Exception):
    pass


def run_bench(path: Path, reps: int, strict: bool = False) -> dict[str, Any]:
    cmd = bench_cmd(path, reps)
    quiet = wait_quiet()
    if strict and not quiet["quiet"]:
        raise NotQuiet(f"machine still {quiet['busy_fraction']:.0%} busy after {quiet['waited_s']}s: "
                       + "; ".join(other_processes()))
    probe_before = cpu_probe()
    load0 = _read("/proc/loadavg").split()[:3]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks0 = cpu_ticks()
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    ticks1 = cpu_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    others = other_processes()
    probe_after = cpu_probe()
    own = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    foreign = max(0.0, _busy_s(ticks0, ticks1) - own)
    foreign_frac = foreign / (wall * (os.cpu_count() or 1))
    if proc.returncode != 0:
        raise RuntimeError(f"llama-bench failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
    tests = json.loads(proc.stdout)
    rows = []
    for t in tests:
        r = {k: t.get(k) for k in KEEP}
        s = sorted(t["samples_ts"])
        r["test"] = f"pp{t['n_prompt']}" if t["n_prompt"] else f"tg{t['n_gen']}"
        r["median_ts"] = round(statistics.median(s), 3)
        r["max_ts"] = s[-1]
        r["min_ts"] = s[0]
        rows.append(r)
    d = [b - a for a, b in zip(ticks0, ticks1, strict=True)]
    log = list(dict.fromkeys(l.strip() for l in proc.stderr.splitlines() if BUFFER_LINE.search(l)))
    return {"tests": rows, "wall_s": round(wall, 1), "loadavg_before": load0, "quiet_gate": quiet,
            "llama_bench_cpu_s": round(own, 1), "foreign_cpu_s": round(foreign, 1),
            "foreign_cpu_fraction": round(foreign_frac, 3),
            "clean": foreign_frac <= FOREIGN_MAX and min(probe_before + probe_after) >= PROBE_MIN,
            "busy_processes_after": others,
            "cpu_probe_gflops_before": probe_before, "cpu_probe_gflops_after": probe_after,
            "cpu_ticks_during": dict(zip(["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"], d, strict=True)),
            "log_excerpt": log[:40]}


def _tg(attempt: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in attempt["tests"] if t["n_gen"])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 22):
            h.update(b)
    return h.hexdigest()


_HEADERS_DONE: dict[str, int] = {}  # model -> complete size, header written this run


def measure_model(m: cpu_models.Model, variant: str, reps: int, clean: bool,
                  strict: bool = False) -> dict[str, Any] | None:
    GGUF_DIR.mkdir(parents=True, exist_ok=True)
    HEADER_DIR.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    header = HEADER_DIR / f"{m.name}.gguf"
    if m.name not in _HEADERS_DONE:
        _HEADERS_DONE[m.name] = m.write_header(header)
    full_size = _HEADERS_DONE[m.name]
    if variant == "real":
        path = cpu_models.real_path(m)
        t_write = 0.0
    else:
        path = GGUF_DIR / f"{m.name}.{variant}.gguf"
        t_write = time.time()
        if not (path.exists() and path.stat().st_size == full_size):
            tmp = path.with_suffix(".tmp")
            m.write_full(tmp, variant)
            tmp.rename(path)
        t_write = time.time() - t_write
    summary = cpu_models.tensor_summary(path)
    st = os.stat(path)
    dropped = drop_caches()
    t_read = preread(path)
    attempts = []
    discarded = []
    for _ in range(MAX_ATTEMPTS):
        try:
            a = run_bench(path, reps, strict)
        except NotQuiet as e:
            print(f"   skipped: {e}", flush=True)
            break
        if strict and not is_clean(a):
            discarded.append(a)
            print(f"   attempt discarded (foreign CPU {a['foreign_cpu_fraction']:.0%})", flush=True)
            continue
        attempts.append(a)
        tg = _tg(a)
        print(f"   attempt {len(attempts)} (waited {a['quiet_gate']['waited_s']}s, foreign CPU "
              f"{a['foreign_cpu_fraction']:.0%}): " + "  ".join(f"{t['test']} {t['avg_ts']:.2f}±{t['stddev_ts']:.2f} "
                                                        f"(median {t['median_ts']:.2f})" for t in a["tests"]),
              flush=True)
        if tg["stddev_ts"] <= CV_RETRY * tg["avg_ts"] and is_clean(a):
            break
    if not attempts:
        return None
    res = {
        "model": m.name, "variant": variant, "arch": summary["arch"], "file_type": m.file_type,
        "shaped_like": m.shaped_like, "source": m.source, "package": m.package or None,
        "file_bytes": st.st_size, "file_blocks_allocated_bytes": st.st_blocks * 512,
        "n_params": summary["n_params"], "n_tensors": summary["n_tensors"], "tensor_bytes": summary["tensor_bytes"],
        "tensor_bytes_by_type": summary["tensor_bytes_by_type"],
        "header_bytes": header.stat().st_size, "header_sha256": sha256(header),
        "file_sha256": sha256(path) if variant == "real" else None,
        "command": " ".join(bench_cmd(Path(f"<{path.name}>"), reps)),
        "page_cache_dropped": dropped, "preread_s": round(t_read, 1), "write_s": round(t_write, 1),
        "attempts": attempts,
        "discarded_attempts": discarded,
        "started_at": dt.datetime.fromtimestamp(t_start, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(time.time() - t_start, 1),
    }
    if clean and variant != "real":
        path.unlink()
    return summarize(res)


PROBE_MIN = 140.0  # GFLOPS: a CPU probe below this (normal here: 150-200) means something else was running


def is_clean(a: dict[str, Any]) -> bool:
    """Undisturbed: by the foreign-CPU accounting where the attempt has it, else (attempts measured before it
    existed) by the CPU probes before and after the run."""
    if a.get("clean") is not None:
        return bool(a["clean"])
    return min(a["cpu_probe_gflops_before"] + a["cpu_probe_gflops_after"]) >= PROBE_MIN


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """results per test from all attempts (of all passes): the clean attempt (else any) with the highest tg
    median gives avg/stddev (llama-bench's own numbers); median/max/min pool every sample of the clean
    attempts (of all attempts when none was clean)."""
    attempts = run["attempts"]
    clean = [a for a in attempts if is_clean(a)]
    pool = clean or attempts
    # a disturbance only ever slows llama-bench down, so the fastest attempt is the least disturbed one
    best = max(range(len(attempts)), key=lambda i: (is_clean(attempts[i]), _tg(attempts[i])["median_ts"]))
    results = {}
    for t in attempts[best]["tests"]:
        pooled = sorted(x for a in pool for u in a["tests"] if u["test"] == t["test"] for x in u["samples_ts"])
        results[t["test"]] = {
            "avg_ts": t["avg_ts"], "stddev_ts": t["stddev_ts"], "samples_ts": t["samples_ts"],
            "pooled_median_ts": round(statistics.median(pooled), 3), "pooled_max_ts": pooled[-1],
            "pooled_min_ts": pooled[0], "pooled_n_samples": len(pooled),
            "n_prompt": t["n_prompt"], "n_gen": t["n_gen"], "n_threads": t["n_threads"], "backends": t["backends"]}
    run["selected_attempt"] = best
    run["selected_attempt_clean"] = is_clean(attempts[best])
    run["n_attempts"] = len(attempts)
    run["n_clean_attempts"] = len(clean)
    run["pooled_over"] = "clean attempts" if clean else "all attempts (none was clean)"
    run["results"] = results
    return run


def settings() -> dict[str, Any]:
    return {"threads": THREADS, "n_prompt": N_PROMPT, "n_gen": N_GEN, "depth": 0, "batch": "default 2048",
            "ubatch": "default 512", "flash_attn": "default auto", "kv_cache": "default f16", "repack": "default on",
            "load_mode": "default auto (mmap)",
            "retry": f"llama-bench rerun (up to {MAX_ATTEMPTS} attempts per pass) while tg stddev > {CV_RETRY:.0%} "
                     "of avg or the attempt was not clean",
            "quiet_gate": f"before each llama-bench: wait (<= {QUIET_WAIT_S}s) until the machine is < {QUIET_BUSY:.0%} "
                          f"busy; an attempt is 'clean' when other processes used <= {FOREIGN_MAX:.0%} of the CPU time "
                          f"during it (from /proc/stat minus the child's rusage) and the CPU probes before and after "
                          f"read >= {PROBE_MIN:.0f} GFLOPS; attempts from before the accounting existed are judged by "
                          "the probes alone",
            "results": "avg_ts/stddev_ts/samples_ts: llama-bench's numbers of the clean attempt (any pass) with the "
                       "highest tg median (of any attempt when none was clean: disturbance only slows it down); "
                       "pooled_*: every sample of the clean attempts of every pass (of all attempts when none was "
                       "clean)"}


def _first_pass(d: dict[str, Any]) -> dict[str, Any]:
    """The pass record of a results file written before passes were recorded."""
    end = dt.datetime.strptime(d["measured_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    start = end - dt.timedelta(seconds=d.get("run_wall_s", 0))
    return {"pass": 0, "started_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "models": "all", "reverse": False,
            "memory_bandwidth": d.get("memory_bandwidth")}


def resummarize() -> None:
    """Recompute every run's results from its stored attempts (after a change of the selection rules)."""
    d = json.loads(RESULTS.read_text())
    reps = d.get("settings", {}).get("repetitions")
    d["settings"] = {**settings(), "repetitions": reps}
    if "passes" not in d:
        d["passes"] = [_first_pass(d)]
    for r in d["runs"]:
        for a in r["attempts"]:
            a.setdefault("pass", 0)
        summarize(r)
    RESULTS.write_text(json.dumps(d, indent=1) + "\n")
    print_table(d["runs"])


def print_table(runs: list[dict[str, Any]]) -> None:
    print(f"{'model':30s} {'variant':12s} {'GiB':>6s} {'tg64 avg±sd':>14s} {'median':>7s} {'max':>7s} "
          f"{'pp128 avg±sd':>15s} {'median':>7s} {'max':>7s}  clean/attempts")
    for r in runs:
        tg, pp = r["results"][f"tg{N_GEN}"], r["results"][f"pp{N_PROMPT}"]
        print(f"{r['model']:30s} {r['variant']:12s} {r['file_bytes'] / 2**30:6.2f} "
              f"{tg['avg_ts']:7.2f}±{tg['stddev_ts']:<6.2f} {tg['pooled_median_ts']:7.2f} {tg['pooled_max_ts']:7.2f} "
              f"{pp['avg_ts']:8.2f}±{pp['stddev_ts']:<6.2f} {pp['pooled_median_ts']:7.2f} {pp['pooled_max_ts']:7.2f}"
              f"  {r['n_clean_attempts']}/{r['n_attempts']}")


def markdown_table(d: dict[str, Any]) -> str:
    """The results table of CPU.md, from cpu_measured.json."""
    lines = ["| model | arch | type | source | file GiB | params B | tg64 t/s avg ± sd | tg64 median / max | "
             "pp128 t/s avg ± sd | pp128 median / max | clean / attempts |",
             "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in d["runs"]:
        tg, pp = r["results"][f"tg{N_GEN}"], r["results"][f"pp{N_PROMPT}"]
        src = "real (PyPI)" if r["variant"] == "real" else r["variant"]
        lines.append(f"| {r['model']} | {r['arch']} | {r['file_type']} | {src} | {r['file_bytes'] / 2**30:.2f} | "
                     f"{r['n_params'] / 1e9:.2f} | {tg['avg_ts']:.2f} ± {tg['stddev_ts']:.2f} | "
                     f"{tg['pooled_median_ts']:.2f} / {tg['pooled_max_ts']:.2f} | {pp['avg_ts']:.1f} ± "
                     f"{pp['stddev_ts']:.1f} | {pp['pooled_median_ts']:.1f} / {pp['pooled_max_ts']:.1f} | "
                     f"{r['n_clean_attempts']} / {r['n_attempts']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if "--resummarize" in argv:
        resummarize()
        return
    if "--table" in argv:
        print(markdown_table(json.loads(RESULTS.read_text())))
        return
    t0 = time.time()
    reps = 5
    clean = "--clean" in argv
    append = "--append" in argv
    reverse = "--reverse" in argv
    strict = "--strict" in argv
    do_bw = "--no-bandwidth" not in argv
    if "--reps" in argv:
        reps = int(argv[argv.index("--reps") + 1])
    only = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] not in ("--reps", "--wait"))]
    unknown = [a for a in only if a not in cpu_models.MODELS]
    if unknown:
        sys.exit(f"unknown models {unknown}; known: {list(cpu_models.MODELS)}")
    ensure_built()
    t_build = time.time() - t0
    old = json.loads(RESULTS.read_text()) if (only or append) and RESULTS.exists() else {}
    passes: list[dict[str, Any]] = []
    if append and old:
        passes = old.get("passes") or [_first_pass(old)]
    global QUIET_WAIT_S
    if "--wait" in argv:
        QUIET_WAIT_S = float(argv[argv.index("--wait") + 1])
    gate = wait_quiet() if do_bw else None
    if strict and gate and not gate["quiet"]:
        print("bandwidth: skipped, machine not quiet", flush=True)
        do_bw = False
    bw = bandwidth() if do_bw else old.get("memory_bandwidth")
    if do_bw:
        bw["quiet_gate"] = gate
        if append and old.get("memory_bandwidth"):
            bw["earlier"] = [old["memory_bandwidth"]] + old["memory_bandwidth"].get("earlier", [])
    if bw:
        print(f"bandwidth: sum 1t {bw['sum_1t_GBps']} GB/s, 2t {bw['sum_2t_GBps']} GB/s; "
              f"copy 1t {bw['copy_1t_GBps']}, 2t {bw['copy_2t_GBps']}", flush=True)
    runs = []
    pass_no = len(passes)
    passes.append({"pass": pass_no, "started_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "models": only or "all", "reverse": reverse, "memory_bandwidth": bw if do_bw else None})
    for m in (reversed(list(cpu_models.MODELS.values())) if reverse else cpu_models.MODELS.values()):
        if only and m.name not in only:
            continue
        for variant in m.variants:
            print(f"== {m.name} ({variant})", flush=True)
            res = measure_model(m, variant, reps, clean, strict)
            if res is None:
                continue
            runs.append(res)
            for a in runs[-1]["attempts"]:
                a["pass"] = pass_no
            r = runs[-1]["results"]
            print(f"   {m.name} {variant}: tg{N_GEN} {r[f'tg{N_GEN}']['avg_ts']:.2f} t/s, "
                  f"pp{N_PROMPT} {r[f'pp{N_PROMPT}']['avg_ts']:.2f} t/s  ({runs[-1]['wall_s']:.0f}s)", flush=True)
    if old:
        prev = {(r["model"], r["variant"]): r for r in old.get("runs", [])}
        if append:  # earlier passes' attempts are kept and pooled
            for r in runs:
                p = prev.get((r["model"], r["variant"]))
                if p:
                    r["attempts"] = [{"pass": 0, **a} for a in p["attempts"]] + r["attempts"]
                    r["discarded_attempts"] = p.get("discarded_attempts", []) + r["discarded_attempts"]
                    r["earlier_passes"] = [{k: p.get(k) for k in ("started_at", "wall_s", "write_s", "preread_s")}] + \
                        p.get("earlier_passes", [])
                    summarize(r)
        done = {(r["model"], r["variant"]) for r in runs}
        runs = [r for r in old.get("runs", []) if (r["model"], r["variant"]) not in done] + runs
    order = list(cpu_models.MODELS)
    runs.sort(key=lambda r: (order.index(r["model"]) if r["model"] in order else 999, r["variant"]))
    out = {
        "what": "llama-bench CPU decode (tg64) and prompt (pp128) speed on this machine, ground truth for fitcheck",
        "llama_cpp_commit": LLAMA_CPP_COMMIT,
        "llama_cpp_python_sdist": SDIST_VERSION,
        "build": {"cmake_flags": CMAKE_FLAGS, "target": "llama-bench", "jobs": 2,
                  "why_native": "GGML_NATIVE=ON (-march=native: AVX2/AVX-512 as this CPU has) because that is what "
                                "users' own builds use; the accuracy harness uses OFF only for portability"},
        "settings": {**settings(), "repetitions": reps},
        "machine": machine_info(),
        "memory_bandwidth": bw,
        "measured_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_wall_s": round(time.time() - t0, 1),
        "build_wall_s": round(t_build, 1),
        "passes": passes,
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}: {len(runs)} runs; total {time.time() - t0:.0f}s")
    print_table(runs)
    if "--no-compare" not in argv:  # fitcheck's prediction for the same runs, in the same run
        import compare_cpu

        compare_cpu.main()


if __name__ == "__main__":
    main(sys.argv[1:])
