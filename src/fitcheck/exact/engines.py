"""Which llama.cpp can answer, and how it is asked.

In order of preference, each found without running anything:
1. the `llama_cpp` Python module (`pip install 'fitcheck[exact]'`): run in a child interpreter
   (exact/worker.py), so a llama.cpp abort or hang cannot take fitcheck down;
2. `llama-fit-params` in $FITCHECK_LLAMA_CPP (a build's bin/ folder, or the binary itself), else on PATH:
   `--fit-print on -v` runs the same memory-fit pass and logs the figures.
FITCHECK_EXACT_ENGINE=module|binary picks one.
Both load the model with no_alloc (llama.cpp simulates every allocation, reads no weight and needs no free
memory, as its own --fit does) and without CPU weight repacking (-nr / use_extra_bufts=false), so the model
figure is the tensor bytes. Every run is bounded by FITCHECK_EXACT_TIMEOUT seconds (default 120).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..model import Report

BINARY = "llama-fit-params"
DEFAULT_TIMEOUT_S = 120.0
NOT_AVAILABLE = "--exact needs llama.cpp"
NOT_AVAILABLE_HINT = "pip install 'fitcheck[exact]' or put llama-fit-params on PATH"


@dataclass(frozen=True)
class Engine:
    kind: str  # "module" | "binary"
    path: str | None = None  # the binary


@dataclass(frozen=True)
class Answer:
    log: str  # llama.cpp's log of the fit pass
    version: str  # the build that answered
    model_bytes: int | None  # llama_model_size(): the tensor bytes, exact (module only)
    args: tuple[str, ...]
    notes: tuple[str, ...] = ()
    incomparable: tuple[str, ...] = ()  # parts sized under other settings than fitcheck's


def find_engine() -> Engine | None:
    """The first engine available; FITCHECK_EXACT_ENGINE=module or =binary asks for that one only."""
    wanted = os.environ.get("FITCHECK_EXACT_ENGINE", "").strip().lower()
    if wanted != "binary" and importlib.util.find_spec("llama_cpp") is not None:
        return Engine("module")
    binary = find_binary() if wanted != "module" else None
    return Engine("binary", binary) if binary else None


def find_binary() -> str | None:
    pointed = os.environ.get("FITCHECK_LLAMA_CPP")
    if pointed:
        p = Path(pointed)
        candidate = p / BINARY if p.is_dir() else p
        if p.is_dir() and not candidate.exists():
            candidate = p / "bin" / BINARY
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(BINARY)


def timeout_s() -> float:
    text = os.environ.get("FITCHECK_EXACT_TIMEOUT")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def cli_args(report: Report) -> tuple[list[str], list[str]]:
    """fitcheck's settings and plan as llama.cpp options (the plan's -ngl and --n-cpu-moe: like for like),
    and notes on what this route cannot pass."""
    s, needs, plan = report.settings, report.needs, report.plan
    args = ["-c", str(needs.ctx), "-b", str(s.batch), "-ub", str(s.ubatch), "-np", str(s.parallel),
            "-ctk", s.cache_type_k, "-ctv", s.cache_type_v, "-fa", str(s.flash_attn), "-ngl", str(plan.gpu_layers)]
    notes: list[str] = []
    if s.swa_full:
        args.append("--swa-full")
    if plan.n_cpu_moe:
        args += ["--n-cpu-moe", str(plan.n_cpu_moe)]
    for pattern, device in s.tensor_overrides:
        args += ["-ot", f"{pattern}={device}"]
    if s.tensor_split:
        args += ["-ts", ",".join(f"{x:g}" for x in s.tensor_split)]
    if s.split_mode != "layer":
        args += ["-sm", s.split_mode]
    if s.main_gpu:
        args += ["-mg", str(s.main_gpu)]
    if s.no_kv_offload:
        args.append("-nkvo")
    if s.devices is not None:
        args += ["-dev", ",".join(s.devices) or "none"]
    if s.kv_unified and s.parallel > 1:
        notes.append("llama-fit-params has no --kv-unified: llama.cpp answered for one KV stream per sequence")
    if s.embeddings:
        notes.append("llama-fit-params has no --embedding: llama.cpp's output buffer is without embeddings")
    return args, notes


def server_outputs(report: Report) -> tuple[int, int] | None:
    """(n_outputs_max, n_outputs_max_per_seq) as llama-server sets them (server-context.cpp server_output_limits:
    n_parallel rows, one per sequence; n_batch with embeddings), or None where fitcheck models a build before
    that limit (every micro-batch token gets a logits row: the C API default, n_outputs_max = 0)."""
    from ..llama_build import behaviour

    s = report.settings
    if not behaviour(s.llama_cpp_build).n_outputs_max:
        return None
    if s.embeddings:
        return s.batch, 1
    return max(1, min(s.batch, s.parallel)), 1


def run_binary(binary: str, model_path: Path, report: Report) -> Answer:
    args, notes = cli_args(report)
    incomparable: tuple[str, ...] = ()
    if server_outputs(report) is not None:
        incomparable = ("compute_bytes",)
        notes.append("llama-fit-params reserves a logits row for every token of a micro-batch (common.h: "
                     "n_outputs_max = 0, i.e. n_batch) where llama-server reserves one per sequence "
                     "(server_output_limits): its compute buffer is larger by about 4 × n_vocab × n_ubatch bytes; "
                     "the llama_cpp module (fitcheck[exact]) is asked as llama-server would be")
    version = _binary_version(binary)
    cmd = [binary, "-m", str(model_path), *args, "-nr", "--fit-print", "on", "-v"]
    log_path = model_path.parent / "llama.log"  # a verbose log can be long: to a file in the temporary folder
    _run(cmd, log_path, "llama-fit-params")
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return Answer(text, version, None, tuple(args), tuple(notes), incomparable)


def _binary_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=min(30.0, timeout_s()),
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "llama-fit-params (version unknown)"
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith("version:"):  # "version: 0.5.0-dev (build 1, commit 0c1e570)"
            return f"llama-fit-params {line.split(':', 1)[1].strip()}"
    return "llama-fit-params (version unknown)"


def run_module(model_path: Path, report: Report) -> Answer:
    args, _ = cli_args(report)
    s, needs, plan = report.settings, report.needs, report.plan
    request = {"model": str(model_path), "n_ctx": needs.ctx, "n_batch": s.batch, "n_ubatch": s.ubatch,
               "n_seq_max": s.parallel, "kv_unified": s.kv_unified, "type_k": s.cache_type_k,
               "type_v": s.cache_type_v, "flash_attn": str(s.flash_attn), "swa_full": s.swa_full,
               "n_gpu_layers": plan.gpu_layers, "embeddings": bool(s.embeddings),
               "offload_kqv": not s.no_kv_offload, "main_gpu": s.main_gpu, "n_outputs": server_outputs(report)}
    notes = []
    if plan.n_cpu_moe or s.tensor_overrides:
        notes.append("the llama_cpp module takes no tensor overrides (--n-cpu-moe, -ot): on a GPU build "
                     "llama.cpp answered with the experts where -ngl puts them")
    out_path = model_path.parent / "answer.json"
    cmd = [sys.executable, "-m", "fitcheck.exact.worker", json.dumps(request), str(out_path)]
    _run(cmd, model_path.parent / "worker.log", "llama_cpp")
    try:
        answer = json.loads(out_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SourceError(f"--exact: the llama_cpp module gave no answer ({exc})") from None
    if answer.get("error"):
        raise SourceError(f"--exact: llama.cpp refused the model: {answer['error']}",
                          hint=_why(answer.get("log", "")))
    return Answer(answer["log"], answer["version"], answer.get("model_bytes"), tuple(args), tuple(notes))


def _run(cmd: list[str], log_path: Path, what: str) -> None:
    """Run `cmd` with its output to `log_path`, within the time limit (the child is killed past it)."""
    limit = timeout_s()
    try:
        with open(log_path, "wb") as log:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError(f"--exact: {what} did not answer within {limit:g} s",
                          hint="set FITCHECK_EXACT_TIMEOUT=SECONDS to wait longer") from None
    except OSError as exc:
        raise SourceError(f"--exact: cannot run {what} ({exc.strerror or exc})") from None
    if done.returncode != 0:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        raise SourceError(f"--exact: {what} failed (exit {done.returncode})", hint=_why(text))


def _why(log_text: str) -> str | None:
    from .logread import first_error

    line = first_error(log_text)
    return f"llama.cpp said: {line}" if line else None
