"""Local stores as references: ollama:, lmstudio:, and hf: answered from the Hugging Face cache with no network;
Ollama's own defaults for an ollama: model and the OLLAMA_* / PARAMETER lines that reproduce its plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fitcheck import check
from fitcheck.errors import InputError
from fitcheck.model import GiB, Settings
from fitcheck.probe.overrides import HardwareOverrides
from fitcheck.sources.resolve import resolve
from fitcheck.sources.stores import ollama
from fitcheck.sources.types import Model, QuantSet
from tests import store_trees as st

MACHINE_8G = HardwareOverrides(vram=(8 * GiB,), ram=32 * GiB, ram_bandwidth_gbps=50.0)
MACHINE_24G = HardwareOverrides(vram=(24 * GiB,), ram=64 * GiB, ram_bandwidth_gbps=50.0)


@pytest.fixture()
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return st.isolate(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return st.model_files(tmp_path_factory.mktemp("src"))


@pytest.mark.parametrize("text, parts", [
    ("qwen3", ("registry.ollama.ai", "library", "qwen3", "latest")),
    ("qwen3:30b", ("registry.ollama.ai", "library", "qwen3", "30b")),
    ("someone/model:q4", ("registry.ollama.ai", "someone", "model", "q4")),
    ("hf.co/org/Repo-GGUF:Q4_K_M", ("hf.co", "org", "Repo-GGUF", "Q4_K_M")),
])
def test_ollama_names(text, parts):
    name = ollama.parse_name(text)
    assert (name.host, name.namespace, name.model, name.tag) == parts
    assert ollama.parse_name(str(name)) == name  # the short form round-trips


@pytest.mark.parametrize("text", ["", "../x", "a/../b:c", "a/b/c/d:e", "model:", "a b"])
def test_bad_ollama_names(text):
    with pytest.raises(InputError):
        ollama.parse_name(text)


def test_ollama_ref_reads_the_model_blob(stores, files):
    st.ollama_model(stores / "ollama", "tiny", "latest", files["tiny"])
    found = resolve("ollama:tiny")
    assert isinstance(found, Model)
    blob = found.model_arg[1]
    assert found.model_arg[0] == "-m" and Path(blob).parent == stores / "ollama" / "blobs"
    assert Path(blob).read_bytes() == files["tiny"].read_bytes()
    assert found.spec.ref == "ollama:tiny:latest" and found.spec.n_layer == 4


def test_ollama_hub_model_and_case(stores, files):
    st.ollama_model(stores / "ollama", "Tiny-GGUF", "Q4_K_M", files["tiny"], host="hf.co", namespace="org")
    assert isinstance(resolve("ollama:hf.co/org/tiny-gguf:q4_k_m"), Model)  # Ollama matches names case-blind


def test_missing_manifest_and_dangling_blob(stores, files):
    with pytest.raises(InputError, match="no such model"):
        resolve("ollama:nothing:here")
    st.ollama_model(stores / "ollama", "gone", "latest", files["tiny"], copy_blob=False)
    with pytest.raises(InputError, match="missing from the store"):
        resolve("ollama:gone")
    manifest = stores / "ollama" / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        resolve("ollama:broken")


def test_ollama_defaults_from_params_and_vram(stores, files):
    st.ollama_model(stores / "ollama", "withctx", "latest", files["tiny"], params={"num_ctx": 8192, "stop": ["x"]})
    st.ollama_model(stores / "ollama", "plain", "latest", files["tiny"])
    r = check("ollama:withctx", Settings(), MACHINE_8G)
    assert r.settings.ctx == 8192 and r.settings.parallel == 1  # the params layer's num_ctx
    assert r.settings.batch == r.settings.ubatch == 1024  # Ollama: one batch size, 1024 above 4096 tokens
    assert r.ollama is not None and ("num_ctx", "8192") in r.ollama.parameters
    assert any("planned as Ollama runs it" in n and "PARAMETER num_ctx" in n for n in r.notes)
    assert check("ollama:plain", Settings(), MACHINE_8G).settings.ctx == 4096  # under 23 GiB of VRAM
    assert check("ollama:plain", Settings(), MACHINE_24G).settings.ctx == 32768  # 24 GiB tier, training ctx 32k
    assert check("ollama:plain", Settings(ctx=2048), MACHINE_24G).settings.ctx == 2048  # an option wins


def test_ollama_environment(stores, files, monkeypatch):
    st.ollama_model(stores / "ollama", "plain", "latest", files["tiny"])
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "2")
    monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "6144")
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q8_0")
    monkeypatch.setenv("OLLAMA_FLASH_ATTENTION", "1")
    r = check("ollama:plain", Settings(), MACHINE_8G)
    s = r.settings
    assert (s.ctx, s.parallel, s.kv_unified, s.cache_type_k, s.cache_type_v) == (12288, 2, False, "q8_0", "q8_0")
    assert r.needs.n_ctx_seq == 6144  # llama-server -c 12288 -np 2: 6144 cells per slot
    assert r.ollama is not None
    env = dict(r.ollama.env)
    assert env == {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "1"}
    assert dict(r.ollama.parameters)["num_ctx"] == "6144"


def test_ollama_projector_is_attached(stores, files):
    st.ollama_model(stores / "ollama", "vision", "latest", files["tiny"], projector_path=files["mmproj"])
    r = check("ollama:vision", Settings(), MACHINE_8G)
    assert [e.kind for e in r.settings.extras] == ["mmproj"]
    assert "--mmproj" in r.plan.command


def test_lmstudio_file_and_folder(stores, files):
    folder = stores / "lms" / "pub" / "Tiny-GGUF"
    folder.mkdir(parents=True)
    for name, key in (("Tiny-Q4_K_M.gguf", "tiny"), ("Tiny-Q8_0.gguf", "tiny_q8"), ("mmproj-Tiny-f16.gguf", "mmproj")):
        (folder / name).write_bytes(files[key].read_bytes())
    one = resolve("lmstudio:pub/Tiny-GGUF/Tiny-Q8_0.gguf")
    assert isinstance(one, Model) and one.spec.file_type == "Q8_0"
    both = resolve("lmstudio:pub/Tiny-GGUF")
    assert isinstance(both, QuantSet) and sorted(c.quant for c in both.choices) == ["Q4_K_M", "Q8_0"]
    assert any("mmproj" in n for n in both.notes)
    for bad in ("lmstudio:pub/Nope", "lmstudio:pub/../..", "lmstudio:one"):
        with pytest.raises(InputError):
            resolve(bad)


def test_hf_ref_answers_from_the_local_cache(stores, files):
    st.hf_cache_repo(stores / "hf", "org/Tiny-GGUF", {"Tiny-Q4_K_M.gguf": files["tiny"],
                                                      "Tiny-Q8_0.gguf": files["tiny_q8"]})
    by_tag = resolve("hf:org/Tiny-GGUF:q8_0")  # HF_ENDPOINT points at nothing: no request was made
    assert isinstance(by_tag, Model) and by_tag.model_arg == ["-hf", "org/Tiny-GGUF:Q8_0"]
    assert any("local Hugging Face cache" in n for n in by_tag.spec.notes)
    by_path = resolve("hf:org/Tiny-GGUF/Tiny-Q4_K_M.gguf")
    assert isinstance(by_path, Model) and by_path.spec.file_type == "Q4_K_M"


def test_hf_ref_not_cached_goes_to_the_hub(stores, files):
    st.hf_cache_repo(stores / "hf", "org/Tiny-GGUF", {"Tiny-Q4_K_M.gguf": files["tiny"]})
    with pytest.raises(Exception) as info:  # Q6_K is not downloaded: the Hub is asked (and is unreachable)
        resolve("hf:org/Tiny-GGUF:Q6_K")
    text = str(info.value).lower()
    assert "127.0.0.1:9" in text or "reach" in text or "connect" in text


def test_cli_ollama_lines_in_table_and_json(stores, files):
    st.ollama_model(stores / "ollama", "tiny", "latest", files["tiny"], params={"num_ctx": 8192})
    env = {**os.environ, "NO_COLOR": "1", "OLLAMA_NUM_PARALLEL": "2"}
    args = [sys.executable, "-m", "fitcheck", "ollama:tiny", "--vram", "8G", "--ram", "32G", "--ram-bandwidth", "50"]
    table = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "ollama   OLLAMA_NUM_PARALLEL=2 ollama serve" in lines
    assert "ollama   Modelfile: FROM tiny:latest · PARAMETER num_ctx 8192" in lines
    assert next(line for line in lines if line.startswith("run ")).count("-np 2") == 1
    doc = json.loads(subprocess.run(args + ["--json"], capture_output=True, text=True, env=env, timeout=60).stdout)
    assert doc["ollama"]["env"] == {"OLLAMA_NUM_PARALLEL": "2"}
    assert doc["ollama"]["modelfile"] == "FROM tiny:latest\nPARAMETER num_ctx 8192\n"
    assert doc["settings"]["ctx"] == 16384 and doc["settings"]["parallel"] == 2
    plain = subprocess.run([*args[:3], str(files["tiny"]), *args[4:], "--json"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert json.loads(plain.stdout)["ollama"] is None  # the key is always there


def test_options_given_equal_to_the_defaults_still_win_over_ollama(stores, files, monkeypatch):
    """`-np 1 -b 2048 -ub 512 -ctk f16 -ctv f16` given explicitly are the user's, even with OLLAMA_* set."""
    st.ollama_model(stores / "ollama", "plain", "latest", files["tiny"])
    for var, value in (("OLLAMA_NUM_PARALLEL", "4"), ("OLLAMA_KV_CACHE_TYPE", "q8_0"),
                       ("OLLAMA_FLASH_ATTENTION", "1")):
        monkeypatch.setenv(var, value)
    given = frozenset({"parallel", "batch", "ubatch", "cache_type_k", "cache_type_v", "flash_attn"})
    s = check("ollama:plain", Settings(), MACHINE_8G, given=given).settings
    assert (s.parallel, s.batch, s.ubatch, s.cache_type_k, str(s.flash_attn)) == (1, 2048, 512, "f16", "auto")
    s = check("ollama:plain", Settings(), MACHINE_8G, given=frozenset()).settings
    assert (s.parallel, s.cache_type_k, str(s.flash_attn)) == (4, "q8_0", "on")
    assert s.batch == s.ubatch != 2048  # Ollama's one batch size


def test_cli_tells_an_explicit_default_from_none_given(stores, files):
    st.ollama_model(stores / "ollama", "plain", "latest", files["tiny"])
    env = {**os.environ, "NO_COLOR": "1", "OLLAMA_NUM_PARALLEL": "4"}
    args = [sys.executable, "-m", "fitcheck", "ollama:plain", "--vram", "8G", "--ram", "32G", "--ram-bandwidth",
            "50", "--json"]

    def slots(*extra: str) -> int:
        r = subprocess.run(args + list(extra), capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        return int(json.loads(r.stdout)["settings"]["parallel"])

    assert slots() == 4  # OLLAMA_NUM_PARALLEL
    assert slots("-np", "1") == 1  # given, though equal to llama.cpp's default
