"""`fitcheck --exact` from the command line, without a llama.cpp build: the one-line refusals, and the binary
engine's process handling (its answer, a failure, a hang) through a stand-in `llama-fit-params` that replays
a log recorded from the real one (tests/data/exact/)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import FakeHub, tiny_file

DATA = Path(__file__).resolve().parent / "data" / "exact"
HW = ["--cpu-only", "--ram", "64G"]
PATH = os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])
NO_ENGINE = importlib.util.find_spec("llama_cpp") is None and shutil.which("llama-fit-params", path=PATH) is None


def fitcheck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("FITCHECK_LLAMA_CPP", "FITCHECK_EXACT_TIMEOUT")}
    base.update(NO_COLOR="1", PATH=PATH, FITCHECK_EXACT_ENGINE="binary", **env)  # the module, if any, stays out
    return subprocess.run([sys.executable, "-m", "fitcheck", *args], capture_output=True, text=True, env=base,
                          timeout=120)


def fake_binary(folder: Path, body: str) -> Path:
    """A `llama-fit-params` that answers --version like the real one and otherwise runs `body`."""
    folder.mkdir(exist_ok=True)
    path = folder / "llama-fit-params"
    path.write_text("#!/bin/sh\n"
                    'if [ "$1" = "--version" ]; then\n'
                    '  echo "version: 0.5.0-dev (build 1, commit 0c1e570)" >&2; exit 0\n'
                    'fi\n'
                    f'echo "$@" > "{folder}/args"\n' + body + "\n")
    path.chmod(0o755)
    return path


@pytest.mark.skipif(not NO_ENGINE, reason="a llama.cpp answers here (tests/test_exact_engine.py)")
def test_not_available_is_one_line_and_exit_3(llama8b_path):
    out = fitcheck(str(llama8b_path), *HW, "--exact")
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr == ("error: --exact needs llama.cpp (hint: pip install 'fitcheck[exact]' or put "
                          "llama-fit-params on PATH)\n")
    assert fitcheck(str(llama8b_path), *HW, "--exact", FITCHECK_LLAMA_CPP="/nonexistent").returncode == 3


def test_repo_of_quants_is_refused_before_any_request(tmp_path):
    header, full = tiny_file(tmp_path)
    with FakeHub() as hub:
        hub.add_file("org/Tiny-GGUF", header.name, header, size=full)
        out = fitcheck("hf:org/Tiny-GGUF", *HW, "--exact", HF_ENDPOINT=hub.endpoint)
        assert out.returncode == 2 and "pick a quant: hf:org/repo:Q4_K_M" in out.stderr
        assert hub.requests == []


def test_binary_engine_answer_in_table_and_json(tmp_path, llama8b_path):
    log = DATA / "fit-params-llama-3.1-8b.log"
    binary = fake_binary(tmp_path / "bin", f'cat "{log}"')
    out = fitcheck(str(llama8b_path), *HW, "-c", "8192", "--exact", "--json", FITCHECK_LLAMA_CPP=str(binary.parent))
    assert out.returncode == 0, out.stderr
    exact = json.loads(out.stdout)["exact"]
    assert exact["engine"] == "llama-fit-params 0.5.0-dev (build 1, commit 0c1e570)"
    assert exact["memory"]["kv_cache_bytes"] == 256 * 2**20
    assert set(exact["memory"]) == set(json.loads(out.stdout)["memory"])
    assert exact["devices"][0]["name"] == "Host"
    assert exact["incomparable"] == ["compute_bytes"]  # llama-fit-params' logits rows are not llama-server's
    args = (binary.parent / "args").read_text().split()
    assert args[args.index("-c") + 1] == "8192" and args[args.index("-ngl") + 1] == "0"
    assert {"-nr", "--fit-print", "-v"} <= set(args)
    model_arg = Path(args[args.index("-m") + 1])
    assert model_arg.name == llama8b_path.name and model_arg.parent != llama8b_path.parent
    assert not model_arg.parent.exists()  # the temporary folder is gone
    text = fitcheck(str(llama8b_path), *HW, "-c", "8192", "--exact", FITCHECK_LLAMA_CPP=str(binary))
    assert text.returncode == 0, text.stderr
    assert "Estimate vs llama.cpp" in text.stdout and "llama.cpp  llama-fit-params 0.5.0-dev" in text.stdout
    assert "llama.cpp ran with  -c 8192" in text.stdout


def test_binary_failure_explains_itself(tmp_path, llama8b_path):
    log = DATA / "fit-params-deepseek-v2-lite-refused.log"
    binary = fake_binary(tmp_path / "bin", f'cat "{log}"; exit 134')
    out = fitcheck(str(llama8b_path), *HW, "--exact", FITCHECK_LLAMA_CPP=str(binary))
    assert out.returncode == 3 and out.stdout == "" and len(out.stderr.splitlines()) == 1
    assert "llama-fit-params failed (exit 134)" in out.stderr and "different K (q8_0)" in out.stderr


def test_hung_binary_is_bounded(tmp_path, llama8b_path):
    binary = fake_binary(tmp_path / "bin", "sleep 30")
    out = fitcheck(str(llama8b_path), *HW, "--exact", FITCHECK_LLAMA_CPP=str(binary), FITCHECK_EXACT_TIMEOUT="1")
    assert out.returncode == 3 and "did not answer within 1 s" in out.stderr and "FITCHECK_EXACT_TIMEOUT" in out.stderr


def test_ctrl_c_removes_the_copy(tmp_path, llama8b_path):
    binary = fake_binary(tmp_path / "bin", "sleep 30")
    env = {k: v for k, v in os.environ.items() if k not in ("FITCHECK_LLAMA_CPP", "FITCHECK_EXACT_TIMEOUT")}
    env.update(NO_COLOR="1", PATH=PATH, FITCHECK_EXACT_ENGINE="binary", FITCHECK_LLAMA_CPP=str(binary))
    proc = subprocess.Popen([sys.executable, "-m", "fitcheck", str(llama8b_path), *HW, "--exact"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    args = binary.parent / "args"
    for _ in range(600):  # until llama-fit-params has been started on the copy
        if args.exists() and args.read_text().strip():
            break
        time.sleep(0.05)
    copy = Path(args.read_text().split()[1])
    assert copy.exists()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not copy.parent.exists()
