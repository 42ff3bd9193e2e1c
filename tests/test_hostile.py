"""Hostile and broken GGUF headers: the fuzz smoke (a fixed seed, ~1,000 inputs, a few seconds), structured
generation with hypothesis, the kept finds, and the CLI's messages (one safe line, exit 3, also with
FITCHECK_DEBUG=1). The long campaign is benchmarks/fuzz/campaign.py."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import harness

SMOKE_INPUTS = 1000
SMOKE_SEED = 15


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def models() -> dict[str, harness.Model]:
    return {name: harness.seed(name) for name in harness.SEEDS}


def test_every_seed_is_a_valid_model(models, workdir):
    for name, model in models.items():
        outcome = harness.run_library(harness.encode(model).data, workdir)
        assert outcome.verdict == "ok", (name, outcome.message)


def test_fuzz_smoke(models, workdir):
    """A fixed-seed run of the byte and structure mutations: no exception outside fitcheck's error tree, no
    unsafe message, no input over the time limit."""
    verdicts: dict[str, int] = {}
    failures = []
    for i in range(SMOKE_INPUTS):
        name, data, how = harness.generate(models, random.Random(f"{SMOKE_SEED}:{i}"))
        try:
            outcome = harness.run_library(data, workdir)
        except Exception as exc:  # the finding: anything that is not a FitcheckError
            failures.append(f"input {i} ({name}: {how}): {type(exc).__name__}: {exc}"[:300])
            continue
        verdicts[outcome.verdict] = verdicts.get(outcome.verdict, 0) + 1
        if outcome.verdict == "failure" or outcome.seconds > 2.0:
            failures.append(f"input {i} ({name}: {how}): {outcome.message} in {outcome.seconds:.2f} s")
    assert not failures, "\n".join(failures[:20])
    # the mutations reach both sides: plans from slightly-off headers and refusals of broken ones
    assert verdicts.get("ok", 0) > SMOKE_INPUTS // 20 and verdicts.get("rejected", 0) > SMOKE_INPUTS // 2


def test_fuzz_smoke_through_the_cli(models, workdir):
    for i in range(60):
        name, data, how = harness.generate(models, random.Random(f"cli:{i}"))
        outcome = harness.run_one(data, workdir, json_mode=i % 2 == 0)
        assert outcome.verdict != "failure", (i, name, how, outcome.message)


_HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-2**63, max_value=2**64 - 1).map(lambda v: (harness.I64 if v < 0 else harness.U64, v)),
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda v: (harness.U32, v)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: (harness.F64, v)),
    st.text(max_size=40).map(lambda v: (harness.STRING, v)),
    st.booleans().map(lambda v: (harness.BOOL, v)),
    st.lists(st.integers(min_value=-2**31, max_value=2**31 - 1), max_size=20).map(
        lambda v: (harness.ARRAY, (harness.I32, v))),
    st.lists(st.text(max_size=8), max_size=5).map(lambda v: (harness.ARRAY, (harness.STRING, v))),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed_name=st.sampled_from(sorted(harness.SEEDS)), picks=st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**6), _HOSTILE_VALUES), min_size=1, max_size=3))
def test_structured_values(models, workdir, seed_name, picks):
    """Any value of any GGUF type on any of a seed's keys: a plan or a named refusal, nothing else."""
    model = models[seed_name]
    kvs = [harness.KV(kv.key, kv.type_id, kv.value) for kv in model.kvs]
    for index, (type_id, value) in picks:
        kvs[index % len(kvs)] = harness.KV(kvs[index % len(kvs)].key, type_id, value)
    data = harness.encode(harness.Model(kvs, model.tensors)).data
    outcome = harness.run_library(data, workdir)
    assert outcome.verdict != "failure", outcome.message


@pytest.mark.parametrize("path", sorted(harness.REGRESSIONS.glob("*.gguf")), ids=lambda p: p.stem)
def test_kept_finds(path, workdir):
    """Inputs that once made fitcheck fail (tests/fuzz/regressions, from the campaign and its first runs)."""
    data = path.read_bytes()
    library = harness.run_library(data, workdir)
    assert library.verdict != "failure", library.message
    cli = harness.run_one(data, workdir, json_mode=False)
    assert cli.verdict != "failure", cli.message


def test_regressions_are_kept():
    assert len(list(harness.REGRESSIONS.glob("*.gguf"))) >= 10


# -- the messages ----------------------------------------------------------------------------------------------

def _with_key(key: str | bytes, type_id: int = harness.U32, value: object = 7) -> bytes:
    model = harness.seed("llama")
    model.kvs.append(harness.KV(key, type_id, value))
    return harness.encode(model).data


@pytest.mark.parametrize(("key", "type_id"), [
    ("evil\nkey", 99),  # an unknown value type: the reader names the key
    ("\x1b[31mred\x1b[0m\x1b]0;pwned\x07", 99),
    ("K" * (8 << 20), harness.U32),  # an 8 MiB key name
])
def test_key_names_in_errors_are_one_short_safe_line(workdir, key, type_id):
    code, stdout, stderr = harness.run_cli(_write(workdir, _with_key(key, type_id)), [])
    assert code == 3 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("error: ")
    assert "\x1b" not in stderr and "\x07" not in stderr and len(stderr) < 600
    assert "internal error" not in stderr


def test_escaped_key_is_still_recognisable(workdir):
    _, _, stderr = harness.run_cli(_write(workdir, _with_key("evil\nkey\x1b[2J", 99)), [])
    assert "evil\\x0akey\\x1b[2J: unknown value type 99" in stderr


def test_long_untrusted_text_is_cut_with_an_ellipsis(workdir):
    _, _, stderr = harness.run_cli(_write(workdir, _with_key("k" * 5000, 99)), [])
    assert "k" * 79 + "…" in stderr and "k" * 81 not in stderr


def test_model_name_is_escaped_in_the_table(workdir):
    model = harness.seed("llama")
    model.kvs = [kv for kv in model.kvs if kv.key != "general.name"]
    model.kvs.append(harness.KV("general.name", harness.STRING, "\x1b[2J\x1b[31mcleared\nscreen"))
    code, stdout, _ = harness.run_cli(_write(workdir, harness.encode(model).data), [])
    assert code in (0, 1) and "\x1b" not in stdout and "\\x1b[2J" in stdout


def _write(workdir: Path, data: bytes) -> Path:
    path = workdir / "case.gguf"
    path.write_bytes(data)
    return path


def test_debug_keeps_the_exit_code_and_adds_the_traceback(workdir):
    path = _write(workdir, _with_key("bad", 99))
    env = {**os.environ, "FITCHECK_DEBUG": "1"}
    proc = subprocess.run([sys.executable, "-m", "fitcheck", str(path), *harness.ARGS], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr and proc.stderr.rstrip().splitlines()[-1].startswith("error: ")


def test_nan_in_an_array_of_per_layer_heads(workdir):
    model = harness.seed("lfm2")
    for kv in model.kvs:
        if kv.key == "lfm2.attention.head_count_kv":
            kv.value = (harness.F32, [0.0] * 15 + [math.nan])
    code, _, stderr = harness.run_cli(_write(workdir, harness.encode(model).data), [])
    assert code == 3 and r"head_count_kv[0] is a float (0.0), expected an integer" in stderr
