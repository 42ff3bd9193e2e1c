"""A whole llama-server command line: pasted after --, with --mmproj, -md and --lora, checked against figures
worked out by hand from the files' headers; --help, --version, --command-only, whole-flag errors."""

from __future__ import annotations

import json

import pytest

from fitcheck.command_line import translate
from fitcheck.errors import UsageError
from tests import side_files
from tests.test_cli import _one_line_error, fitcheck

draft_path = side_files.draft_path  # the shared fixtures
lora_path = side_files.lora_path  # the shared fixtures
mmproj_path = side_files.mmproj_path  # the shared fixtures

HW = ["--vram", "24G", "--ram", "64G"]

# By hand, from tests/side_files.py (F16 = 2 bytes per element):
# projector: patch_embd 14*14*3*1024 = 602,112 el; per block qkv 1024*3072 + up 1024*4096 + down 4096*1024
# = 11,534,336 el, 2 blocks; mm.0 1024*4096 = 4,194,304 el -> (602,112 + 23,068,672 + 4,194,304) * 2 bytes
MMPROJ_WEIGHTS = 55_730_176
# clip compute (flash attention on): 4 bytes * n_pos * (4 * n_embd + n_ff), n_pos = (224/14)^2 + 1 = 257
MMPROJ_COMPUTE = 4 * 257 * (4 * 1024 + 4096)  # 8,421,376
# LoRA rank 16 on attn_q (4096->4096) and attn_v (4096->1024) of 32 blocks:
# (4096*16 + 16*4096 + 4096*16 + 16*1024) * 2 bytes = 425,984 per block
LORA_BYTES = 32 * 425_984  # 13,631,488
# draft: token_embd and output 512*128256 each; per block the 4 attention matrices of 512*512, gate/up/down
# of 512*1024 and two norms of 512; output_norm 512:
# (2 * 65,667,072 + 4 * (4 * 262,144 + 3 * 524,288 + 2 * 512) + 512) * 2 bytes
DRAFT_WEIGHTS = 283_658_240
DRAFT_OUTPUT_LAYER = (512 * 128256 + 512) * 2  # output + output_norm go with -ngld's last "layer"
DRAFT_BLOCKS = 4 * (4 * 262_144 + 3 * 524_288 + 2 * 512) * 2
# draft KV: llama-server gives the draft the context per slot: -c 32768 over the default 4 slots = 8192
# cells, f16, 4 blocks of K and V rows of 8 heads * 64 = 512 elements: 8192 * 4 * 2 * 512 * 2 bytes
DRAFT_KV = 8192 * 4 * 2 * 512 * 2  # 67,108,864


def pasted(main: object, *extra: str, own: tuple[str, ...] = tuple(HW)) -> dict:
    r = fitcheck(*own, "--json", "--", "llama-server", "-m", str(main), "-c", "32k", "-ngl", "99", "--port", "8080",
                 "--jinja", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_pasted_command_with_mmproj_draft_and_lora(llama8b_path, mmproj_path, draft_path, lora_path):
    doc = pasted(llama8b_path, "--mmproj", str(mmproj_path), "-md", str(draft_path), "--lora", str(lora_path))
    # llama-server's own defaults where the command says nothing: 4 unified slots
    assert doc["settings"]["parallel"] == 4 and doc["settings"]["kv_unified"] is True
    assert doc["settings"]["ctx"] == 32768 and doc["plan"]["gpu_layers"] == 33
    extras = {e["kind"]: e for e in doc["extras"]}
    assert extras["mmproj"]["weights_bytes"] == MMPROJ_WEIGHTS
    assert extras["mmproj"]["compute_bytes"] == MMPROJ_COMPUTE
    assert extras["mmproj"]["gpu_bytes"] == MMPROJ_WEIGHTS + MMPROJ_COMPUTE and extras["mmproj"]["host_bytes"] == 0
    assert extras["lora"]["weights_bytes"] == LORA_BYTES
    draft = extras["draft"]
    assert draft["weights_bytes"] == DRAFT_WEIGHTS and draft["kv_cache_bytes"] == DRAFT_KV
    assert draft["gpu_bytes"] + draft["host_bytes"] == draft["total_bytes"]
    draft_compute_on_gpu = draft["gpu_bytes"] - (DRAFT_BLOCKS + DRAFT_OUTPUT_LAYER + DRAFT_KV)
    assert 0 < draft_compute_on_gpu < draft["compute_bytes"]
    gpu = doc["plan"]["devices"][0]
    assert gpu["extra_bytes"] == MMPROJ_WEIGHTS + MMPROJ_COMPUTE + draft["gpu_bytes"]
    # the LoRA tensors follow their layers: every block is on the GPU, so all of them are there
    without = pasted(llama8b_path, "--mmproj", str(mmproj_path), "-md", str(draft_path))
    assert gpu["weights_bytes"] - without["plan"]["devices"][0]["weights_bytes"] == LORA_BYTES
    command = doc["plan"]["command"]
    for part in (f"--mmproj {mmproj_path}", f"-md {draft_path}", f"--lora {lora_path}", "-np 4 --kv-unified"):
        assert part in command


def test_draft_options(llama8b_path, draft_path):
    doc = pasted(llama8b_path, "-md", str(draft_path), "-cd", "4096", "-ngld", "0")
    draft = doc["extras"][0]
    assert draft["kv_cache_bytes"] == 4096 * 4 * 2 * 512 * 2 and draft["gpu_bytes"] == 0
    assert "-ngld 0 -cd 4096" in doc["plan"]["command"]


def test_extras_can_tip_the_verdict(llama8b_path, mmproj_path, draft_path):
    # 16k context on an 8 GiB card (7.5 GiB usable): the model alone needs 7.30 GiB there, the projector and
    # the draft another 0.57 GiB on the main GPU -> some layers must go to RAM
    args = [llama8b_path, "--vram", "8G", "--ram", "64G", "-c", "16k", "--json"]
    base = json.loads(fitcheck(*args).stdout)
    withx = json.loads(fitcheck(*args, "--mmproj", str(mmproj_path), "-md", str(draft_path)).stdout)
    assert base["plan"]["verdict"] == "gpu" and withx["plan"]["verdict"] == "offload"
    gpu = withx["plan"]["devices"][0]
    assert gpu["extra_bytes"] > 0 and gpu["total_bytes"] <= gpu["capacity_bytes"]


def test_pasted_command_without_context_uses_the_training_context(llama8b_path):
    r = fitcheck("--vram", "100G", "--ram", "64G", "--json", "--", "llama-cli", "-m", str(llama8b_path))
    doc = json.loads(r.stdout)
    assert doc["settings"]["ctx"] == 131072 and doc["settings"]["parallel"] == 1  # llama-cli: one sequence


def test_pasted_hf_reference():
    assert translate("llama-server", ["-hf", "org/repo:Q4_K_M", "-c", "8192"])[0] == "hf:org/repo:Q4_K_M"
    assert translate("llama-server", ["-hf", "org/repo", "-hff", "m-Q8_0.gguf"])[0] == "hf:org/repo/m-Q8_0.gguf"
    assert translate("llama-server", ["-hf", "org/a:Q4_K_M", "-hfd", "org/b:Q8_0"])[1][:2] == ["-md", "hf:org/b:Q8_0"]
    ref, opts = translate("/opt/llama.cpp/build/bin/llama-server", ["-m", "x.gguf", "-fa", "-np", "2"])
    assert ref == "x.gguf" and opts == ["-fa", "on", "-np", "2", "-c", "0"]


@pytest.mark.parametrize("argv,word", [(["-m", "x.gguf", "--frobnicate"], "--frobnicate"),
                                       (["-c", "8192"], "names no model"),
                                       (["-m", "x.gguf", "--rpc", "h:1"], "--rpc")])
def test_pasted_command_errors(argv, word):
    with pytest.raises(UsageError, match=word):
        translate("llama-server", argv)


def test_pasted_unknown_flag_exits_2(llama8b_path):
    line = _one_line_error(fitcheck("--", "llama-server", "-m", str(llama8b_path), "--frobnicate"), 2)
    assert "--frobnicate" in line


def test_option_given_twice_is_refused(llama8b_path):
    line = _one_line_error(fitcheck("-c", "8k", "--", "llama-server", "-m", str(llama8b_path), "-c", "4k"), 2)
    assert "-c" in line


def test_no_kv_offload_keeps_the_cache_in_ram(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, *HW, "-c", "8k", "-nkvo", "--json").stdout)
    gpu, cpu = doc["plan"]["devices"]
    assert gpu["kv_cache_bytes"] == 0 and cpu["kv_cache_bytes"] == 1_073_741_824
    assert "-nkvo" in doc["plan"]["command"]


def test_split_mode_none_uses_the_main_gpu(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, "--vram", "24G,24G", "--ram", "64G", "-sm", "none", "-mg", "1",
                              "--json").stdout)
    assert len(doc["plan"]["devices"]) == 2 and doc["plan"]["devices"][0]["name"].startswith("GPU 1")
    assert "-sm none -mg 1" in doc["plan"]["command"]


def test_device_none_plans_for_the_cpu(llama8b_path):
    doc = json.loads(fitcheck(llama8b_path, *HW, "--device", "none", "--json").stdout)
    assert doc["plan"]["verdict"] == "cpu" and "--device none" in doc["plan"]["command"]


def test_unknown_flag_is_named_whole(llama8b_path):
    line = _one_line_error(fitcheck(llama8b_path, "-nkvox"), 2)
    assert "-nkvox" in line


def test_version():
    r = fitcheck("--version")
    assert r.returncode == 0 and r.stdout.startswith("fitcheck ")


def test_help_is_grouped_with_examples():
    r = fitcheck("--help")
    assert r.returncode == 0
    for text in ("Model", "Context & cache", "Placement", "Hardware", "Output", "Examples", "Exit codes",
                 "HF_HUB_OFFLINE", "-- llama-server"):
        assert text in r.stdout, text


def test_command_only(llama8b_path):
    r = fitcheck(llama8b_path, *HW, "--command-only")
    assert r.returncode == 0 and r.stdout.count("\n") == 1 and r.stdout.startswith("llama-server -m ")
    none = fitcheck(llama8b_path, "--cpu-only", "--ram", "2G", "--command-only")
    assert none.returncode == 1 and none.stdout == "" and "does not fit" in none.stderr


def test_pasted_without_dashes_keeps_fitcheck_options(llama8b_path):
    # fitcheck's own options (llama.cpp has none of these) may follow the pasted command
    r = fitcheck("llama-server", "-m", str(llama8b_path), "-c", "4k", "--vram", "8G", "--ram", "64G",
                 "--command-only")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"llama-server -m {llama8b_path} -c 4096 -ngl 33 -fa on -np 4 --kv-unified\n"
