"""Planner options through the command line: sweeps, MoE, -ngl/-ot/-ts as given, RPC, unified memory."""

from __future__ import annotations

import json

import pytest

from tests import gguf_builder as synth
from tests.test_cli import _one_line_error, fitcheck


@pytest.fixture(scope="module")
def moe_path(make_gguf):
    meta, tensors = synth.moe_layout(arch="gpt-oss", n_layer=36, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64,
                                     n_expert=128, n_expert_used=4, n_ff_exp=2880, n_vocab=201088,
                                     n_ctx_train=131072, weight_type="Q8_0", expert_type="MXFP4",
                                     output_type="Q8_0", window=128, name="gpt-oss-120b-shaped", file_type=38)
    return make_gguf("gpt-oss-120b", "gpt-oss", meta, tensors)


def test_context_sweep_changes_verdict_at_the_right_row(llama8b_path):
    r = fitcheck(llama8b_path, "--vram", "8G", "--ram", "64G", "-c", "4k,8k,16k,32k,64k,128k", "--json")
    doc = json.loads(r.stdout)
    verdicts = [(row["ctx"], row["verdict"]) for row in doc["sweep"]]
    # 8B Q4_K_M: 4.8 GiB weights + 128 KiB of f16 KV per token; 7.5 GiB usable: 16k fits, 32k does not
    assert verdicts == [(4096, "gpu"), (8192, "gpu"), (16384, "gpu"), (32768, "offload"), (65536, "offload"),
                        (131072, "offload")]
    totals = [row["total_bytes"] for row in doc["sweep"]]
    assert totals == sorted(totals)
    assert doc["settings"]["ctx"] == 4096 and 16384 <= doc["plan"]["max_ctx"] == doc["plan"]["max_ctx_gpu"] < 32768


def test_sweep_table(llama8b_path):
    r = fitcheck(llama8b_path, "--vram", "8G", "--ram", "64G", "-c", "8k,32k")
    assert "Context sweep" in r.stdout and "32,768" in r.stdout and "offload" in r.stdout


def test_moe_plan_on_8gb(moe_path):
    r = fitcheck(moe_path, "--vram", "8G", "--ram", "64G", "-c", "8k", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0
    assert doc["plan"]["verdict"] == "offload" and doc["plan"]["gpu_layers"] == 37
    assert 0 < doc["plan"]["n_cpu_moe"] <= 36 and "--n-cpu-moe" in doc["plan"]["command"]


def test_moe_table_names_the_expert_offload(moe_path):
    r = fitcheck(moe_path, "--vram", "8G", "--ram", "64G", "-c", "8k")
    assert "experts of" in r.stdout and "blocks in RAM" in r.stdout


def test_user_ngl_and_ot_are_honoured(llama8b_path):
    r = fitcheck(llama8b_path, "--vram", "24G", "--ram", "64G", "-ngl", "20", "-ot", r"blk\.2[0-9]\.ffn_up=CPU",
                 "--json")
    doc = json.loads(r.stdout)
    assert doc["plan"]["gpu_layers"] == 20 and doc["plan"]["verdict"] == "offload"
    assert "-ngl 20" in doc["plan"]["command"] and r"blk\.2[0-9]\.ffn_up=CPU" in doc["plan"]["command"]
    assert doc["settings"]["tensor_overrides"] == [r"blk\.2[0-9]\.ffn_up=CPU"]


def test_two_gpus_with_split(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "24G,24G", "--ram", "64G", "-ts", "3,1", "--json").stdout)
    gpu0, gpu1, _ = doc["plan"]["devices"]
    assert gpu0["weights_bytes"] > 2 * gpu1["weights_bytes"] and "-ts 3,1" in doc["plan"]["command"]


def test_rpc_devices(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "4G", "--rpc", "10.0.0.2:50052=4G", "--ram", "64G",
                              "--json").stdout)
    names = [d["name"] for d in doc["plan"]["devices"]]
    assert names[0].startswith("RPC[10.0.0.2:50052]") and "--rpc 10.0.0.2:50052" in doc["plan"]["command"]
    assert doc["hardware"]["gpus"][0]["remote"] == "10.0.0.2:50052"


def test_unified_memory(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--unified", "--ram", "16G", "--json").stdout)
    assert doc["hardware"]["unified_memory"] and doc["plan"]["verdict"] == "gpu"
    assert doc["hardware"]["gpus"][0]["total_bytes"] == int(16 * 2**30 * 2 / 3)


@pytest.mark.parametrize("args", [["-ts", "a,b"], ["-ot", "noequals"], ["--rpc", "host-without-port=4G"],
                                  ["--gpu-share", "1.5"], ["-ot", "ffn=CUDA9"], ["-c", "8k,,x"]])
def test_bad_planner_options_exit_2(llama8b_path, args):
    _one_line_error(fitcheck(llama8b_path, "--vram", "8G", *args), 2)
