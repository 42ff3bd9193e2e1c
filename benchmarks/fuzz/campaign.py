"""The fuzz campaign: N mutated headers through fitcheck's command-line path, with a time and memory budget each.

    nice python benchmarks/fuzz/campaign.py --inputs 100000 --seed 15 --workers 2

Input i is generated from `random.Random(f"{seed}:{i}")` over the seeds of tests/fuzz/harness.py, so any
input named in the report can be rebuilt alone (`--replay I`, which also prints its traceback, and writes it
with --save). A failure is an exception outside fitcheck's error tree (the CLI's "internal error"), an unsafe
or multi-line message, a bad exit code, an input over 2 s, or one that grew the process by more than
200 MiB (ru_maxrss, per worker; a data-segment limit turns a runaway allocation into a MemoryError). The
summary goes to benchmarks/fuzz/RESULTS.md; failing inputs to benchmarks/fuzz/finds/ (keep them as
tests/fuzz/regressions/ once fixed).
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import platform
import random
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fuzz import harness  # noqa: E402

HERE = Path(__file__).resolve().parent
TIME_LIMIT_S = 2.0
MEMORY_LIMIT = 200 << 20
HARD_TIMEOUT_S = 20

_models: dict[str, harness.Model] = {}
_workdir: Path = Path()
_baseline_rss = 0


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _init() -> None:
    global _models, _workdir, _baseline_rss
    _workdir = Path(tempfile.mkdtemp(prefix="fitcheck-fuzz-"))
    harness.environment(_workdir / "cache")
    _models = {name: harness.seed(name) for name in harness.SEEDS}
    for model in _models.values():  # warm every import and table before the baseline
        harness.run_one(harness.encode(model).data, _workdir, False)
        harness.run_one(harness.encode(model).data, _workdir, True)
    _baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    data_now = _vm_data()
    if data_now:
        limit = data_now + 4 * MEMORY_LIMIT
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)


def _vm_data() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


def make_input(seed: int, i: int) -> tuple[str, bytes, str]:
    return harness.generate(_models, random.Random(f"{seed}:{i}"))


def _one(args: tuple[int, int]) -> dict[str, Any]:
    seed, i = args
    name, data, how = make_input(seed, i)
    json_mode = i % 2 == 0
    signal.alarm(HARD_TIMEOUT_S)
    try:
        outcome = harness.run_one(data, _workdir, json_mode)
        verdict, code, seconds, message = outcome.verdict, outcome.code, outcome.seconds, outcome.message
    except _Timeout:
        verdict, code, seconds, message = "failure", -1, float(HARD_TIMEOUT_S), "timed out"
    except MemoryError:
        verdict, code, seconds, message = "failure", -1, 0.0, "MemoryError"
    finally:
        signal.alarm(0)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - _baseline_rss
    detail = ""
    if verdict == "failure" and message not in ("timed out", "MemoryError"):
        detail = harness.traceback_of(data, _workdir, json_mode).strip().splitlines()[-1:] or [message]
        detail = detail[0]
    if seconds > TIME_LIMIT_S and verdict != "failure":
        verdict, message, detail = "failure", f"slow: {seconds:.2f} s", "over the time limit"
    if grown > MEMORY_LIMIT and verdict != "failure":
        verdict, message, detail = "failure", f"memory: +{grown >> 20} MiB", "over the memory limit"
    return {"i": i, "seed_model": name, "how": how, "verdict": verdict, "code": code, "seconds": seconds,
            "message": message[:300], "detail": detail[:300], "grown": grown, "pid": os.getpid(),
            "rejection": message.split(": corrupt ", 1)[-1].split(" (hint", 1)[0][:60] if verdict == "rejected"
            else ""}


def campaign(n: int, seed: int, workers: int) -> dict[str, Any]:
    start = time.time()
    counts: collections.Counter[str] = collections.Counter()
    by_seed: collections.Counter[str] = collections.Counter()
    failures: dict[str, dict[str, Any]] = {}
    failure_counts: collections.Counter[str] = collections.Counter()
    slowest: dict[str, Any] = {"seconds": 0.0}
    max_grown: dict[int, int] = {}
    finds = HERE / "finds"
    with multiprocessing.Pool(workers, initializer=_init) as pool:
        for done, r in enumerate(pool.imap_unordered(_one, ((seed, i) for i in range(n)), chunksize=64), 1):
            counts[r["verdict"]] += 1
            by_seed[r["seed_model"]] += 1
            max_grown[r["pid"]] = max(max_grown.get(r["pid"], 0), r["grown"])
            if r["seconds"] > slowest["seconds"]:
                slowest = r
            if r["verdict"] == "failure":
                key = r["detail"] or r["message"]
                failure_counts[key] += 1
                if key not in failures:
                    failures[key] = r
                    finds.mkdir(exist_ok=True)
                    (finds / f"seed{seed}-input{r['i']}.gguf").write_bytes(make_input_static(seed, r["i"]))
                    print(f"FAILURE input {r['i']} ({r['seed_model']}: {r['how']}): {key}", flush=True)
            if done % 5000 == 0:
                rate = done / (time.time() - start)
                print(f"{done}/{n} {dict(counts)} slowest {slowest['seconds']:.3f}s ({rate:.0f}/s)", flush=True)
    return {"inputs": n, "seed": seed, "workers": workers, "elapsed_s": time.time() - start, "counts": dict(counts),
            "by_seed": dict(by_seed), "failures": [{**failures[k], "count": c} for k, c in failure_counts.items()],
            "slowest": slowest, "max_rss_growth_bytes": max(max_grown.values(), default=0)}


_static_models: dict[str, harness.Model] = {}


def make_input_static(seed: int, i: int) -> bytes:
    """Input i rebuilt in the parent process (the workers' seeds are the same structures)."""
    if not _static_models:
        _static_models.update({name: harness.seed(name) for name in harness.SEEDS})
    return harness.generate(_static_models, random.Random(f"{seed}:{i}"))[1]


def retime(summary: dict[str, Any], repeats: int = 3) -> dict[int, float]:
    """Inputs flagged only for their time, and the slowest, run again alone (the best of `repeats`): a
    campaign on a shared machine measures the neighbours too."""
    _init()
    signal.alarm(0)
    indices = {f["i"] for f in summary["failures"] if f["detail"] == "over the time limit"}
    indices.add(summary["slowest"]["i"])
    out = {}
    for i in sorted(indices):
        _, data, _ = make_input(summary["seed"], i)
        out[i] = min(harness.run_one(data, _workdir, i % 2 == 0).seconds for _ in range(repeats))
    return out


def write_results(summary: dict[str, Any], path: Path, command: str) -> None:
    c = summary["counts"]
    s = summary["slowest"]
    alone = {int(k): v for k, v in summary.get("retimed", {}).items()}
    lines = [
        "# Fuzz campaign results",
        "",
        f"Command: `{command}`  ",
        f"Seed: {summary['seed']} (input i is `random.Random(\"{summary['seed']}:i\")` over tests/fuzz/harness.py's "
        f"seeds; rebuild one with `--replay i`)  ",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, {summary['workers']} "
        f"workers, {summary['elapsed_s'] / 60:.1f} min ({summary['inputs'] / summary['elapsed_s']:.0f} inputs/s)",
        "",
        "| inputs | ok (exit 0/1) | rejected as bad input (exit 3) | failures |",
        "|---:|---:|---:|---:|",
        f"| {summary['inputs']:,} | {c.get('ok', 0):,} | {c.get('rejected', 0):,} | {c.get('failure', 0):,} |",
        "",
        "Inputs per seed: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["by_seed"].items())),
        "",
        f"Slowest input: #{s.get('i')} ({s.get('seed_model')}: {s.get('how')}) took {s['seconds']:.3f} s "
        f"(limit {TIME_LIMIT_S:g} s), verdict {s.get('verdict')}"
        + (f"; run again alone: {alone[s['i']]:.3f} s.  " if s.get("i") in alone else ".  "),
        f"Largest growth of a worker's peak RSS over its warmed-up baseline: "
        f"{summary['max_rss_growth_bytes'] / 2**20:.1f} MiB (limit {MEMORY_LIMIT >> 20} MiB).",
        "",
    ]
    if summary["failures"]:
        lines += ["## Failures", "", "| count | first input | seed | what | failure |", "|---:|---:|---|---|---|"]
        for f in summary["failures"]:
            again = f" (run again alone: {alone[f['i']]:.3f} s)" if f["i"] in alone else ""
            lines.append(f"| {f['count']} | {f['i']} | {f['seed_model']} | {f['how']} | "
                         f"{(f['message'] + ': ' if f['detail'] == 'over the time limit' else '')}"
                         f"{(f['detail'] or f['message']).replace('|', '/')}{again} |")
        timing_only = all(f["detail"] == "over the time limit" and alone.get(f["i"], TIME_LIMIT_S) < TIME_LIMIT_S
                          for f in summary["failures"])
        if timing_only:
            lines += ["", "Every input flagged was flagged only for its time, and ran well within the limit when "
                          "run again alone (`--retime`): the flag measured the machine's other load (the campaign "
                          "shares 2 cores), not fitcheck. No exception outside fitcheck's error tree, no unsafe "
                          "or multi-line message, no input over the memory limit."]
    else:
        lines += ["No failures: every input ended as a plan (exit 0/1) or as a one-line error naming what is "
                  "wrong with the file (exit 3), within the time and memory limits."]
    path.write_text("\n".join(lines) + "\n")


def replay(seed: int, i: int, save: Path | None) -> None:
    _init()
    name, data, how = make_input(seed, i)
    print(f"input {i}: {name}: {how} ({len(data)} bytes)")
    for json_mode in (False, True):
        outcome = harness.run_one(data, _workdir, json_mode)
        print(json.dumps(outcome.__dict__))
        if outcome.verdict == "failure":
            print(harness.traceback_of(data, _workdir, json_mode))
    if save:
        save.write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--replay", type=int, help="rebuild and run one input")
    parser.add_argument("--save", type=Path, help="with --replay: write the input here")
    parser.add_argument("--retime", action="store_true",
                        help="time the slow inputs of the last campaign (results.json) again alone, rewrite RESULTS.md")
    args = parser.parse_args()
    if args.replay is not None:
        replay(args.seed, args.replay, args.save)
        return
    if args.retime:
        summary = json.loads((HERE / "results.json").read_text())
        summary["retimed"] = retime(summary)
    else:
        summary = campaign(args.inputs, args.seed, args.workers)
    (HERE / "results.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    command = (f"nice python benchmarks/fuzz/campaign.py --inputs {summary['inputs']} --seed {summary['seed']} "
               f"--workers {summary['workers']}")
    write_results(summary, args.out, command)
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, default=str))
    for f in summary["failures"]:
        print(f"{f['count']:6d}  #{f['i']} {f['seed_model']}: {f['how']}: {f['detail'] or f['message']}")


if __name__ == "__main__":
    main()
