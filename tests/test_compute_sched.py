"""The scheduler replay (fitcheck.compute.sched): which backend's compute buffer holds what, on GPU builds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fitcheck import archs, compute
from fitcheck.compute import galloc, sched
from fitcheck.context import resolve_context
from fitcheck.estimate import estimate
from fitcheck.model import Settings


def _graph(spec, settings: Settings):
    c = resolve_context(spec, settings)
    kinds, _ = archs.layer_kinds(spec)
    flash_attn = settings.flash_attn != "off"
    return compute.build_graph(spec, c, settings, flash_attn, kinds), c


def _align(n: int, to: int = sched.HOST_ALIGNMENT) -> int:
    return -(-n // to) * to


def test_one_backend_is_the_single_buffer_replay(llama8b):
    g, _ = _graph(llama8b, Settings(ctx=4096, flash_attn="on"))
    assert sched.buffer_sizes(g, 0, lambda t: 0) == [galloc.buffer_size(g.tensors(), sched.HOST_ALIGNMENT)]


@pytest.mark.parametrize("build", [None, 9409])
def test_full_offload_host_buffer_holds_the_inputs_and_the_embedding_lookup(llama8b, build):
    """Every graph input is on the CPU backend (CUDA_Host buffer), and so is get_rows(token_embd): its weight
    is in host memory and CUDA does not offload GET_ROWS. They are all allocated before the first GPU split
    starts (leafs first; the copies' sources until the copies are made), so the buffer is their sum."""
    s = Settings(ctx=4096, flash_attn="on", consumer="library", llama_cpp_build=build)
    g, c = _graph(llama8b, s)
    T, e = c.n_ubatch, llama8b.n_embd
    mask = c.n_ctx_seq * T * (2 if build is None else 4)  # f16 since b9410; before, f32 cast on the device
    expected = sum(_align(n) for n in (4 * T, 4 * e * T, 4 * T, 8 * T, 8 * T, mask, 4 * T, 4 * e * T))
    device, host = sched.buffer_sizes(g, 1, lambda t: 1 if t.layer == -1 else 0)
    assert host == expected
    assert device < g.buffer_size()  # the inputs left the device; it holds only their copies


def test_cuda_estimate_splits_device_and_host(llama8b):
    base = Settings(ctx=8192, flash_attn="on", parallel=4, kv_unified=True)
    one = estimate(llama8b, base)
    cuda = estimate(llama8b, replace(base, backend="cuda"))
    assert cuda.per_backend and not one.per_backend
    # the device no longer holds inp_embd (an input, 4 x n_embd x n_ubatch): issue #12's "one tensor too big"
    assert one.compute_bytes - cuda.compute_bytes == pytest.approx(4 * 4096 * 512, abs=2 * 4096 * 512)
    assert cuda.host_compute_bytes > one.host_compute_bytes
    assert cuda.streamed_compute_bytes > cuda.compute_bytes  # copies of weights held in RAM


def test_partial_offload_runs_the_host_layers_on_the_gpu(llama8b):
    """-ngl 20 of 33: with a 512-token micro-batch the CPU layers' ops run on CUDA0 (op offload), so the host
    buffer keeps only inputs and the K/V rows written to the RAM-resident cache."""
    from fitcheck.model import Gpu, Hardware, HardwareSource
    from fitcheck.plan import best_placement

    s = Settings(ctx=8192, flash_attn="on", gpu_layers=20, backend="cuda")
    needs = estimate(llama8b, s)
    hw = Hardware(HardwareSource.OVERRIDE, (Gpu(0, "GPU", 64 << 30, 64 << 30, backend="cuda"),), 256 << 30, 256 << 30)
    gpu, cpu = best_placement(llama8b, needs, s, hw).devices
    assert gpu.compute_bytes == needs.streamed_compute_bytes > needs.compute_bytes
    assert cpu.compute_bytes == needs.streamed_host_compute_bytes < needs.layer_compute_bytes


def test_moe_experts_in_ram_copy_one_expert_tensor_at_a_time(qwen3_30b_a3b):
    s = Settings(ctx=4096, flash_attn="on", backend="cuda")
    needs = estimate(qwen3_30b_a3b, s)
    largest = max(t.size_bytes for t in qwen3_30b_a3b.tensors if t.is_expert)
    # the copy of one expert tensor at a time, partly in memory the layer's own peak leaves free
    extra = needs.expert_streamed_compute_bytes - needs.compute_bytes
    assert 0.5 * largest < extra <= largest + 512 * 1024
