"""The llama.cpp log reader (fitcheck.exact.logread) on outputs recorded from llama.cpp 0c1e57098's
llama-fit-params (tests/data/exact/README.md says how), and llama.cpp's figures against fitcheck's estimate for
the same layouts: the KV cache and the recurrent state must agree exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fitcheck.errors import SourceError
from fitcheck.estimate import estimate
from fitcheck.exact import to_exact
from fitcheck.exact.logread import MIB_2DP, MiB, first_error, read_log
from fitcheck.model import Settings
from fitcheck.sources.gguf import load_local

DATA = Path(__file__).resolve().parent / "data" / "exact"
ROOT = Path(__file__).resolve().parent.parent


def log(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_dense_llama():
    f = read_log(log("fit-params-llama-3.1-8b.log"))
    assert f.kv_cache_bytes == 256 * MiB and f.kv_lines == 1
    assert f.recurrent_state_bytes == 0
    assert f.output_bytes == round(0.49 * MiB)
    assert f.compute == {"CPU": round(266.50 * MiB)}
    assert [(d.name, d.weights_bytes, d.context_bytes, d.compute_bytes) for d in f.devices] == [
        ("Host", 1752 * MiB, 256 * MiB, round(266.50 * MiB))]


def test_sliding_window_caches_add_up():
    f = read_log(log("fit-params-gemma-3-4b.log"))
    assert f.kv_lines == 2  # the full cache (8192 cells) and the SWA cache (1536 cells)
    assert f.kv_cache_bytes == (64 + 60) * MiB
    assert f.output_bytes == 1 * MiB


def test_recurrent_state():
    f = read_log(log("fit-params-granite-4.0-h-tiny.log"))
    assert f.recurrent_state_bytes == round(27.69 * MiB)
    assert f.kv_cache_bytes == 16 * MiB
    assert f.devices[0].context_bytes == 43 * MiB  # KV + RS, whole MiB


def test_gpu_row_of_the_breakdown_table():
    # No GPU build here: the row is written by common_memory_breakdown_print's template_gpu format
    # ("%s: | %s | %s = %s + (%s = %s + %s + %s) + %s |", common/fit.cpp) with CUDA's names.
    text = ("0.00.900.000 I common_memory_breakdown_print: | memory breakdown [MiB] | total   free    self   model"
            "   context   compute    unaccounted |\n"
            "0.00.900.001 I common_memory_breakdown_print: |   - CUDA0 (H200)       | 143156 = 142000 + ( 5000 ="
            "  4400 +     344 +     256) +        -3844 |\n"
            "0.00.900.002 I common_memory_breakdown_print: |   - Host               |                  "
            "  300 =   282 +       0 +      18                |\n"
            "0.00.800.000 D sched_reserve:      CUDA0 compute buffer size =   256.50 MiB\n"
            "0.00.800.001 D sched_reserve:  CUDA_Host compute buffer size =    18.02 MiB\n")
    f = read_log(text)
    assert [(d.name, d.weights_bytes, d.context_bytes, d.compute_bytes) for d in f.devices] == [
        ("CUDA0 (H200)", 4400 * MiB, 344 * MiB, round(256.50 * MiB)),
        ("Host", 282 * MiB, 0, round(18.02 * MiB))]
    assert f.compute_bytes == round(256.50 * MiB) + round(18.02 * MiB)


def test_refusal_is_explained():
    text = log("fit-params-deepseek-v2-lite-refused.log")
    f = read_log(text)
    assert not f.complete
    assert "different K (q8_0) and V (f16) cache types" in (first_error(text) or "")
    with pytest.raises(SourceError) as err:
        to_exact(text, "llama-fit-params", None, ())
    assert "does not support different K" in (err.value.hint or "")


def test_to_exact_binary_rounding_is_stated():
    exact = to_exact(log("fit-params-llama-3.1-8b.log"), "llama-fit-params 0.5.0-dev", None, ("-c", "8192"))
    assert exact.weights_bytes == 1752 * MiB  # the table's whole MiB
    assert exact.resolution_bytes["weights_bytes"] == MiB
    assert exact.resolution_bytes["kv_cache_bytes"] == MIB_2DP
    assert exact.total_bytes == sum(exact.parts().values())


def test_to_exact_module_log_without_table():
    # the llama_cpp module logs the same lines, without common's breakdown table; llama_model_size is exact
    lines = [line.split(" ", 2)[2] + "\n" for line in log("fit-params-llama-3.1-8b.log").splitlines()
             if "memory_breakdown" not in line and line[:1].isdigit()]
    exact = to_exact("".join(lines), "llama-cpp-python", 1837949184, ())
    assert exact.weights_bytes == 1837949184 and exact.resolution_bytes["weights_bytes"] == 0
    assert [(d.name, d.weights_bytes, d.context_bytes) for d in exact.devices] == [
        ("Host", 1837949184, 256 * MiB)]


@pytest.mark.parametrize(("layout", "logname", "settings"), [
    ("llama-3.1-8b", "fit-params-llama-3.1-8b.log", Settings(ctx=8192)),
    ("gemma-3-4b", "fit-params-gemma-3-4b.log", Settings(ctx=8192)),
    ("granite-4.0-h-tiny", "fit-params-granite-4.0-h-tiny.log", Settings(ctx=8192, parallel=2)),
    ("deepseek-v2-lite", "fit-params-deepseek-v2-lite.log",
     Settings(ctx=4096, cache_type_k="q8_0", cache_type_v="q8_0", flash_attn="on")),
])
def test_llama_cpp_agrees_with_the_estimate(tmp_path, layout, logname, settings):
    sys.path.insert(0, str(ROOT / "benchmarks" / "accuracy"))
    import layout_io

    path = tmp_path / f"{layout}.gguf"
    layout_io.write_gguf(layout_io.load_layout(ROOT / "benchmarks" / "accuracy" / "layouts" / f"{layout}.json"),
                         path, sparse=False)
    needs = estimate(load_local(str(path)), settings)
    f = read_log(log(logname))
    assert needs.kv_cache_bytes == pytest.approx(f.kv_cache_bytes, abs=MIB_2DP * f.kv_lines)
    assert needs.recurrent_state_bytes == pytest.approx(f.recurrent_state_bytes, abs=MIB_2DP)
    assert needs.output_bytes == pytest.approx(f.output_bytes, abs=MIB_2DP)
    table = f.table_weights_bytes
    assert table is not None and 0 <= needs.weights_bytes - table < MiB  # the table rounds down


def test_recorded_module_log():
    # recorded from the llama_cpp module (fitcheck.exact.worker.fit_pass) with llama-server's output limits
    exact = to_exact(log("module-gemma-3-4b.log"), "llama-cpp-python 0.3.36", 1277383936, ())
    assert exact.kv_cache_bytes == 124 * MiB and exact.output_bytes == 1 * MiB
    assert exact.compute_bytes == round(88.52 * MiB)
    assert [(d.name, d.weights_bytes, d.context_bytes, d.compute_bytes) for d in exact.devices] == [
        ("Host", 1277383936, 124 * MiB, round(88.52 * MiB))]
    assert first_error(log("module-gemma-3-4b.log")) is None
