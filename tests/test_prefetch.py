"""The command line's remote reference is read on a thread started before the rest of fitcheck is imported
(sources/prefetch.py): the same answer, the same errors and exit codes as a read in the main thread, and a run
that ends early never waits for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fitcheck.errors import HubError
from fitcheck.sources import prefetch
from tests.fake_hub import FakeHub, build_files, populate

HW = ("--cpu-only", "--ram", "64G", "--ram-bandwidth", "50")  # no RAM measurement: runs compare byte for byte


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    with FakeHub() as h:
        populate(h, build_files(tmp_path_factory.mktemp("prefetch")))
        yield h


def _env(hub: FakeHub, cache: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    base.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(cache / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
                FITCHECK_CACHE_DIR=str(cache / "fitcheck"), FITCHECK_HTTP_RETRIES="0", NO_COLOR="1")
    return base


def _run(hub: FakeHub, cache: Path, entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`entry` "module": `python -m fitcheck` (prefetched); "cli": cli.run() itself (no prefetch)."""
    cmd = [sys.executable, "-m", "fitcheck"] if entry == "module" else \
        [sys.executable, "-c", "import sys; from fitcheck.cli import run; sys.argv[0] = 'fitcheck'; run()"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=_env(hub, cache), timeout=60)


@pytest.mark.parametrize("ref", ["hf:org/Tiny-GGUF:Q4_K_M", "hf:org/Tiny-GGUF"])
def test_prefetched_answer_is_the_main_threads(hub, tmp_path, ref):
    runs = {}
    for entry in ("module", "cli"):
        hub.reset_counters()
        out = _run(hub, tmp_path / entry, entry, ref, *HW, "--json")
        assert out.returncode == 0, out.stderr
        runs[entry] = (json.loads(out.stdout), sorted((r.method, r.path, r.range) for r in hub.requests))
    assert runs["module"] == runs["cli"]  # same document, same requests


def test_prefetched_error_is_the_same_line_and_code(hub, tmp_path):
    lines = {}
    for entry in ("module", "cli"):
        out = _run(hub, tmp_path / entry, entry, "hf:org/No-Such-Repo:Q4_K_M", *HW)
        assert out.returncode == 3 and out.stdout == ""
        lines[entry] = out.stderr
    assert lines["module"] == lines["cli"] and lines["module"].startswith("error: ")
    assert "Traceback" not in lines["module"]


def test_usage_error_does_not_wait_for_the_prefetch(hub, tmp_path):
    hub.delay["/resolve/"] = 20.0  # the header read would take 20 s
    try:
        start = time.monotonic()
        out = _run(hub, tmp_path, "module", "hf:org/Tiny-GGUF:Q4_K_M", *HW, "-ctk", "bogus")
        seconds = time.monotonic() - start
    finally:
        hub.delay.clear()
    assert out.returncode == 2 and "cache types must be one of" in out.stderr
    assert seconds < 10


def test_exact_runs_and_subcommands_are_not_prefetched(monkeypatch):
    started: list[str] = []
    monkeypatch.setattr(prefetch, "start", lambda ref: started.append(ref))
    for argv in (["hf:o/r", "--exact"], ["search", "hf:o/r"], ["hf:o/r", "--help"], ["a.gguf"],
                 ["hf:o/r:Q4_K_M", "-md", "hf:o/d:Q8_0"], ["--", "llama-server", "-hf", "o/r"]):
        prefetch.start_from_argv(argv, ("scan", "search"))
    assert started == []


def test_take_hands_the_answer_over_once(hub, monkeypatch, tmp_path):
    for key, value in _env(hub, tmp_path).items():
        monkeypatch.setenv(key, value)
    ref = "hf:org/Tiny-GGUF:Q8_0"
    pending = prefetch.start(ref)
    pending.ready.wait(30)
    assert prefetch.take("hf:org/Other-GGUF:Q8_0") is None  # another reference is read in the main thread
    got = prefetch.take(ref)
    assert got is pending and prefetch.take(ref) is None
    model = got.result(None)
    assert model.model_arg == ["-hf", "org/Tiny-GGUF:Q8_0"]


def test_take_raises_what_the_thread_raised(hub, monkeypatch, tmp_path):
    for key, value in _env(hub, tmp_path).items():
        monkeypatch.setenv(key, value)
    pending = prefetch.start("hf:org/Tiny-GGUF:Q3_K_XL")  # no such quant in the repo
    taken = prefetch.take("hf:org/Tiny-GGUF:Q3_K_XL")
    assert taken is pending
    with pytest.raises(HubError, match="Q3_K_XL"):
        taken.result(None)
