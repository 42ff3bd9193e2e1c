"""Safetensors repos on the fake hub: config.json + safetensors headers -> native need and what-if quants."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fitcheck.sources.resolve import resolve
from fitcheck.sources.safetensors import WHAT_IF
from fitcheck.sources.types import QuantSet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_hub import FakeHub, build_files, populate, use_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    with FakeHub() as h:
        populate(h, build_files(tmp_path_factory.mktemp("st")))
        yield h


@pytest.fixture(autouse=True)
def env(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hub(hub, tmp_path, monkeypatch)
    hub.reset_counters()


def _params(n_layer: int = 4) -> int:
    per_layer = 2 * 512 + 512 * 512 * 2 + 128 * 512 * 2 + 1024 * 512 * 3
    return 2048 * 512 * 2 + n_layer * per_layer + 512


def test_single_file_repo(hub: FakeHub):
    qs = resolve("hf:org/Tiny-ST")
    assert isinstance(qs, QuantSet) and qs.kind == "safetensors"
    quants = [c.quant for c in qs.choices]
    assert quants == ["BF16 (native)", *WHAT_IF]
    native = qs.choices[0].model.spec
    assert native.parameters == _params()
    assert native.weights_bytes == 2 * _params()
    assert (native.n_layer, native.n_head_kv[0], native.head_dim_k, native.n_vocab) == (4, 2, 64, 2048)
    assert not native.tied_embeddings and sum(t.layer == 0 for t in native.tensors) == 9
    q4 = next(c for c in qs.choices if c.quant == "Q4_K_M")
    assert q4.estimate and q4.model.spec.weights_bytes < native.weights_bytes / 3
    assert any("estimates" in n for n in qs.notes)
    # only the header bytes of the weights file were read (one ranged request)
    gets = [r for r in hub.file_requests("model.safetensors") if r.method == "GET"]
    assert len(gets) == 1 and gets[0].range == "bytes=0-100000"


def test_multimodal_sharded_repo_uses_text_config_and_skips_the_vision_tower(hub: FakeHub):
    qs = resolve("hf:org/Tiny-VL")
    native = qs.choices[0].model.spec
    assert native.architecture == "llama" and native.n_layer == 4
    assert native.parameters == _params()  # vision tensors left out (llama.cpp puts them in an mmproj)
    assert all(hub.file_requests(f"model-0000{i}-of-00002.safetensors") for i in (1, 2))


def test_second_run_is_cached(hub: FakeHub):
    resolve("hf:org/Tiny-VL")
    hub.reset_counters()
    resolve("hf:org/Tiny-VL")
    assert [r.path.split("?")[0] for r in hub.requests] == ["/api/models/org/Tiny-VL"]
