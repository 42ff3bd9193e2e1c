"""Placement and verdicts, counted the way llama.cpp counts -ngl."""

from __future__ import annotations

import pytest

from fitcheck.estimate import estimate
from fitcheck.model import GiB, Gpu, Hardware, Settings
from fitcheck.plan import layer_devices, place, plan


def hw(*vram_gib: float, ram_gib: float = 64) -> Hardware:
    gpus = tuple(Gpu(i, f"GPU {i}", int(v * GiB), int(v * GiB)) for i, v in enumerate(vram_gib))
    return Hardware("override", gpus, int(ram_gib * GiB), int(ram_gib * GiB))


def run(spec, settings, hardware):
    return plan(spec, estimate(spec, settings), settings, hardware, ["-m", "model.gguf"])


def test_layer_devices_counts_output_as_last_layer():
    assert layer_devices(4, 5, [10]) == [0, 0, 0, 0, 0]
    assert layer_devices(4, 4, [10]) == [0, 0, 0, 0, None]  # all blocks, output on CPU
    assert layer_devices(4, 2, [10]) == [None, None, 0, 0, None]
    assert layer_devices(4, 0, [10]) == [None] * 5
    assert layer_devices(4, 5, []) == [None] * 5


def test_layer_devices_split_by_capacity():
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
    gpu = p.devices[0]
    assert gpu.total_bytes <= gpu.capacity_bytes
    needs = estimate(llama8b, settings)
    one_more = place(llama8b, needs, settings, hw(4), p.gpu_layers + 1, 0)
    assert not one_more.fits  # the largest -ngl that fits


def test_cpu_only(llama8b):
    p = run(llama8b, Settings(ctx=8192), hw(ram_gib=32))
    assert p.verdict == "cpu" and p.gpu_layers == 0 and "-ngl" not in p.command


def test_does_not_fit(llama70b):
    p = run(llama70b, Settings(ctx=8192), hw(8, ram_gib=16))
    assert p.verdict == "none" and p.max_ctx is None


def test_70b_on_24gb_offloads(llama70b):
    p = run(llama70b, Settings(ctx=8192), hw(24, ram_gib=64))
    assert p.verdict == "offload" and 30 < p.gpu_layers < 60


def test_user_ngl_is_evaluated_as_given(llama8b):
    p = run(llama8b, Settings(ctx=8192, gpu_layers=10), hw(24))
    assert p.gpu_layers == 10 and p.verdict == "offload"


def test_parts_are_neither_lost_nor_doubled(llama8b):
    settings = Settings(ctx=8192)
    needs = estimate(llama8b, settings)
    for ngl in (0, 5, 32, 33):
        p = place(llama8b, needs, settings, hw(6, 2), ngl, 0)
        assert sum(d.weights_bytes for d in p.devices) == needs.weights_bytes
        assert sum(d.kv_cache_bytes for d in p.devices) == needs.kv_cache_bytes


def test_max_ctx_keeps_the_verdict(llama8b):
    p = run(llama8b, Settings(ctx=8192), hw(8))
    assert p.verdict == "gpu" and p.max_ctx is not None and p.max_ctx % 256 == 0
    bigger = run(llama8b, Settings(ctx=p.max_ctx + 256), hw(8))
    at_max = run(llama8b, Settings(ctx=p.max_ctx), hw(8))
    assert at_max.verdict == "gpu" and bigger.verdict != "gpu"


def test_free_memory_not_total_is_the_capacity(llama8b):
    busy = Hardware("probe", (Gpu(0, "busy", 24 * GiB, 3 * GiB),), 64 * GiB, 64 * GiB)
    assert run(llama8b, Settings(ctx=8192), busy).verdict == "offload"


@pytest.mark.parametrize("kv", ["q8_0", "q4_0"])
def test_command_carries_cache_types(llama8b, kv):
    p = run(llama8b, Settings(ctx=8192, cache_type_k=kv, cache_type_v=kv, flash_attn="on"), hw(24))
    assert f"-ctk {kv}" in p.command and f"-ctv {kv}" in p.command and "-fa on" in p.command
