"""Shared fixtures: header-only GGUFs built with gguf's writer (through tests.gguf_builder)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fitcheck.model import ModelSpec
from fitcheck.sources.gguf import load_local
from tests import gguf_builder as synth

MakeGGUF = Callable[..., Path]


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """fitcheck's disk cache (headers, the measured RAM bandwidth) in a session folder, never the user's;
    set in the environment so that CLI subprocesses inherit it."""
    os.environ["FITCHECK_CACHE_DIR"] = str(tmp_path_factory.mktemp("fitcheck-cache"))


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf")


@pytest.fixture(scope="session")
def make_gguf(gguf_dir: Path) -> MakeGGUF:
    """make_gguf(name, arch, metadata, tensors, split_max_tensors=0) -> path of the (first) file."""
    counter = iter(range(10**6))

    def make(name: str, arch: str, metadata: dict[str, Any], tensors: list[synth.TensorSpec],
             split_max_tensors: int = 0) -> Path:
        folder = gguf_dir / f"m{next(counter)}"
        folder.mkdir()
        path = folder / f"{name}.gguf"
        synth.write_header_only(path, arch, metadata, tensors, split_max_tensors=split_max_tensors)
        if split_max_tensors:
            return sorted(folder.glob("*.gguf"))[0]
        return path

    return make


@pytest.fixture(scope="session")
def llama8b_path(make_gguf: MakeGGUF) -> Path:
    meta, tensors = synth.llama_layout()
    return make_gguf("llama8b", "llama", meta, tensors)


@pytest.fixture(scope="session")
def llama8b(llama8b_path: Path) -> ModelSpec:
    return load_local(str(llama8b_path))


@pytest.fixture(scope="session")
def gemma3(make_gguf: MakeGGUF) -> ModelSpec:
    meta, tensors = synth.gemma3_layout()
    return load_local(str(make_gguf("gemma3", "gemma3", meta, tensors)))


@pytest.fixture(scope="session")
def llama70b(make_gguf: MakeGGUF) -> ModelSpec:
    meta, tensors = synth.llama_layout(n_layer=80, n_embd=8192, n_head=64, n_head_kv=8, n_ff=28672,
                                       with_vocab=False, name="Llama-3-70B-shaped")
    return load_local(str(make_gguf("llama70b", "llama", meta, tensors)))


@pytest.fixture(scope="session")
def qwen3_30b_a3b(make_gguf: MakeGGUF) -> ModelSpec:
    meta, tensors = synth.moe_layout()
    return load_local(str(make_gguf("qwen3-30b-a3b", "qwen3moe", meta, tensors)))


@pytest.fixture(scope="session")
def gpt_oss_120b(make_gguf: MakeGGUF) -> ModelSpec:
    """gpt-oss-120b's shapes: 36 layers, 128 experts (4 used) in MXFP4, sliding window 128 on every other layer."""
    meta, tensors = synth.moe_layout(arch="gpt-oss", n_layer=36, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64,
                                     n_expert=128, n_expert_used=4, n_ff_exp=2880, n_vocab=201088,
                                     n_ctx_train=131072, weight_type="Q8_0", expert_type="MXFP4",
                                     output_type="Q8_0", window=128, name="gpt-oss-120b-shaped", file_type=38)
    return load_local(str(make_gguf("gpt-oss-120b", "gpt-oss", meta, tensors)))


@pytest.fixture(scope="session")
def llama405b(make_gguf: MakeGGUF) -> ModelSpec:
    meta, tensors = synth.llama_layout(n_layer=126, n_embd=16384, n_head=128, n_head_kv=8, n_ff=53248,
                                       with_vocab=False, name="Llama-3.1-405B-shaped")
    return load_local(str(make_gguf("llama405b", "llama", meta, tensors)))
