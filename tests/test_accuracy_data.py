"""The committed llama.cpp truth data (benchmarks/accuracy/) is well-formed and self-consistent.

No llama.cpp needed: these tests read results/measurements.json and the layout specs, rebuild every layout as a
header-only GGUF with tests.gguf_builder, and re-check the memory rules in benchmarks/accuracy/analyze.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ACC = ROOT / "benchmarks" / "accuracy"
sys.path.insert(0, str(ACC))
sys.path.insert(0, str(ROOT / "src"))

import analyze  # noqa: E402
import layout_io  # noqa: E402

RESULTS = ACC / "results" / "measurements.json"
SETTING_KEYS = {"ctx", "batch", "ubatch", "parallel", "kv_unified", "cache_type_k", "cache_type_v", "flash_attn",
                "swa_full", "embeddings", "consumer"}
# llama-server's contexts also set its output limits (server_output_limits)
SERVER_KEYS = SETTING_KEYS | {"n_draft", "n_outputs_max", "n_outputs_max_per_seq"}
MEASURED_KEYS = {"model_bytes", "kv_cache_bytes", "kv_k_bytes", "kv_v_bytes", "recurrent_state_bytes",
                 "compute_bytes", "output_bytes"}
LAYOUTS = layout_io.layout_paths()


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(RESULTS.read_text())


def _pad(x: int, n: int = 32) -> int:
    return (x + n - 1) // n * n


def _nbytes(shape: list[int], typ: str) -> int:
    size, block = analyze.GGML_TYPE_SIZE[typ]
    n = 1
    for d in shape:
        n *= d
    assert shape[0] % block == 0
    return n // block * size


def test_measurements_file_is_well_formed(data: dict) -> None:
    for key in ("llama_cpp_version", "llama_cpp_python_sdist", "measured_at", "machine", "rows", "layouts"):
        assert key in data
    assert data["llama_cpp_python_sdist"] == "0.3.36"
    assert "llama.cpp@" in data["llama_cpp_version"]
    names = {p.stem for p in LAYOUTS}
    ok = [r for r in data["rows"] if "error" not in r]
    assert len(ok) >= 150
    for r in data["rows"]:
        assert r["layout"] in names
        assert set(r["settings"]) == (SERVER_KEYS if r["settings"]["consumer"] == "llama-server" else SETTING_KEYS)
        if "error" in r:
            continue
        assert set(r["measured"]) >= MEASURED_KEYS
        for k, v in r["measured"].items():
            assert isinstance(v, int) and v >= 0, (r["layout"], k, v)
        res = r["resolved"]
        assert isinstance(res["flash_attn"], bool)
        assert res["n_ctx"] % 256 == 0 and res["n_ctx_seq"] % 256 == 0
        assert r["measured"]["kv_cache_bytes"] == r["measured"]["kv_k_bytes"] + r["measured"]["kv_v_bytes"]
        assert r["measured"]["compute_bytes"] > 0 and r["measured"]["model_bytes"] > 0
        if r["settings"]["consumer"] == "llama-server":  # the limits llama.cpp resolved are the ones asked for
            assert res["n_outputs_max"] == r["settings"]["n_outputs_max"]
            assert res["n_outputs_max_per_seq"] == r["settings"]["n_outputs_max_per_seq"]
        else:
            assert res["n_outputs_max"] == res["n_batch"]  # the C API's default: 0 = n_batch


def test_coverage(data: dict) -> None:
    ok = [r for r in data["rows"] if "error" not in r]
    archs = {r["arch"] for r in ok}
    assert len(archs) >= 15
    per_layout: dict[str, int] = {}
    for r in ok:
        per_layout[r["layout"]] = per_layout.get(r["layout"], 0) + 1
    assert set(per_layout) == {p.stem for p in LAYOUTS}
    assert min(per_layout.values()) >= 6
    s = [r["settings"] for r in ok]
    assert {x["parallel"] for x in s} >= {1, 4}
    assert {x["kv_unified"] for x in s} == {True, False}
    assert {x["cache_type_k"] for x in s} >= {"f16", "q8_0"}
    assert {x["ubatch"] for x in s} >= {128, 512}
    assert {x["swa_full"] for x in s} == {True, False}
    assert any(r["resolved"]["flash_attn"] for r in ok) and not all(r["resolved"]["flash_attn"] for r in ok)


@pytest.mark.parametrize("path", LAYOUTS, ids=[p.stem for p in LAYOUTS])
def test_layout_rebuilds_with_synth(path: Path, tmp_path: Path, data: dict) -> None:
    layout = layout_io.load_layout(path)
    assert {"name", "source_model", "arch", "metadata", "tensors", "tokenizer"} <= set(layout)
    assert layout["name"] == path.stem
    out = tmp_path / "h.gguf"
    # the vocabulary placeholder is expanded in test_tokenizer_placeholder_expands (large vocabs are slow to write)
    full = layout_io.write_gguf({**layout, "tokenizer": None}, out, sparse=False)
    header = out.stat().st_size
    assert out.read_bytes()[:4] == b"GGUF"
    data_bytes = sum(_pad(_nbytes(shape, typ)) for _, shape, typ in layout["tensors"])
    assert full == _pad(header) + data_bytes
    # llama.cpp mapped exactly the tensor data of this layout
    model_bytes = {r["measured"]["model_bytes"] for r in data["rows"] if r["layout"] == path.stem and "measured" in r}
    assert model_bytes == {data_bytes}


def test_tokenizer_placeholder_expands(tmp_path: Path) -> None:
    layout = layout_io.load_layout(ACC / "layouts" / "bge-base-en-v1.5.json")
    n_vocab = layout["tokenizer"]["n_vocab"]
    meta = layout_io.expanded_metadata(layout)
    assert len(meta["tokenizer.ggml.tokens"]) == n_vocab
    assert meta["tokenizer.ggml.token_type_count"] == 2
    out = tmp_path / "bge.gguf"
    full = layout_io.write_gguf(layout, out, sparse=True)
    assert out.stat().st_size == full
    data_bytes = sum(_pad(_nbytes(shape, typ)) for _, shape, typ in layout["tensors"])
    with open(out, "rb") as f:
        head = f.read(full - data_bytes)
    assert head[:4] == b"GGUF" and b"tokenizer.ggml.tokens" in head


def test_memory_rules_reproduce_every_measurement(data: dict) -> None:
    layouts = {p.stem: layout_io.load_layout(p) for p in LAYOUTS}
    for r in data["rows"]:
        if "error" in r:
            continue
        hp = analyze.HP(layouts[r["layout"]])
        p = analyze.predict(hp, r["settings"], r["resolved"]["flash_attn"])
        m, res = r["measured"], r["resolved"]
        assert (p["n_ctx"], p["n_ctx_seq"]) == (res["n_ctx"], res["n_ctx_seq"]), r["layout"]
        for key in ("kv_k_bytes", "kv_v_bytes", "recurrent_state_bytes", "output_bytes"):
            assert p[key] == m[key], (r["layout"], r["settings"], key)
        assert p["swa_kv_bytes"] == m.get("swa_kv_bytes", 0)


def test_compute_formula_error_is_bounded(data: dict) -> None:
    layouts = {p.stem: layout_io.load_layout(p) for p in LAYOUTS}
    worst = 0.0
    for r in data["rows"]:
        # analyze.py's one-formula-for-all model was fitted on the C API rows, where the logits dominate;
        # fitcheck's estimator itself is held to every row, llama-server's included (tests/test_accuracy.py)
        if "error" in r or r["settings"]["consumer"] != "library":
            continue
        hp = analyze.HP(layouts[r["layout"]])
        f = analyze.compute_features(hp, layouts[r["layout"]], r["resolved"])
        y = r["measured"]["compute_bytes"]
        worst = max(worst, abs(analyze.compute_formula(f) - y) / y)
    assert worst < 0.25
