"""The rough edges a first-time user hits (issue 13, "Broken" 1-10): each test failed before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fitcheck.check import compare_quants, probe
from fitcheck.model import GiB, Settings
from fitcheck.probe.overrides import HardwareOverrides
from fitcheck.render.quants import render_quants_table
from fitcheck.sources.gguf import load_local
from fitcheck.sources.types import Choice, Model, QuantSet
from tests import gguf_builder as synth
from tests import side_files
from tests.test_cli import EXAMPLE, _one_line_error, fitcheck

lora_path = side_files.lora_path  # the shared fixtures
mmproj_path = side_files.mmproj_path  # the shared fixtures


@pytest.fixture(scope="module")
def moe_path(make_gguf):
    meta, tensors = synth.moe_layout(arch="gpt-oss", n_layer=36, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64,
                                     n_expert=128, n_expert_used=4, n_ff_exp=2880, n_vocab=201088,
                                     n_ctx_train=131072, weight_type="Q8_0", expert_type="MXFP4",
                                     output_type="Q8_0", window=128, name="gpt-oss-120b-shaped", file_type=38)
    return make_gguf("gpt-oss-120b", "gpt-oss", meta, tensors)


def piped(*args: str, columns: str | None = None) -> subprocess.CompletedProcess:
    """fitcheck with stdout to a pipe and, unless given, no COLUMNS (as `fitcheck ... | grep` runs it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FITCHECK_DEBUG")}
    env["NO_COLOR"] = "1"
    if columns:
        env["COLUMNS"] = columns
    return subprocess.run([sys.executable, "-m", "fitcheck", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60)


# 1. piped output wraps the run line
@pytest.mark.parametrize("columns", [None, "60"])
def test_run_line_is_never_wrapped(moe_path, columns):
    r = piped(moe_path, "--vram", "8G", "--ram", "64G", "-c", "32k", columns=columns)
    assert r.returncode == 0, r.stderr
    run = [line for line in r.stdout.splitlines() if line.startswith("run")]
    assert len(run) == 1
    doc = json.loads(piped(moe_path, "--vram", "8G", "--ram", "64G", "-c", "32k", "--json").stdout)
    command = doc["plan"]["command"]
    assert run[0].split(None, 1)[1].strip() == command and "--n-cpu-moe" in command and command.endswith("-np 1")


def test_piped_output_is_not_wrapped(moe_path):
    r = piped(moe_path, "--vram", "8G", "--ram", "64G", "-c", "32k")
    notes = [line for line in r.stdout.splitlines() if line.startswith("  • ")]
    assert notes and max(len(line) for line in r.stdout.splitlines()) > 100  # one note per line, whole


# 2. a sweep's exit code depends on list order; the details are for the first context
def test_sweep_exit_code_does_not_depend_on_order(llama8b_path):
    codes = {fitcheck(llama8b_path, "--vram", "8G", "--ram", "64G", "--require", "gpu", "-c", c).returncode
             for c in ("4k,128k", "128k,4k")}
    assert codes == {1}  # 128k does not fit on the GPU: the sweep does not pass, whatever the order
    assert fitcheck(llama8b_path, "--vram", "8G", "--ram", "64G", "--require", "gpu", "-c", "4k,8k").returncode == 0


def test_sweep_says_which_context_the_details_are_for(llama8b_path):
    r = fitcheck(llama8b_path, "--vram", "8G", "--ram", "64G", "-c", "32k,8k")
    assert "details below: ctx 32,768, the first context of the sweep" in r.stdout


# 3. max context: capped at the training context without saying so; total or per slot; -np and the warning
def test_max_context_cap_is_said(llama8b_path):
    doc = json.loads(fitcheck(EXAMPLE, "--vram", "24G", "--ram", "64G", "-c", "32k", "--json").stdout)
    assert doc["plan"]["max_ctx"] == 8192 and doc["plan"]["max_ctx_capped"] is True
    assert any("max context stops at the training context" in n for n in doc["notes"])
    text = fitcheck(EXAMPLE, "--vram", "24G", "--ram", "64G", "-c", "32k").stdout
    assert "(the training context" in text


def test_training_context_is_per_sequence(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "100G", "--ram", "64G", "-c", "256k", "-np", "4",
                              "--json").stdout)
    assert not any("exceeds the training context" in n for n in doc["notes"])  # 64k per sequence
    assert doc["plan"]["max_ctx"] == 4 * 131072 and doc["plan"]["max_ctx_per_sequence"] == 131072
    text = fitcheck(llama8b_path, "--vram", "100G", "--ram", "64G", "-c", "256k", "-np", "4").stdout
    assert "in all (131,072 per slot × 4)" in text


# 4. split models: the command names the first shard
def test_later_shard_gives_a_command_with_the_first(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=4, n_embd=512, n_head=8, n_head_kv=8, n_ff=1024, with_vocab=False)
    first = make_gguf("split", "llama", meta, tensors, split_max_tensors=20)
    later = sorted(first.parent.glob("*.gguf"))[1]
    command = json.loads(fitcheck(later, "--vram", "8G", "--ram", "8G", "--json").stdout)["plan"]["command"]
    assert f"-m {first}" in command and "00002-of" not in command


# 5. the same quant tag in two files: rows tell them apart
def _quant_report(path: Path, files: list[str], vram_gib: int = 8):
    spec = load_local(str(path))
    choices = [Choice("Q4_K_M", f, spec.file_size_bytes, Model(spec, ["-hf", f"org/X:{f}"])) for f in files]
    hw = probe(HardwareOverrides(vram=(vram_gib * GiB,), ram=64 * GiB))
    return compare_quants(QuantSet("hf:org/X", "org/X", "gguf", choices), Settings(ctx=8192), hw)


def test_same_quant_tag_rows_name_their_files(llama8b_path):
    table = render_quants_table(_quant_report(llama8b_path, ["X-Q4_K_M.gguf", "X-Q4_K_M-imat.gguf"]), 160, False)
    assert "Q4_K_M (X-Q4_K_M.gguf)" in table and "Q4_K_M (X-Q4_K_M-imat.gguf)" in table


# 6. units and flags
def test_memory_without_unit_is_a_usage_error(llama8b_path):
    assert "no unit" in _one_line_error(fitcheck(llama8b_path, "--vram", "24"), 2)


def test_ctx_zero_is_the_training_context(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "100G", "--ram", "64G", "-c", "0", "--json").stdout)
    assert doc["settings"]["ctx"] == 131072 and "-c 131072" in doc["plan"]["command"]


def test_n_cpu_moe_on_a_dense_model_is_not_echoed(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "24G", "--ram", "64G", "--n-cpu-moe", "8", "--json").stdout)
    assert "--n-cpu-moe" not in doc["plan"]["command"] and doc["plan"]["n_cpu_moe"] == 0
    assert any("dense model" in n for n in doc["notes"])


def test_cpu_only_command_says_ngl_0(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--cpu-only", "--ram", "64G", "--json").stdout)
    assert " -ngl 0 " in doc["plan"]["command"]


@pytest.mark.parametrize("args", [["--cpu-only", "-ngl", "20"], ["--cpu-only", "--vram", "8G"],
                                  ["--vram", "8G", "-ts", "3,1"], ["--vram", "8G", "--gpu-share", "0.5"]])
def test_contradictions_are_usage_errors(llama8b_path, args):
    _one_line_error(fitcheck(llama8b_path, "--ram", "64G", *args), 2)


def test_ubatch_is_clamped_to_batch(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "24G", "--ram", "64G", "-b", "512", "-ub", "1024",
                              "--json").stdout)
    assert doc["settings"]["ubatch"] == 512 and "-ub 1024" not in doc["plan"]["command"]
    assert any("-ub 1024 is larger than -b 512" in n for n in doc["notes"])


# 7. "does not fit" says what is short, by how much, and the nearest plan
def test_does_not_fit_says_the_shortfall_and_the_nearest_plan(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--cpu-only", "--ram", "8G", "-c", "128k", "--json").stdout)
    assert doc["plan"]["verdict"] == "none" and doc["plan"]["shortfall_bytes"] > 0
    assert any(s.startswith("runs at -c ") for s in doc["plan"]["suggestions"])
    text = fitcheck(llama8b_path, "--cpu-only", "--ram", "8G", "-c", "128k").stdout
    run = next(line for line in text.splitlines() if line.startswith("run"))
    assert "llama-server" not in run and "short" in text and "nearest" in text


def test_nothing_can_fit_says_so(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--cpu-only", "--ram", "2G", "--json").stdout)
    assert any(s.startswith("nothing at any context") for s in doc["plan"]["suggestions"])
    # the placement shown is the nearest one, not everything forced onto one device
    cpu = doc["plan"]["devices"][-1]
    assert cpu["total_bytes"] - cpu["capacity_bytes"] == doc["plan"]["shortfall_bytes"]


# 9. narrow terminals: the quant table keeps its figures and whole verdicts
def test_quant_table_at_60_columns(llama8b_path):
    report = _quant_report(llama8b_path, ["X-Q4_K_M.gguf"], vram_gib=4)
    table = render_quants_table(report, 60, False)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 60
    row = next(line for line in lines if "Q4_K_M" in line and "offload" in line)
    assert "partial offload" in row and f"{report.rows[0].report.needs.total_bytes / GiB:.2f}" in row


# 10. unknown architectures and side files passed as the model
def test_unknown_architecture_is_a_marked_guess(make_gguf):
    meta, tensors = synth.llama_layout(arch="fooformer", n_layer=4, n_embd=512, n_head=8, n_head_kv=8, n_ff=1024,
                                       with_vocab=False)
    path = make_gguf("foo", "fooformer", meta, tensors)
    r = fitcheck(path, "--vram", "24G", "--ram", "64G", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["model"]["known_architecture"] is False
    assert any("not one llama.cpp knows" in n and "guess" in n for n in doc["notes"])
    assert "a guess" in fitcheck(path, "--vram", "24G", "--ram", "64G").stdout


def test_architecture_llama_cpp_knows_but_fitcheck_has_no_rules_for_is_estimated(make_gguf):
    """phi2 loads in llama.cpp: the generic rule applies with a note, and the verdict counts."""
    meta, tensors = synth.llama_layout(arch="phi2", n_layer=4, n_embd=512, n_head=8, n_head_kv=8, n_ff=1024,
                                       with_vocab=False)
    path = make_gguf("phi2", "phi2", meta, tensors)
    r = fitcheck(path, "--vram", "24G", "--ram", "64G", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["model"]["known_architecture"] is True
    assert any("not in fitcheck's rules" in n for n in doc["notes"])


def test_mmproj_as_the_model_says_what_it_is(mmproj_path):
    line = _one_line_error(fitcheck(mmproj_path, "--vram", "8G"), 3)
    assert "multimodal projector" in line and "--mmproj" in line


def test_lora_as_the_model_says_what_it_is(lora_path):
    line = _one_line_error(fitcheck(lora_path, "--vram", "8G"), 3)
    assert "LoRA adapter" in line and "--lora" in line
