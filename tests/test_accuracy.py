"""The estimator against llama.cpp's own allocations (benchmarks/accuracy/results/measurements.json).

KV cache, recurrent state, weights and the output buffer must match to the byte on every measured row. The
compute buffer must be within 5% on every row: within 0.1% where fitcheck replays llama.cpp's graph
(fitcheck.graphs), and within the error published in data/compute_model.yaml where the stage model applies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fitcheck import archs
from fitcheck.compute import stage
from fitcheck.estimate import estimate
from fitcheck.model import Settings
from fitcheck.sources.gguf import load_local
from tests import gguf_builder as synth

ACCURACY = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy"
DATA = json.loads((ACCURACY / "results" / "measurements.json").read_text())
ROWS = [r for r in DATA["rows"] if "measured" in r]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accuracy")
    loaded = {}
    for path in sorted((ACCURACY / "layouts").glob("*.json")):
        layout = json.loads(path.read_text())
        meta = synth.tokenizer_metadata(int(layout["tokenizer"]["n_vocab"])) if layout.get("tokenizer") else {}
        meta.update(layout["metadata"])
        out = folder / f"{layout['name']}.gguf"
        synth.write_header_only(out, layout["arch"], meta, [tuple(t) for t in layout["tensors"]])
        loaded[layout["name"]] = load_local(str(out))
    return loaded


def _settings(row):
    s = row["settings"]
    return Settings(ctx=s["ctx"], batch=s["batch"], ubatch=s["ubatch"], parallel=s["parallel"],
                    kv_unified=s["kv_unified"], cache_type_k=s["cache_type_k"], cache_type_v=s["cache_type_v"],
                    flash_attn=s["flash_attn"], swa_full=s["swa_full"], embeddings=s.get("embeddings"),
                    consumer=s.get("consumer", "library"), n_draft=s.get("n_draft", 0))


def test_grid_is_large_enough():
    archs = {r["arch"] for r in ROWS}
    assert len(archs) >= 15
    for arch in archs:
        assert sum(r["arch"] == arch for r in ROWS) >= 6, arch


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['layout']}-{r['settings']['ctx']}-{r['settings']['ubatch']}"
                         f"-np{r['settings']['parallel']}-fa{r['settings']['flash_attn']}-{r['settings']['cache_type_k']}")
def test_matches_llama_cpp(specs, row):
    spec = specs[row["layout"]]
    needs = estimate(spec, _settings(row))
    measured = row["measured"]
    assert needs.kv_cache_bytes == measured["kv_cache_bytes"]
    assert needs.recurrent_state_bytes == measured["recurrent_state_bytes"]
    assert needs.weights_bytes == measured["model_bytes"]
    assert needs.output_bytes == measured["output_bytes"]
    assert needs.n_ctx == row["resolved"]["n_ctx"] and needs.n_ctx_seq == row["resolved"]["n_ctx_seq"]
    assert needs.flash_attn == row["resolved"]["flash_attn"]
    _, published = stage.calibration(spec.architecture)
    replayed = archs.compute_method(spec) is archs.Compute.GRAPH
    assert published is not None and (replayed or published <= 0.05)
    tolerance = 1e-3 if replayed else published + 1e-3
    assert needs.compute_bytes == pytest.approx(measured["compute_bytes"], rel=min(tolerance, 0.05))


def test_rejected_settings_are_rejected(specs):
    """llama.cpp refused these rows; fitcheck must not give them a number either."""
    from fitcheck.errors import UsageError

    for row in (r for r in DATA["rows"] if "measured" not in r):
        with pytest.raises(UsageError):
            estimate(specs[row["layout"]], _settings(row))
