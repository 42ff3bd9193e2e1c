"""Quant quality hints: the data file (data/quant_quality.yaml) and what the quant comparison does with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fitcheck.check import compare_quants
from fitcheck.data import load_yaml
from fitcheck.model import Gpu, Hardware, Settings, Verdict
from fitcheck.quality import bits_per_weight, quality_of, rank_key, tier_bounds
from fitcheck.render.quants import render_quants_json, render_quants_table
from fitcheck.sources.gguf import load_local
from fitcheck.sources.types import Choice, Model, QuantSet
from tests import gguf_builder as synth

GiB = 1024**3
LLAMA3_8B_PARAMETERS = 8030261248
QUANTIZE_CPP = (Path(__file__).resolve().parents[1] / "benchmarks/speed/work/llama_cpp_python-0.3.36/vendor/"
                "llama.cpp/tools/quantize/quantize.cpp")
# weight type, ffn_down/output type, general.file_type id (llama.cpp's LLAMA_FTYPE_MOSTLY_*)
TYPES = {"Q2_K": ("Q2_K", "Q3_K", 10), "Q3_K_M": ("Q3_K", "Q4_K", 12), "Q4_0": ("Q4_0", "Q4_0", 2),
         "IQ4_XS": ("IQ4_XS", "IQ4_XS", 30), "Q4_K_M": ("Q4_K", "Q6_K", 15), "Q8_0": ("Q8_0", "Q8_0", 7)}


def raw() -> dict:
    return load_yaml("quant_quality.yaml")


def test_every_llama_cpp_file_type_has_a_row_with_a_source():
    file_types = set(load_yaml("quant_types.yaml")["file_types"])
    rows = raw()["file_types"]
    assert file_types <= set(rows), file_types - set(rows)
    for name, row in rows.items():
        assert row["source"], name
        assert not ("kld" in row and "tier" in row), f"{name}: a measured row's tier follows from its kld"


def test_tiers_follow_the_measured_kld():
    bounds = [b for _, b in tier_bounds() if b is not None]
    assert bounds == sorted(bounds)
    measured = sorted((r["kld"], name) for name, r in raw()["file_types"].items() if "kld" in r)
    ranks = [quality_of(name).rank for _, name in measured]
    assert ranks == sorted(ranks, reverse=True)  # more loss never ranks higher
    assert quality_of("Q8_0").tier == "lossless" and quality_of("Q4_K_M").tier == "good"
    assert all(quality_of(t).low for t in ("Q2_K", "Q3_K_M", "IQ2_M", "IQ1_S", "IQ3_XXS"))
    assert not any(quality_of(t).low for t in ("Q4_K_M", "IQ4_XS", "Q5_K_M", "Q6_K"))


def test_scoreboard_sizes_agree_with_the_file_type_table():
    """size_gib on LLaMA-3-8B, as bits per weight, against quant_types.yaml's typical figures (both llama.cpp's)."""
    typical = load_yaml("quant_types.yaml")["file_types"]
    checked = 0
    for name, row in raw()["file_types"].items():
        if row.get("imatrix") == "none":
            bpw = row["size_gib"] * GiB * 8 / LLAMA3_8B_PARAMETERS
            assert bpw == pytest.approx(typical[name]["bits_per_weight"], abs=0.02), name
            checked += 1
    assert checked >= 15


@pytest.mark.skipif(not QUANTIZE_CPP.exists(), reason="the vendored llama.cpp source is not unpacked")
def test_ppl_figures_match_llama_quantize():
    """The QUANT_OPTIONS strings of llama-quantize carry the same '+X ppl @ Llama-3-8B' as the scoreboard."""
    text = QUANTIZE_CPP.read_text()
    found = dict(re.findall(r'\{ "(\w+)",\s+LLAMA_FTYPE_\w+,\s+"[^"]*?\+([\d.]+) ppl @ Llama-3-8B"', text))
    rows = raw()["file_types"]
    assert len(found) >= 15
    for name, ppl in found.items():  # quantize.cpp's figures have 4 decimals
        assert rows[name]["ppl_increase"] == pytest.approx(float(ppl), abs=1e-4), name


def test_lookup_prefers_the_header_and_knows_aliases():
    assert quality_of("Q8_0", "BF16").file_type == "Q8_0"  # the header says what the file is
    assert quality_of(None, "UD-Q4_K_XL") is None
    assert quality_of("unknown (99)", "q4_k").file_type == "Q4_K_M"
    assert quality_of(None, "UD-IQ2_M").file_type == "IQ2_M"
    assert quality_of("MXFP4_MOE").tier is None and quality_of("MXFP4_MOE").rank < quality_of("Q2_K").rank
    assert rank_key(quality_of("IQ4_XS"), 100) > rank_key(quality_of("Q4_0"), 200)  # better beats bigger


@pytest.fixture(scope="module")
def quants(tmp_path_factory: pytest.TempPathFactory) -> QuantSet:
    """One Llama-3-8B-shaped model at six types, header-only files."""
    folder = tmp_path_factory.mktemp("quality")
    qs = QuantSet("hf:test/Llama-GGUF", "test/Llama-GGUF", "gguf")
    for label, (weight, down, ftype) in TYPES.items():
        meta, tensors = synth.llama_layout(weight_type=weight, ffn_down_type=down, output_type=down,
                                           embd_type=weight, file_type=ftype, with_vocab=False)
        path = folder / f"Llama-{label}.gguf"
        synth.write_header_only(path, "llama", meta, tensors)
        qs.choices.append(Choice(label, path.name, None, Model(load_local(str(path)), ["-hf", f"test/x:{label}"])))
    return qs


def machine(vram_gib: float) -> Hardware:
    return Hardware("override", (Gpu(0, "GPU 0", int(vram_gib * GiB), int(vram_gib * GiB)),), 64 * GiB, 64 * GiB)


def sizes(q: QuantSet) -> dict[str, int]:
    return {c.quant: c.model.spec.weights_bytes for c in q.choices}


def between(q: QuantSet, fits: str, does_not: str) -> float:
    """A GPU (GiB) that holds `fits` whole at ctx 4096 but not `does_not`: halfway between their needs."""
    needs = {r.quant: r.report.needs.total_bytes for r in compare_quants(q, Settings(ctx=4096), machine(64)).rows}
    return ((needs[fits] + needs[does_not]) / 2 + Settings().margin_bytes) / GiB


def test_best_is_the_best_quality_that_fits_not_the_largest(quants):
    s = sizes(quants)
    assert s["IQ4_XS"] < s["Q4_0"] < s["Q4_K_M"]
    table = compare_quants(quants, Settings(ctx=4096), machine(between(quants, "Q4_0", "Q4_K_M")))
    on_gpu = {r.quant for r in table.rows if r.report.plan.verdict is Verdict.GPU}
    assert {"IQ4_XS", "Q4_0"} <= on_gpu and "Q4_K_M" not in on_gpu
    best = table.rows[table.best]
    assert best.quant == "IQ4_XS"  # 'good' beats the larger 'lossy' Q4_0 (KLD 0.036 vs 0.072)
    assert not any("avoid Q2/Q3" in n for n in table.notes)
    text = render_quants_table(table, width=200, color=False)
    assert "IQ4_XS (good quality) is the best quality that fits fully on the GPU" in text
    header = next(line for line in text.splitlines() if "quant" in line and "bpw" in line)
    assert "quality" in header
    assert re.search(r"Q4_0\s+Q4_0\s+4\.\d\d\s+lossy", text)


def test_only_a_low_tier_fits_says_avoid_q2_q3(quants):
    table = compare_quants(quants, Settings(ctx=4096), machine(between(quants, "Q2_K", "Q3_K_M")))
    assert table.rows[table.best].quant == "Q2_K"
    note = next(n for n in table.notes if "avoid Q2/Q3" in n)
    assert "Q2_K is 'extreme'" in note and "Q4_K_M's 0.031" in note


def test_nothing_on_the_gpu_falls_back_to_the_best_quality_that_runs(quants):
    table = compare_quants(quants, Settings(ctx=4096), machine(1))
    assert table.best is None and table.rows[table.fallback].quant == "Q8_0"
    assert "Q8_0 (lossless quality) is the best quality that runs" in render_quants_table(table, 200, False)


def test_json_rows_carry_the_file_bpw_and_the_types_quality(quants):
    doc = json.loads(render_quants_json(compare_quants(quants, Settings(ctx=4096), machine(24))))
    rows = {r["quant"]: r for r in doc["quants"]}
    q4 = rows["Q4_K_M"]
    spec = next(c.model.spec for c in quants.choices if c.quant == "Q4_K_M")
    assert q4["bits_per_weight"] == pytest.approx(spec.weights_bytes * 8 / spec.parameters, abs=1e-3)
    # this file's own figure (Q4_K with Q6_K ffn_down/output/embeddings mixed in), not the table's 4.9
    assert 4.5 < q4["bits_per_weight"] < 6.5625 and q4["bits_per_weight"] != pytest.approx(4.9, abs=0.05)
    assert q4["quality"]["tier"] == "good" and q4["quality"]["kld"] == pytest.approx(0.031273)
    assert "perplexity" in q4["quality"]["source"] and q4["quality"]["measured_on"] == "LLaMA-3-8B"
    assert rows["Q8_0"]["best"] and bits_per_weight(spec) == pytest.approx(q4["bits_per_weight"], abs=1e-3)
