"""Placement and verdicts, counted the way llama.cpp counts -ngl, --n-cpu-moe, -ot, -ts and RPC devices."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fitcheck.errors import UsageError
from fitcheck.estimate import estimate
from fitcheck.model import GiB, Gpu, Hardware, Settings
from fitcheck.placement import layer_devices, layer_loads, place, targets
from fitcheck.plan import best_placement, plan


def hw(*vram_gib: float, ram_gib: float = 64, rpc: tuple[tuple[str, float], ...] = ()) -> Hardware:
    remote = tuple(Gpu(i, f"rpc {host}", int(v * GiB), int(v * GiB), remote=host) for i, (host, v) in enumerate(rpc))
    gpus = tuple(Gpu(i, f"GPU {i}", int(v * GiB), int(v * GiB)) for i, v in enumerate(vram_gib))
    return Hardware("override", remote + gpus, int(ram_gib * GiB), int(ram_gib * GiB))


def run(spec, settings, hardware):
    return plan(spec, estimate(spec, settings), settings, hardware, ["-m", "model.gguf"])


def place_at(spec, settings, hardware, ngl, n_cpu_moe=0):
    needs = estimate(spec, settings)
    tgts = targets(hardware, settings)
    return place(spec, needs, settings, tgts, layer_loads(spec, needs, settings, [t.name for t in tgts]), ngl,
                 n_cpu_moe)


def test_layer_devices_counts_output_as_last_layer():
    assert layer_devices(4, 5, [10]) == [0, 0, 0, 0, 0]
    assert layer_devices(4, 4, [10]) == [0, 0, 0, 0, None]  # all blocks, output on CPU
    assert layer_devices(4, 2, [10]) == [None, None, 0, 0, None]
    assert layer_devices(4, 0, [10]) == [None] * 5
    assert layer_devices(4, 5, []) == [None] * 5


def test_layer_devices_split_by_share():
    assert layer_devices(4, 5, [10, 10]) == [0, 0, 0, 1, 1]
    assert layer_devices(4, 5, [30, 10]) == [0, 0, 0, 0, 1]


def test_8b_fits_a_12gb_gpu(llama8b):
    p = run(llama8b, Settings(ctx=8192), hw(12))
    assert p.verdict == "gpu" and p.gpu_layers == 33
    assert "-ngl 33" in p.command and "-c 8192" in p.command


def test_8b_partial_offload_on_4gb(llama8b):
    settings = Settings(ctx=8192)
    p = run(llama8b, settings, hw(4))
    assert p.verdict == "offload" and 0 < p.gpu_layers < 33
    assert p.devices[0].total_bytes <= p.devices[0].capacity_bytes
    assert not place_at(llama8b, settings, hw(4), p.gpu_layers + 1).fits  # the largest -ngl that fits


def test_cpu_only(llama8b):
    p = run(llama8b, Settings(ctx=8192), hw(ram_gib=32))
    # -ngl 0 said explicitly: a GPU build of llama.cpp offloads by default (issue 13 #6)
    assert p.verdict == "cpu" and p.gpu_layers == 0 and "-ngl 0" in p.command


def test_does_not_fit(llama70b):
    p = run(llama70b, Settings(ctx=8192), hw(8, ram_gib=16))
    assert p.verdict == "none" and p.max_ctx is None


def test_70b_on_one_24gb_gpu_offloads_exact_ngl(llama70b):
    settings = Settings(ctx=8192)
    p = run(llama70b, settings, hw(24))
    assert p.verdict == "offload" and p.gpu_layers == 42  # 42 x 0.538 GiB + compute + reserve <= 23.5 GiB
    assert place_at(llama70b, settings, hw(24), 42).fits and not place_at(llama70b, settings, hw(24), 43).fits
    assert "-ngl 42" in p.command


def test_70b_on_two_24gb_gpus_splits(llama70b):
    p = run(llama70b, Settings(ctx=8192), hw(24, 24))
    assert p.verdict == "gpu" and p.gpu_layers == 81
    gpu0, gpu1, _ = p.devices
    assert gpu0.weights_bytes > 0 and gpu1.weights_bytes > 0
    assert abs(gpu0.weights_bytes - gpu1.weights_bytes) < 0.1 * gpu0.weights_bytes
    assert gpu0.overhead_bytes == gpu1.overhead_bytes == Settings().gpu_reserve_bytes
    # llama-server reserves one logits row per sequence (since b9460): the output device's peak is a layer's
    assert gpu1.compute_bytes >= gpu0.compute_bytes
    old = run(llama70b, Settings(ctx=8192, llama_cpp_build=9000), hw(24, 24))
    assert old.devices[1].compute_bytes > old.devices[0].compute_bytes  # 512 rows of logits on the output device


def test_70b_with_no_vram_runs_on_cpu(llama70b):
    p = run(llama70b, Settings(ctx=8192), hw(0, ram_gib=64))
    assert p.verdict == "cpu" and p.gpu_layers == 0


def test_tensor_split_is_honoured(llama70b):
    p = run(llama70b, Settings(ctx=8192, tensor_split=(3.0, 1.0)), hw(48, 48))
    assert p.devices[0].weights_bytes > 2.5 * p.devices[1].weights_bytes
    assert "-ts 3,1" in p.command


def test_user_ngl_is_evaluated_as_given(llama8b):
    p = run(llama8b, Settings(ctx=8192, gpu_layers=10), hw(24))
    assert p.gpu_layers == 10 and p.verdict == "offload"
    too_many = run(llama8b, Settings(ctx=8192, gpu_layers=33), hw(2))
    assert too_many.verdict == "none" and too_many.gpu_layers == 33


def test_qwen3_30b_a3b_on_8gb_keeps_experts_in_ram(qwen3_30b_a3b):
    p = run(qwen3_30b_a3b, Settings(ctx=8192), hw(8, ram_gib=64))
    assert p.verdict == "offload" and p.gpu_layers == 49 and 0 < p.n_cpu_moe <= 48
    assert f"--n-cpu-moe {p.n_cpu_moe}" in p.command
    assert not place_at(qwen3_30b_a3b, Settings(ctx=8192), hw(8), 49, p.n_cpu_moe - 1).fits


def test_gpt_oss_120b_on_8gb(gpt_oss_120b):
    p = run(gpt_oss_120b, Settings(ctx=8192), hw(8, ram_gib=64))
    assert p.verdict == "offload" and p.n_cpu_moe > 0 and p.gpu_layers == 37
    gpu = p.devices[0]
    assert gpu.total_bytes <= gpu.capacity_bytes
    # attention and KV on the GPU beat plain -ngl: more bytes read per token from VRAM
    settings = Settings(ctx=8192)
    chosen = best_placement(gpt_oss_120b, estimate(gpt_oss_120b, settings), settings, hw(8, ram_gib=64))
    plain = best_placement(gpt_oss_120b, estimate(gpt_oss_120b, settings), replace(settings, n_cpu_moe=0),
                           hw(8, ram_gib=64))
    assert chosen.gpu_bytes_per_token > plain.gpu_bytes_per_token


def test_moe_on_too_little_ram(gpt_oss_120b):
    assert run(gpt_oss_120b, Settings(ctx=8192), hw(8, ram_gib=16)).verdict == "none"


def test_cpu_moe_flag(qwen3_30b_a3b):
    p = run(qwen3_30b_a3b, Settings(ctx=8192, n_cpu_moe=10**6), hw(8))
    assert p.n_cpu_moe == 48 and "-cmoe" in p.command


def test_tensor_override_first_match_wins(llama8b):
    settings = Settings(ctx=8192, tensor_overrides=((r"blk\.(0|1)\.ffn_", "CPU"), (r"blk\.0\.", "CUDA0")))
    p = place_at(llama8b, settings, hw(24), 33)
    ffn01 = sum(t.size_bytes for t in llama8b.tensors if t.layer in (0, 1) and ".ffn_" in t.name)
    embd = sum(t.size_bytes for t in llama8b.tensors if t.name == "token_embd.weight")
    assert p.devices[-1].weights_bytes == ffn01 + embd
    assert p.partial
    plan_ = run(llama8b, settings, hw(24))
    assert plan_.verdict == "offload" and "-ot" in plan_.command


def test_unknown_override_device(llama8b):
    with pytest.raises(UsageError, match="unknown device"):
        place_at(llama8b, Settings(tensor_overrides=(("ffn", "CUDA7"),)), hw(24), 33)


def test_rpc_devices_come_first(llama405b):
    hardware = hw(80, ram_gib=256, rpc=(("10.0.0.2:50052", 80), ("10.0.0.3:50052", 80), ("10.0.0.4:50052", 80)))
    p = run(llama405b, Settings(ctx=8192), hardware)
    assert p.verdict == "gpu" and p.gpu_layers == 127
    names = [d.name for d in p.devices]
    assert names[0].startswith("RPC[10.0.0.2:50052]") and names[3] == "GPU 0" and names[4] == "CPU (RAM)"
    assert all(d.weights_bytes > 0 and d.total_bytes <= d.capacity_bytes for d in p.devices[:4])
    # the local GPU holds the output layer (for 405B the layer stage already dominates, so equal here)
    assert p.devices[3].compute_bytes >= p.devices[0].compute_bytes
    assert "--rpc 10.0.0.2:50052,10.0.0.3:50052,10.0.0.4:50052" in p.command


def test_parts_are_neither_lost_nor_doubled(llama8b):
    settings = Settings(ctx=8192)
    needs = estimate(llama8b, settings)
    for ngl in (0, 5, 32, 33):
        p = place_at(llama8b, settings, hw(6, 2), ngl)
        tied = needs.tied_output_copy_bytes if ngl == 33 else 0
        assert sum(d.weights_bytes for d in p.devices) == needs.weights_bytes + tied
        assert sum(d.kv_cache_bytes for d in p.devices) == needs.kv_cache_bytes


def test_max_ctx_keeps_the_verdict(llama8b):
    p = run(llama8b, Settings(ctx=8192), hw(8))
    assert p.verdict == "gpu" and p.max_ctx is not None and p.max_ctx % 256 == 0 and p.max_ctx == p.max_ctx_gpu
    assert run(llama8b, Settings(ctx=p.max_ctx), hw(8)).verdict == "gpu"
    assert run(llama8b, Settings(ctx=p.max_ctx + 256), hw(8)).verdict != "gpu"


def test_max_ctx_for_offload_is_larger_than_for_gpu(llama8b):
    p = run(llama8b, Settings(ctx=8192), hw(8, ram_gib=64))
    assert p.verdict == "gpu"
    small = run(llama8b, Settings(ctx=65536), hw(8, ram_gib=64))
    assert small.verdict == "offload" and small.max_ctx > small.max_ctx_gpu


def test_free_memory_not_total_is_the_capacity(llama8b):
    busy = Hardware("probe", (Gpu(0, "busy", 24 * GiB, 3 * GiB),), 64 * GiB, 64 * GiB)
    assert run(llama8b, Settings(ctx=8192), busy).verdict == "offload"


def test_quantized_kv_suggestion(llama8b):
    p = run(llama8b, Settings(ctx=32768), hw(9.5))
    assert p.verdict == "offload"
    assert p.suggestions and "-ctk q8_0" in p.suggestions[0] and "GiB" in p.suggestions[0]


def test_unified_memory_shares_one_pool(llama70b):
    def mac(available_gib):
        gpu = Gpu(0, "Apple GPU (unified)", 48 * GiB, 48 * GiB)
        return Hardware("override", (gpu,), 64 * GiB, int(available_gib * GiB), unified_memory=True)

    roomy = run(llama70b, Settings(ctx=8192), mac(60))
    assert roomy.verdict == "gpu" and "Metal" not in roomy.devices[0].name
    assert sum(d.total_bytes for d in roomy.devices) <= 60 * GiB - Settings().margin_bytes
    # other programs hold RAM: the GPU's share no longer matters, the pool is too small for anything
    assert run(llama70b, Settings(ctx=8192), mac(40)).verdict == "none"


@pytest.mark.parametrize("kv", ["q8_0", "q4_0"])
def test_command_carries_cache_types(llama8b, kv):
    p = run(llama8b, Settings(ctx=8192, cache_type_k=kv, cache_type_v=kv, flash_attn="on"), hw(24))
    assert f"-ctk {kv}" in p.command and f"-ctv {kv}" in p.command and "-fa on" in p.command
