"""--llama-cpp BUILD: parsing, the table of rules that changed across builds, and the llama-server on PATH."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from fitcheck import llama_build
from fitcheck.errors import UsageError
from fitcheck.estimate import estimate
from fitcheck.model import Settings
from fitcheck.probe.llama_build import detect
from tests.test_cli import fitcheck


@pytest.mark.parametrize(("text", "build"), [("b6000", 6000), ("6000", 6000), ("B9460", 9460), (" latest ", None)])
def test_builds_parse(text, build):
    assert llama_build.parse_build(text) == build


@pytest.mark.parametrize("text", ["b", "v6000", "6000.1", "-3", "b0", "b12345678", "newest"])
def test_bad_builds_are_refused(text):
    with pytest.raises(UsageError, match="--llama-cpp"):
        llama_build.parse_build(text)


def test_every_rule_names_its_build_and_source():
    rules = llama_build.rules()
    assert {r.rule for r in rules} >= {"n_outputs_max", "kq_mask_f16"}
    for r in rules:
        assert r.build > 0 and r.pr > 0 and r.source.startswith("https://github.com/ggml-org/llama.cpp/pull/")
        assert r.before and r.since


def test_behaviour_changes_at_the_listed_build():
    assert llama_build.behaviour(None) == llama_build.LATEST
    assert llama_build.behaviour(9460).n_outputs_max and not llama_build.behaviour(9459).n_outputs_max
    assert llama_build.behaviour(9410).kq_mask_f16 and not llama_build.behaviour(9409).kq_mask_f16


def test_old_builds_keep_an_f32_mask_with_flash_attention(llama8b):
    new = estimate(llama8b, Settings(ctx=32768, flash_attn="on", consumer="library"))
    old = estimate(llama8b, Settings(ctx=32768, flash_attn="on", consumer="library", llama_cpp_build=9409))
    # one buffer: the f32 mask input is freed once cast, but the cast happens while it is alive
    assert old.layer_compute_bytes > new.layer_compute_bytes
    cuda = Settings(ctx=32768, flash_attn="on", consumer="library", backend="cuda")
    new_host = estimate(llama8b, cuda).host_compute_bytes
    old_host = estimate(llama8b, replace(cuda, llama_cpp_build=9409)).host_compute_bytes
    assert old_host - new_host == 2 * 32768 * 512  # CUDA_Host holds the mask input: f32 instead of f16


def _fake_server(folder: Path, body: str) -> dict[str, str]:
    exe = folder / "llama-server"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_detects_the_build_on_path(tmp_path, monkeypatch):
    env = _fake_server(tmp_path, 'echo "version: 6123 (abcdef0)" >&2; echo "built with cc" >&2')
    monkeypatch.setenv("PATH", env["PATH"])
    assert detect() == (6123, str(tmp_path / "llama-server"))


@pytest.mark.parametrize("body", ["echo hello", "exit 3", "sleep 5"])
def test_an_unreadable_server_is_no_build(tmp_path, monkeypatch, body):
    monkeypatch.setenv("PATH", _fake_server(tmp_path, body)["PATH"])
    assert detect(timeout_s=0.5) is None


def test_the_answer_is_remembered_per_binary(tmp_path, monkeypatch):
    """A GPU build's --version starts its backends: asked once per binary, again when the binary changes."""
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", _fake_server(tmp_path, f'echo x >> {calls}; echo "version: 7000 (abc)" >&2')["PATH"])
    cache = tmp_path / "cache"
    assert detect(cache=cache) == detect(cache=cache) == (7000, str(tmp_path / "llama-server"))
    assert calls.read_text().count("x") == 1
    _fake_server(tmp_path, f'echo x >> {calls}; echo "version: 7100 (def)" >&2; true')  # rebuilt: new size
    assert detect(cache=cache) == (7100, str(tmp_path / "llama-server"))
    assert calls.read_text().count("x") == 2


def test_no_server_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect() is None


def test_cli_uses_the_detected_build_unless_told(llama8b_path, tmp_path):
    env = _fake_server(tmp_path, 'echo "version: 9000 (0123abc)" >&2')
    base = (llama8b_path, "--json", "--vram", "24G", "--ram", "64G", "-c", "8k")
    detected = json.loads(fitcheck(*base, env=env).stdout)["settings"]
    assert (detected["llama_cpp_build"], detected["llama_cpp_build_source"]) == ("b9000", "detected")
    assert detected["output_rows"] == 512 and detected["consumer"] == "llama-server"
    told = json.loads(fitcheck(*base, "--llama-cpp", "latest", env=env).stdout)["settings"]
    assert (told["llama_cpp_build"], told["llama_cpp_build_source"], told["output_rows"]) == ("latest", "default", 1)
    given = json.loads(fitcheck(*base, "--llama-cpp", "b9460", env=env).stdout)["settings"]
    assert (given["llama_cpp_build"], given["llama_cpp_build_source"], given["output_rows"]) == ("b9460", "given", 1)


def test_cli_refuses_a_bad_build(llama8b_path):
    r = fitcheck(llama8b_path, "--llama-cpp", "v1", "--vram", "24G", "--ram", "64G")
    assert r.returncode == 2 and r.stderr.startswith("error: --llama-cpp")
    assert "Traceback" not in r.stderr


def test_table_says_which_build_and_consumer(llama8b_path):
    r = fitcheck(llama8b_path, "--vram", "24G", "--ram", "64G", "-c", "8k", "-np", "4", "--llama-cpp", "b9500")
    assert r.returncode == 0, r.stderr
    assert "llama-server b9500, 4 logits rows" in r.stdout
