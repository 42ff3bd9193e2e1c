"""Planned header reads: few requests for one GGUF, and quants of one model sharing their tokenizer's bytes.

A repo whose quants differ in vocabulary must read exactly as a full read does: every spec here is compared
with the same file read locally.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from fitcheck.sources.gguf import load_local
from fitcheck.sources.resolve import resolve
from fitcheck.sources.types import Model, QuantSet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_hub import FakeHub, use_hub
from tests import gguf_builder as synth

N_VOCAB = 20_000  # above the parser's SMALL_ARRAY: summarised, and so shareable


def _layout(quant: str, tokens: list[str] | None = None, n_vocab: int = N_VOCAB) -> tuple[dict, list]:
    weight, ftype = {"Q4_K_M": ("Q4_K", 15), "Q8_0": ("Q8_0", 7), "Q5_K_M": ("Q5_K", 17), "Q6_K": ("Q6_K", 18),
                     "Q2_K": ("Q2_K", 10)}[quant]
    meta, tensors = synth.llama_layout(arch="qwen2", n_layer=4, n_embd=512, n_head=8, n_head_kv=2, n_ff=1024,
                                       n_vocab=n_vocab, n_ctx_train=8192, weight_type=weight, ffn_down_type=weight,
                                       output_type=weight, embd_type=weight, file_type=ftype, name="Shared")
    del meta["tokenizer.ggml.scores"]
    meta["tokenizer.ggml.model"] = "gpt2"
    if tokens is not None:
        meta["tokenizer.ggml.tokens"] = tokens
    meta["tokenizer.ggml.merges"] = [f"m{i} m{i + 1}" for i in range(n_vocab)]
    meta["tokenizer.chat_template"] = "{{ messages }}" * 100
    return meta, tensors


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    folder = tmp_path_factory.mktemp("planned")
    other = [f"other-token-{i}" for i in range(N_VOCAB)]  # same count, other strings (and lengths)
    variants = {
        "Shared-Q2_K.gguf": _layout("Q2_K"),  # the first in the listing: read in full, the others follow it
        "Shared-Q4_K_M.gguf": _layout("Q4_K_M"),
        "Shared-Q6_K.gguf": _layout("Q6_K"),
        "Shared-Q5_K_M.gguf": _layout("Q5_K_M", tokens=other),  # another vocabulary, same count
        "Shared-Q8_0.gguf": _layout("Q8_0", n_vocab=N_VOCAB + 512),  # another vocabulary size
    }
    out = {}
    for name, (meta, tensors) in variants.items():
        out[name] = (folder / name, synth.write_header_only(folder / name, "qwen2", meta, tensors))
    return out


@pytest.fixture(scope="module")
def hub(files) -> FakeHub:
    with FakeHub() as h:
        for name, (path, size) in files.items():
            h.add_file("org/Shared-GGUF", name, path, size=size)
            if name == "Shared-Q4_K_M.gguf":
                h.add_file("org/Shared-one", name, path, size=size)
        yield h


@pytest.fixture(autouse=True)
def env(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hub(hub, tmp_path, monkeypatch)
    hub.redirect_lfs = True
    hub.set_link()
    hub.reset_counters()


def _same_as_local(spec, path: Path) -> None:
    local = load_local(str(path))
    assert spec.tensors == local.tensors and spec.metadata == local.metadata
    assert (spec.n_vocab, spec.file_type, spec.file_size_bytes) == (local.n_vocab, local.file_type,
                                                                     local.file_size_bytes)


def test_one_gguf_takes_few_requests_and_few_bytes(hub: FakeHub, files):
    stats: list[dict] = []
    model = resolve("hf:org/Shared-one:Q4_K_M", stats=stats)
    assert isinstance(model, Model)
    _same_as_local(model.spec, files["Shared-Q4_K_M.gguf"][0])
    [s] = stats
    gets = [r for r in hub.file_requests("Shared-Q4_K_M.gguf") if r.method == "GET" and r.status == 206]
    assert len(gets) == s["requests"] <= 6  # (the first one through the redirect to the CDN host)
    assert s["bytes_fetched"] <= 1.3 * s["header_bytes"] and not s["shared"]


def test_quants_share_the_tokenizer_and_other_vocabularies_read_in_full(hub: FakeHub, files):
    stats: list[dict] = []
    found = resolve("hf:org/Shared-GGUF", stats=stats)
    assert isinstance(found, QuantSet) and len(found.choices) == 5
    for choice in found.choices:
        assert choice.file is not None
        _same_as_local(choice.model.spec, files[choice.file][0])
    by_file = {s["file"]: s for s in stats}
    assert not by_file["Shared-Q2_K.gguf"]["shared"]  # the leader
    assert not by_file["Shared-Q5_K_M.gguf"]["shared"]  # same count, other strings: its boundaries differ
    assert not by_file["Shared-Q8_0.gguf"]["shared"]  # another count
    for name in ("Shared-Q4_K_M.gguf", "Shared-Q6_K.gguf"):
        s = by_file[name]
        assert s["shared"] and s["bytes_fetched"] < 0.25 * s["header_bytes"] and s["requests"] <= 6


def test_a_cached_quant_serves_the_next_one(hub: FakeHub, files):
    resolve("hf:org/Shared-GGUF:Q4_K_M")
    stats: list[dict] = []
    model = resolve("hf:org/Shared-GGUF:Q6_K", stats=stats)
    assert isinstance(model, Model)
    _same_as_local(model.spec, files["Shared-Q6_K.gguf"][0])
    [s] = stats
    assert s["shared"] and s["bytes_fetched"] < 0.25 * s["header_bytes"]
    for quant in ("Q5_K_M", "Q8_0"):  # other vocabularies are not fooled by the cached layouts
        stats = []
        model = resolve(f"hf:org/Shared-GGUF:{quant}", stats=stats)
        assert isinstance(model, Model)
        _same_as_local(model.spec, files[f"Shared-{quant}.gguf"][0])
        assert not stats[0]["shared"]


def test_the_link_emulation_costs_round_trips_and_bandwidth(hub: FakeHub, files):
    import httpx2 as httpx  # huggingface_hub's own HTTP library

    url = f"{hub.endpoint}/org/Shared-one/resolve/main/Shared-Q4_K_M.gguf"
    hub.redirect_lfs = False
    hub.set_link(0.05, 8e6)  # 50 ms, 1 MB/s
    with httpx.Client() as client:
        start = time.perf_counter()
        client.get(url, headers={"Range": "bytes=0-99999"})
        first = time.perf_counter() - start
        start = time.perf_counter()
        client.get(url, headers={"Range": "bytes=0-0"})
        second = time.perf_counter() - start
    assert first >= 0.05 * 2 + 0.1 * 0.95  # handshake + round trip + 100 kB at 1 MB/s
    assert 0.05 <= second < first
    assert hub.connections == 1
