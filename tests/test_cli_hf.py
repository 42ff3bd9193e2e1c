"""The CLI on Hub references, as a user runs it: a subprocess whose environment points huggingface_hub at the
fake hub before it is imported (it reads HF_ENDPOINT and HF_HUB_OFFLINE at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import TOKEN, FakeHub, build_files, populate

HW = ["--vram", "4G", "--ram", "16G"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    with FakeHub() as h:
        populate(h, build_files(tmp_path_factory.mktemp("cli")))
        yield h


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def fitcheck(hub: FakeHub, cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    base.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(cache / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
                FITCHECK_CACHE_DIR=str(cache / "fitcheck"), FITCHECK_HTTP_RETRIES="0", NO_COLOR="1", **env)
    return subprocess.run([sys.executable, "-m", "fitcheck", *args], capture_output=True, text=True, env=base,
                          timeout=60)


def test_quant_table_json(hub, cache):
    out = fitcheck(hub, cache, "hf:org/Tiny-GGUF", *HW, "--json", "-c", "4096")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema_version"] == 1 and doc["kind"] == "gguf"
    rows = doc["quants"]
    assert [r["quant"] for r in rows] == ["Q2_K", "Q4_K_M", "Q8_0", "BF16"]
    assert [r["size_bytes"] for r in rows] == sorted(r["size_bytes"] for r in rows)
    keys = {"file", "quant", "file_type", "size_bytes", "weights_bytes", "kv_cache_bytes", "total_bytes",
            "verdict", "gpu_layers", "max_ctx", "command"}
    assert all(keys <= set(r) for r in rows)
    assert rows[1]["command"].startswith("llama-server -hf org/Tiny-GGUF:Q4_K_M -c 4096")
    best = [r for r in rows if r["best"]]
    assert len(best) == 1 and best[0]["verdict"] == "gpu"
    assert best[0]["quant"] in doc["recommendation"]
    assert doc["settings"]["ctx"] == 4096 and doc["hardware"]["source"] == "override"


def test_quant_table_text_and_offline(hub, cache):
    fitcheck(hub, cache, "hf:org/Tiny-GGUF", *HW)  # fills the cache (if the JSON test did not)
    hub.reset_counters()
    out = fitcheck(hub, cache, "hf:org/Tiny-GGUF", *HW, HF_HUB_OFFLINE="1")
    assert out.returncode == 0, out.stderr
    assert hub.requests == []
    assert "★" in out.stdout and "recommend" in out.stdout and "Q4_K_M" in out.stdout


def test_single_quant_prints_the_normal_report(hub, cache):
    out = fitcheck(hub, cache, "hf:org/Tiny-GGUF:q8_0", *HW, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"]["file_type"] == "Q8_0" and doc["model"]["ref"] == "hf:org/Tiny-GGUF:Q8_0"
    assert "-hf org/Tiny-GGUF:Q8_0" in doc["plan"]["command"]


def test_safetensors_repo_table(hub, cache):
    out = fitcheck(hub, cache, "hf:org/Tiny-ST", *HW, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["quants"]
    assert {r["quant"] for r in rows} == {"BF16 (native)", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K",
                                          "IQ4_XS"}
    assert all(r["estimate"] for r in rows if r["quant"] != "BF16 (native)")


@pytest.mark.parametrize("ref, token, words", [
    ("hf:org/gated:Q4_K_M", "hf_wrong_secret_value", "token was rejected"),
    ("hf:org/gated:Q4_K_M", None, "gated repository"),
    ("hf:org/nope", None, "repository not found"),
    ("hf:org/empty", None, "no GGUF or safetensors"),
    ("hf:org/notgguf:Q4_K_M", None, "not a GGUF file"),
])
def test_errors_exit_3_with_one_line(hub, cache, ref, token, words):
    out = fitcheck(hub, cache, ref, *HW, **({"HF_TOKEN": token} if token else {}))
    assert out.returncode == 3
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    if token:
        assert token not in out.stderr


def test_gated_repo_with_access(hub, cache):
    out = fitcheck(hub, cache, "hf:org/gated:Q4_K_M", *HW, "--json", HF_TOKEN=TOKEN)
    assert out.returncode == 0, out.stderr
    assert TOKEN not in out.stdout + out.stderr
