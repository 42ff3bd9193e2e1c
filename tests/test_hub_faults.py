"""Remote sources against a misbehaving server (tests/fault_server.py): each fault ends in bounded time with
one line on stderr and exit 3; the token is never printed (FITCHECK_DEBUG=1 included); a run writes nowhere
but fitcheck's cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, free_port
from tests.fuzz import harness

TOKEN = "hf_faulttoken0123456789secret"


@pytest.fixture(scope="module")
def gguf() -> bytes:
    return harness.encode(harness.seed("llama")).data


@pytest.fixture()
def server(gguf):
    with FaultServer(gguf) as s:
        yield s


@pytest.fixture(autouse=True)
def _fast_network(monkeypatch, tmp_path):
    monkeypatch.setenv("FITCHECK_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("FITCHECK_HTTP_RETRIES", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FITCHECK_DEBUG", raising=False)


def _run(ref: str) -> tuple[int, str, str, float]:
    import contextlib
    import io

    from fitcheck import cli

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["fitcheck", ref, *harness.ARGS]
    start = time.monotonic()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.run()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue(), time.monotonic() - start


def _one_error_line(code: int, stdout: str, stderr: str) -> str:
    assert code == 3, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "internal error" not in stderr and TOKEN not in stderr
    return lines[0]


def test_connection_refused():
    code, out, err, seconds = _run(f"http://127.0.0.1:{free_port()}/model.gguf")
    line = _one_error_line(code, out, err)
    assert "network error (ConnectError)" in line and seconds < 10


def test_reset_mid_body(server):
    code, out, err, seconds = _run(server.url("reset"))
    line = _one_error_line(code, out, err)
    assert ("network error" in line or "closed the connection mid-answer" in line) and seconds < 10


def test_200_with_a_short_body(server):
    code, out, err, seconds = _run(server.url("short"))
    line = _one_error_line(code, out, err)
    assert "closed the connection mid-answer" in line and seconds < 10


def test_range_answered_with_the_whole_file(server):
    """A server that ignores Range sends 8 GiB: the header is read from the start of the stream, the rest is
    never downloaded."""
    code, _, err, seconds = _run(server.url("whole"))
    assert code in (0, 1), err
    assert server.body_bytes < 64 << 20 and seconds < 20


def test_redirect_loop(server):
    code, out, err, seconds = _run(server.url("loop"))
    line = _one_error_line(code, out, err)
    assert "too many redirects" in line and seconds < 10


def test_429_with_an_hour_of_retry_after(server):
    code, out, err, seconds = _run(server.url("ratelimit"))
    line = _one_error_line(code, out, err)
    assert "rate limited by the server (HTTP 429)" in line and "asks to wait 3600 s" in line
    assert seconds < 5  # not an hour


def test_a_dripping_body_hits_the_deadline(server):
    code, out, err, seconds = _run(server.url("drip"))
    line = _one_error_line(code, out, err)
    assert "too slowly (not complete after 3 s)" in line
    assert seconds < 15  # 3 s per attempt, two attempts, the backoff


def test_deadline_is_a_setting(server, monkeypatch):
    monkeypatch.setenv("FITCHECK_HTTP_DEADLINE", "1.5")
    code, out, err, seconds = _run(server.url("drip"))
    assert "not complete after 1.5 s" in _one_error_line(code, out, err) and seconds < 8


def test_hub_api_drip_is_bounded_and_the_token_stays_secret(server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.port}/drip")
    code, out, err, seconds = _run("hf:org/model")
    line = _one_error_line(code, out, err)
    assert "too slowly" in line and seconds < 15
    assert any(h.get("authorization") == f"Bearer {TOKEN}" for _, h in server.requests)  # it was sent...


def _subprocess(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fitcheck", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FITCHECK_", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), HF_HOME=str(tmp_path / "hf"),
               FITCHECK_CACHE_DIR=str(tmp_path / "cache"), HF_TOKEN=TOKEN, FITCHECK_HTTP_TIMEOUT="1",
               FITCHECK_HTTP_RETRIES="0", FITCHECK_DEBUG="1", NO_COLOR="1")
    for d in ("home", "cwd"):
        (tmp_path / d).mkdir(exist_ok=True)
    return env


@pytest.mark.parametrize("fault", ["ratelimit", "drip", "reset"])
def test_debug_traceback_keeps_exit_3_and_hides_the_token(server, tmp_path, fault):
    env = _isolated_env(tmp_path)
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{server.port}/{fault}"
    proc = _subprocess(["hf:org/model", *harness.ARGS], env, tmp_path / "cwd")
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" in proc.stderr and proc.stderr.rstrip().splitlines()[-1].startswith("error: ")
    assert TOKEN not in proc.stderr and TOKEN not in proc.stdout
    assert any(TOKEN in h.get("authorization", "") for _, h in server.requests)


def test_writes_nowhere_but_the_cache(server, tmp_path):
    env = _isolated_env(tmp_path)
    del env["FITCHECK_DEBUG"]
    before = {p for p in tmp_path.rglob("*")}
    proc = _subprocess([server.url("ok"), *harness.ARGS], env, tmp_path / "cwd")
    assert proc.returncode in (0, 1), proc.stderr
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert written, "the header should have been cached"
    outside = [p for p in written if not p.is_relative_to(tmp_path / "cache")]
    assert not outside, outside


# -- the streamed read of a large header (its second request) ------------------------------------------------

@pytest.fixture(scope="module")
def big_gguf(tmp_path_factory) -> bytes:
    from tests import gguf_builder as synth
    from tests.fake_hub import qwen7b_bpe_layout

    meta, tensors = qwen7b_bpe_layout("Qwen2.5 7B")
    path = tmp_path_factory.mktemp("big") / "big.gguf"
    synth.write_header_only(path, "qwen2", meta, tensors)
    return path.read_bytes()[:8 << 20]


@pytest.fixture()
def big_server(big_gguf):
    with FaultServer(big_gguf) as s:
        yield s


def test_a_large_header_is_two_streamed_reads(big_server):
    """The first 2 MiB, then (sent before those are all in) the scan's estimate of the rest and a margin."""
    code, out, err, _ = _run(big_server.url("ok"))
    assert code in (0, 1) and out and err == "", err
    ranges = [h.get("range") for _, h in big_server.requests]
    assert len(ranges) == 2 and ranges[0] == "bytes=0-2097151" and ranges[1].startswith("bytes=2097152-"), ranges


@pytest.mark.parametrize("fault", ["late-reset", "late-short", "late-drip"])
def test_a_streamed_read_that_fails_is_one_line(big_server, fault):
    code, out, err, seconds = _run(big_server.url(fault))
    line = _one_error_line(code, out, err)
    assert ("network error" in line or "closed the connection mid-answer" in line or "deadline" in line
            or "too slow" in line or "timed out" in line), line
    assert seconds < 15
