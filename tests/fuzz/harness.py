"""A fuzz harness for fitcheck's own command-line path on hostile GGUF headers (tests and benchmarks/fuzz).

Seeds are small real-shaped headers (llama, qwen3moe, deepseek2 with MLA, lfm2, gemma3: the accuracy layouts
with fewer blocks and a 512-token vocabulary) held as a structure, so that a mutation can work on two levels:
- structured: a metadata value re-encoded with another GGUF type (NaN, inf, 1.7e308, strings with terminal
  escapes and newlines, arrays, huge and negative integers, booleans), keys dropped or renamed, tensor names
  broken (no dots, 5,000-digit block indices, control characters), dimensions, types and offsets overwritten,
  blocks removed;
- bytes: truncation, bit flips, and overwritten counts / lengths / types at the exact field positions the
  encoder recorded.
Each input is written to a file and run through `fitcheck.cli.run()` as a user would run it (its stdout,
stderr and exit code captured, hardware given on the command line). The verdict is one of `ok` (exit 0/1),
`rejected` (exit 3 with a one-line, safe message that is not an internal error) or `failure` (anything else:
an internal error, a bad exit code, an unsafe or multi-line message, output that is not one JSON object).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .encode import (  # noqa: F401 - the harness's vocabulary, re-exported for the tests
    ARRAY,
    BOOL,
    F32,
    F64,
    I32,
    I64,
    KV,
    SEEDS,
    STRING,
    TI,
    U32,
    U64,
    Encoded,
    Model,
    encode,
    seed,
)

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
ARGS = ["--vram", "24G", "--ram", "64G", "--ram-bandwidth", "60"]

# -- mutations ----------------------------------------------------------------------------------------------------

INTERESTING_INTS = [0, 1, 2, 3, 7, 8, 255, 256, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 10**7,
                    2**62, 2**63 - 1, 2**63, 2**64 - 1, -1, -2**31, -2**62, -2**63]
HOSTILE_STRINGS = ["", "\n", "line\nbreak", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\r\x1b[2K", "\x00nul",
                   "é\u202etxt", "A" * 300, "\x7f\x9b31m"]


def _hostile_value(rng: random.Random) -> tuple[int, Any]:
    choice = rng.randrange(12)
    if choice == 0:
        return F32, rng.choice([math.nan, math.inf, -math.inf])
    if choice == 1:
        return F64, rng.choice([math.nan, math.inf, -math.inf, 1.7e308, -1.7e308, 1e-300, 4096.0])
    if choice == 2:
        return STRING, rng.choice(HOSTILE_STRINGS + ["32", "4096"])
    if choice == 3:
        return ARRAY, (I32, [rng.choice(INTERESTING_INTS[:12]) for _ in range(rng.randrange(0, 40))])
    if choice == 4:
        return ARRAY, (STRING, [rng.choice(HOSTILE_STRINGS) for _ in range(rng.randrange(0, 5))])
    if choice == 5:
        return ARRAY, (F32, [rng.choice([math.nan, 1.5, 8.0]) for _ in range(rng.randrange(0, 20))])
    if choice == 6:
        return BOOL, rng.random() < 0.5
    if choice == 7:
        return I64, rng.choice(INTERESTING_INTS)
    if choice == 8:
        return U64, rng.choice([v for v in INTERESTING_INTS if v >= 0])
    if choice == 9:
        return I32, rng.choice([-1, -2**31, 0, 2**31 - 1])
    if choice == 10:
        return U32, rng.choice([0, 1, 2, 3, 2**31, 2**32 - 1, rng.randrange(1 << 32)])
    return rng.choice([13, 99, 2**31]), 0  # an unknown value type


def _hostile_name(rng: random.Random, name: str) -> str | bytes:
    choice = rng.randrange(9)
    if choice == 0:
        return name.replace(".", "")
    if choice == 1:
        return "blk." + "9" * rng.choice([10, 20, 5000]) + ".attn_norm.weight"
    if choice == 2:
        return name + rng.choice(HOSTILE_STRINGS)
    if choice == 3:
        return "blk."
    if choice == 4:
        return "blk.x.attn_norm.weight"
    if choice == 5:
        return name.encode() + b"\xff\xfe"
    if choice == 6:
        return "blk.-1." + name.split(".")[-1]
    if choice == 7:
        return "x" * rng.choice([63, 64, 70000])
    return rng.choice(HOSTILE_STRINGS) + name


def mutate_structure(model: Model, rng: random.Random) -> tuple[Model, str]:
    """One structured change to a copy of `model`, and what it was."""
    kvs = [KV(kv.key, kv.type_id, kv.value) for kv in model.kvs]
    tensors = [TI(t.name, list(t.dims), t.type_id, t.offset) for t in model.tensors]
    out = Model(kvs, tensors, model.version, model.alignment)
    arch_keys = [i for i, kv in enumerate(kvs) if isinstance(kv.key, str) and not kv.key.startswith("tokenizer")]
    op = rng.randrange(10)
    if op <= 2 and arch_keys:  # re-encode a value with another type
        i = rng.choice(arch_keys)
        kvs[i].type_id, kvs[i].value = _hostile_value(rng)
        return out, f"retype {kvs[i].key!r} -> type {kvs[i].type_id}"
    if op == 3 and kvs:
        i = rng.randrange(len(kvs))
        kvs.pop(i)
        return out, "drop a key"
    if op == 4 and kvs:
        i = rng.randrange(len(kvs))
        key = kvs[i].key if isinstance(kvs[i].key, str) else "k"
        kvs[i].key = rng.choice([key + "\n", key.replace(".", "\x1b[31m.", 1), "\x1b[2J" + key,
                                 "K" * rng.choice([100, 70000]), key.encode() + b"\xc3", key + "\u202e"])
        return out, "rename a key"
    if op == 5 and arch_keys:  # an integer key set to an extreme
        i = rng.choice(arch_keys)
        kvs[i].type_id, kvs[i].value = rng.choice([U32, U64, I32, I64]), rng.choice(INTERESTING_INTS)
        return out, f"extreme {kvs[i].key!r} = {kvs[i].value}"
    if op == 6 and tensors:
        t = rng.choice(tensors)
        t.name = _hostile_name(rng, t.name if isinstance(t.name, str) else "t")
        return out, "rename a tensor"
    if op == 7 and tensors:
        t = rng.choice(tensors)
        what = rng.randrange(5)
        if what == 0:
            t.dims[rng.randrange(len(t.dims))] = rng.choice(INTERESTING_INTS[:20] + [2**63 - 1])
        elif what == 1:
            t.dims = t.dims + [rng.choice([1, 2, 2**40])] * rng.randrange(1, 4)
        elif what == 2:
            t.type_id = rng.choice([3, 4, 5, 40, 41, 255, 2**31, rng.randrange(64)])
        elif what == 3:
            t.offset = rng.choice([1, 31, 2**63, 2**64 - 1, rng.randrange(1 << 40)])
        else:
            t.dims = []
        return out, "change a tensor"
    if op == 8 and tensors:  # drop one block's tensors, or duplicate a tensor
        if rng.random() < 0.5:
            blocks = sorted({str(t.name).split(".")[1] for t in tensors if str(t.name).startswith("blk.")})
            if blocks:
                gone = rng.choice(blocks)
                out.tensors = [t for t in tensors if not str(t.name).startswith(f"blk.{gone}.")]
                return out, f"drop block {gone}"
        tensors.append(TI(tensors[0].name, list(tensors[0].dims), tensors[0].type_id))
        return out, "duplicate a tensor"
    # the same hostile value on an array element (per-layer arrays, tokens)
    arrays = [kv for kv in kvs if kv.type_id == ARRAY]
    if arrays:
        kv = rng.choice(arrays)
        elem, items = kv.value
        if items and rng.random() < 0.5:
            items = list(items)
            items[rng.randrange(len(items))] = rng.choice([math.nan, 2**31, -1, "x\n", 1.7e308])
            kv.value = (F64 if any(isinstance(v, float) for v in items) else elem, items)
            if any(isinstance(v, str) for v in items):
                kv.value = (STRING, [str(v) for v in items])
        else:
            kv.type_id, kv.value = rng.choice([(STRING, "scalar"), (U32, 7), (ARRAY, (elem, items[:1]))])
        return out, f"array {kv.key!r}"
    return out, "none"


def mutate_bytes(enc: Encoded, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(enc.data)
    op = rng.randrange(5)
    if op == 0:
        cut = rng.randrange(len(data))
        return bytes(data[:cut]), f"truncate at {cut}"
    if op == 1:
        n = rng.choice([1, 1, 2, 4, 8])
        for _ in range(n):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data), f"flip {n} bits"
    if op in (2, 3) and enc.fields:  # a count, length, type, dim or offset overwritten
        kinds = [f for f in enc.fields if f[2] != "value"] if op == 2 else enc.fields
        offset, width, kind = rng.choice(kinds)
        value = rng.choice(INTERESTING_INTS + [rng.randrange(1 << (8 * width))])
        data[offset:offset + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        return bytes(data), f"overwrite {kind} at {offset} with {value}"
    i = rng.randrange(len(data))
    n = rng.randrange(1, 64)
    data[i:i + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(data), f"overwrite {n} bytes at {i}"


def generate(models: dict[str, Model], rng: random.Random) -> tuple[str, bytes, str]:
    """(seed name, input bytes, what was done): a structured change, a byte change, or both."""
    name = rng.choice(sorted(models))
    model = models[name]
    how = []
    mode = rng.randrange(3)
    if mode in (0, 2):
        for _ in range(rng.choice([1, 1, 2, 3])):
            model, what = mutate_structure(model, rng)
            how.append(what)
    enc = encode(model)
    data = enc.data
    if mode in (1, 2):
        data, what = mutate_bytes(enc, rng)
        how.append(what)
    return name, data, "; ".join(how)


# -- running one input --------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    verdict: str  # ok | rejected | failure
    code: int
    seconds: float
    message: str  # stderr's line (rejected), or what went wrong (failure)


def _safe_line(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


def run_cli(path: Path, extra: list[str]) -> tuple[int, str, str]:
    """fitcheck.cli.run() on `path` in this process: (exit code, stdout, stderr)."""
    from fitcheck import cli

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["fitcheck", str(path), *ARGS, *extra]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def judge(code: int, stdout: str, stderr: str, json_mode: bool) -> tuple[str, str]:
    lines = stderr.splitlines()
    if code == 3:
        if len(lines) != 1 or not lines[0].startswith("error: "):
            return "failure", f"exit 3 with {len(lines)} stderr lines: {stderr[:300]!r}"
        line = lines[0]
        if "internal error" in line:
            return "failure", line[:500]
        if not _safe_line(line) or len(line) > 1100:
            return "failure", f"unsafe message ({len(line)} chars): {line[:300]!r}"
        if stdout:
            return "failure", "stdout written on an error"
        return "rejected", line
    if code not in (0, 1):
        return "failure", f"exit {code}: {stderr[:300]!r}"
    if any(not (ch.isprintable() or ch == "\n") for ch in stdout):
        return "failure", "control characters on stdout"
    if json_mode:
        try:
            doc = json.loads(stdout)
        except ValueError:
            return "failure", "stdout is not one JSON document"
        if not isinstance(doc, dict) or doc.get("schema_version") != 1:
            return "failure", "stdout is not a schema v1 document"
    return "ok", ""


def run_one(data: bytes, workdir: Path, json_mode: bool) -> Outcome:
    path = workdir / "input.gguf"
    path.write_bytes(data)
    start = time.perf_counter()
    code, stdout, stderr = run_cli(path, ["--json"] if json_mode else [])
    seconds = time.perf_counter() - start
    verdict, message = judge(code, stdout, stderr, json_mode)
    return Outcome(verdict, code, seconds, message)


def traceback_of(data: bytes, workdir: Path, json_mode: bool) -> str:
    """The exception behind an internal error (the CLI prints only its line), for the report."""
    import traceback

    from fitcheck import cli

    path = workdir / "input.gguf"
    path.write_bytes(data)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli.app([str(path), *ARGS, *(["--json"] if json_mode else [])], standalone_mode=False)
    except Exception:
        return traceback.format_exc()
    return ""


def environment(cache_dir: Path) -> None:
    """What every run needs: a private cache, no colour, no debug tracebacks, no probing of this machine's GPUs."""
    os.environ["FITCHECK_CACHE_DIR"] = str(cache_dir)
    os.environ["NO_COLOR"] = "1"
    os.environ.pop("FITCHECK_DEBUG", None)


def _hardware() -> Any:
    from fitcheck.model import Gpu, Hardware, HardwareSource

    return Hardware(HardwareSource.OVERRIDE, (Gpu(0, "GPU", 24 << 30, 24 << 30, bandwidth_gbps=900.0),),
                    64 << 30, 64 << 30, ram_bandwidth_gbps=60.0)


def run_library(data: bytes, workdir: Path) -> Outcome:
    """The same input through the library path (read, estimate, plan, speed, both renderers) without the
    command line's parsing: faster, and stricter: an error's own text must already be safe, before the
    CLI's last guard."""
    from fitcheck.check import check_model
    from fitcheck.errors import FitcheckError
    from fitcheck.model import Settings
    from fitcheck.render.json import render_json
    from fitcheck.render.table import render_table
    from fitcheck.sources.gguf import load_local
    from fitcheck.sources.types import Model as SourceModel

    path = workdir / "input.gguf"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        spec = load_local(str(path))
        report = check_model(SourceModel(spec, ["-m", str(path)]), Settings(), _hardware())
        json.loads(render_json(report))
        table = render_table(report, 100, False)
    except FitcheckError as exc:
        text = f"{exc} {exc.hint or ''}"
        ok = _safe_line(text) and len(text) < 1100
        return Outcome("rejected" if ok else "failure", exc.exit_code, time.perf_counter() - start,
                       text if ok else f"unsafe message: {text[:300]!r}")
    seconds = time.perf_counter() - start
    if any(not (ch.isprintable() or ch == "\n") for ch in table):
        return Outcome("failure", 0, seconds, "control characters in the table")
    return Outcome("ok", 0, seconds, "")
