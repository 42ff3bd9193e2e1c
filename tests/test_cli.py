"""The command line end to end, as a subprocess: stdout is data, stderr one line, exit codes distinct."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "Llama-3-8B-Q4_K_M-header.gguf"
SCHEMA = {
    "model": ["ref", "name", "architecture", "file_type", "parameters", "size_bytes", "n_layer", "n_ctx_train",
              "n_embd", "n_head", "n_head_kv", "n_expert", "n_expert_used", "sliding_window"],
    "settings": ["ctx", "batch", "ubatch", "parallel", "kv_unified", "cache_type_k", "cache_type_v", "flash_attn",
                 "swa_full", "gpu_layers", "n_cpu_moe"],
    "memory": ["weights_bytes", "kv_cache_bytes", "recurrent_state_bytes", "compute_bytes", "output_bytes",
               "overhead_bytes", "total_bytes"],
    "hardware": ["source", "gpus", "ram", "unified_memory"],
    "plan": ["verdict", "gpu_layers", "n_cpu_moe", "max_ctx", "command", "devices"],
}


def fitcheck(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
    full_env.pop("FITCHECK_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "fitcheck", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=60)


def test_json_has_every_schema_key(llama8b_path):
    r = fitcheck(llama8b_path, "--json", "--vram", "24G", "--ram", "64G", "-c", "8k")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # nothing but JSON on stdout
    assert doc["schema_version"] == 1 and doc["fitcheck_version"]
    for section, keys in SCHEMA.items():
        assert set(keys) <= set(doc[section]), section
    assert doc["memory"]["kv_cache_bytes"] == 1_073_741_824
    assert doc["plan"]["verdict"] == "gpu" and doc["plan"]["gpu_layers"] == 33
    device = doc["plan"]["devices"][0]
    assert {"name", "weights_bytes", "kv_cache_bytes", "compute_bytes", "overhead_bytes", "total_bytes",
            "capacity_bytes"} <= set(device)
    assert all(isinstance(doc["memory"][k], int) for k in SCHEMA["memory"])


def test_json_q8_cache(llama8b_path):
    r = fitcheck(llama8b_path, "--json", "--cpu-only", "--ram", "64G", "-c", "8192", "-ctk", "q8_0", "-ctv", "q8_0",
                 "-fa", "on")
    assert json.loads(r.stdout)["memory"]["kv_cache_bytes"] == 570_425_344


def test_example_table(tmp_path):
    r = fitcheck(EXAMPLE, "--vram", "4G", "--ram", "32G")
    assert r.returncode == 0, r.stderr
    for text in ("Memory", "weights", "KV cache", "Placement", "verdict", "partial offload", "llama-server",
                 "GiB", "ctx 8,192"):
        assert text in r.stdout
    assert "\x1b[" not in r.stdout  # NO_COLOR


def test_narrow_terminal(llama8b_path):
    r = fitcheck(llama8b_path, "--vram", "24G", "--ram", "64G", env={"COLUMNS": "60"})
    # everything wraps at 60 columns except the command, which is never wrapped (issue 13 #1)
    assert r.returncode == 0 and max(len(line) for line in r.stdout.splitlines() if not line.startswith("run ")) <= 60


@pytest.mark.parametrize("require,code", [("any", 0), ("offload", 0), ("gpu", 1)])
def test_require_exit_codes(llama8b_path, require, code):
    r = fitcheck(llama8b_path, "--vram", "4G", "--ram", "64G", "--require", require, "--json")
    assert json.loads(r.stdout)["plan"]["verdict"] == "offload"
    assert r.returncode == code


def test_does_not_fit_exits_1(llama8b_path):
    r = fitcheck(llama8b_path, "--cpu-only", "--ram", "2G", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["plan"]["verdict"] == "none"


def _one_line_error(r: subprocess.CompletedProcess, code: int) -> str:
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_missing_file_exits_3(tmp_path):
    assert "no such file" in _one_line_error(fitcheck(tmp_path / "nope.gguf"), 3)


def test_not_gguf_exits_3(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_text("<html>404 Not Found</html>")
    assert "not a GGUF" in _one_line_error(fitcheck(path), 3)


def test_truncated_header_exits_3(tmp_path, llama8b_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(llama8b_path.read_bytes()[:50_000])
    assert "truncated" in _one_line_error(fitcheck(path, "--json"), 3)


@pytest.mark.parametrize("args", [["--ctx", "lots"], ["--vram", "big"], ["-fa", "maybe"], ["-ctk", "q3_k"],
                                  ["-ctv", "q8_0", "-fa", "off"], ["--no-such-option"], ["-ngl", "x"]])
def test_usage_errors_exit_2(llama8b_path, args):
    _one_line_error(fitcheck(llama8b_path, *args), 2)


def test_help_names_defaults():
    r = fitcheck("--help")
    assert r.returncode == 0 and "512M" in r.stdout and "--vram" in r.stdout
