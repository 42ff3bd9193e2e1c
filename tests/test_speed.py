"""The speed model: what each device reads per token, ranges, what is and is not estimated, and that speed
never moves a memory figure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fitcheck import speed
from fitcheck.check import check_model
from fitcheck.model import GiB, Gpu, Hardware, HardwareSource, Settings, Verdict
from fitcheck.sources.types import Model


def _gpu(name: str = "g", vram_gib: int = 24, bandwidth: float | None = 1000.0, fp16: float | None = 150.0,
         fp32: float | None = 80.0, backend: str = "cuda", index: int = 0) -> Gpu:
    size = vram_gib * GiB
    return Gpu(index, name, size, size, bandwidth_gbps=bandwidth, fp16_tflops=fp16, fp32_tflops=fp32,
               link_gbps=32.0, backend=backend)


def _hw(*gpus: Gpu, ram_gib: int = 128, ram_bw: float | None = 50.0, cpu_gflops: float | None = 500.0) -> Hardware:
    return Hardware(HardwareSource.OVERRIDE, gpus, ram_gib * GiB, ram_gib * GiB, ram_bandwidth_gbps=ram_bw,
                    cpu_threads=8, cpu_gflops=cpu_gflops)


def _report(spec, hw, **settings):
    return check_model(Model(spec, ["-m", "x.gguf"]), Settings(**{"ctx": 4096, **settings}), hw)


def test_full_gpu_dense_reads_every_weight_but_the_input_embedding(llama8b):
    r = _report(llama8b, _hw(_gpu()))
    gpu, cpu = r.plan.devices
    embd = next(t.size_bytes for t in llama8b.tensors if t.name == "token_embd.weight")
    assert gpu.read_bytes_per_token == llama8b.weights_bytes - embd
    assert cpu.read_bytes_per_token == 0
    assert r.speed is not None and r.speed.limited_by.startswith("g ")


def test_moe_reads_only_the_active_experts(qwen3_30b_a3b):
    spec = qwen3_30b_a3b
    r = _report(spec, _hw(_gpu(vram_gib=80)))
    experts = sum(t.size_bytes for t in spec.tensors if t.is_expert)
    embd = next(t.size_bytes for t in spec.tensors if t.name == "token_embd.weight")
    dense = spec.weights_bytes - experts - embd
    read = r.plan.devices[0].read_bytes_per_token
    share = spec.n_expert_used / spec.n_expert
    assert read == pytest.approx(dense + experts * share, rel=1e-6)


def test_decode_is_a_range_and_bandwidth_speeds_it_up(llama8b):
    slow = _report(llama8b, _hw(_gpu(bandwidth=300.0))).speed
    fast = _report(llama8b, _hw(_gpu(bandwidth=1000.0))).speed
    assert slow and fast
    for s in (slow, fast):
        assert 0 < s.decode_tokens_per_s.low < s.decode_tokens_per_s.high
        width = (s.decode_tokens_per_s.high - s.decode_tokens_per_s.low) / (
            s.decode_tokens_per_s.high + s.decode_tokens_per_s.low)
        assert width <= 0.30 + 1e-9  # never wider than ±30% around the middle
    assert fast.decode_tokens_per_s.low > slow.decode_tokens_per_s.high


def test_full_context_decodes_slower_than_an_empty_one(llama8b):
    s = _report(llama8b, _hw(_gpu()), ctx=32768).speed
    assert s and s.decode_full_context_tokens_per_s
    assert s.decode_full_context_tokens_per_s.high < s.decode_tokens_per_s.high


def test_experts_in_ram_make_decode_ram_bound(gpt_oss_120b):
    r = _report(gpt_oss_120b, _hw(_gpu(vram_gib=8), ram_gib=64), ctx=32768)
    assert r.plan.verdict is Verdict.OFFLOAD and r.plan.n_cpu_moe > 0
    assert r.speed and r.speed.limited_by.startswith("CPU (RAM)")
    faster_ram = _report(gpt_oss_120b, _hw(_gpu(vram_gib=8), ram_gib=64, ram_bw=100.0), ctx=32768)
    assert faster_ram.speed and faster_ram.speed.decode_tokens_per_s.low > r.speed.decode_tokens_per_s.low


def test_unknown_bandwidth_gives_no_speed_and_says_why(llama8b):
    r = _report(llama8b, _hw(_gpu(bandwidth=None)))
    assert r.speed is None
    assert any("memory bandwidth of g unknown" in n for n in r.notes)


def test_unknown_compute_omits_only_the_prompt_figure(llama8b):
    r = _report(llama8b, _hw(_gpu(fp16=None)))
    assert r.speed and r.speed.prompt_tokens_per_s is None and r.speed.decode_tokens_per_s
    assert any("no prompt-processing figure" in n for n in r.speed.notes)


def test_speed_never_changes_a_memory_figure(llama8b, gpt_oss_120b):
    for spec in (llama8b, gpt_oss_120b):
        known = _report(spec, _hw(_gpu(vram_gib=8), ram_gib=64))
        unknown = _report(spec, _hw(_gpu(vram_gib=8, bandwidth=None, fp16=None, fp32=None), ram_gib=64,
                                    ram_bw=None, cpu_gflops=None))
        assert known.needs == unknown.needs
        assert replace(known.plan, devices=()) == replace(unknown.plan, devices=())
        assert [d.total_bytes for d in known.plan.devices] == [d.total_bytes for d in unknown.plan.devices]


def test_partial_offload_prompt_pays_for_the_host_link(llama70b):
    gpu = _gpu(vram_gib=24)
    r = _report(llama70b, _hw(gpu))
    assert r.plan.verdict is Verdict.OFFLOAD and r.speed and r.speed.prompt_tokens_per_s
    slower_link = _report(llama70b, _hw(replace(gpu, link_gbps=8.0)))
    assert slower_link.speed and slower_link.speed.prompt_tokens_per_s
    def middle(rate):
        return (rate.low + rate.high) / 2

    # 40 of 80 layers in RAM: every batch copies them over the link, so a quarter of the link is much slower
    assert middle(slower_link.speed.prompt_tokens_per_s) < 0.5 * middle(r.speed.prompt_tokens_per_s)


def test_shipped_coefficients_are_sane():
    table = speed._table()
    for name, entry in table["backends"].items():
        assert 0 < entry["bandwidth_efficiency"] <= 1, name
        assert entry["compute_per_weight"] >= 0 and entry["per_layer_s"] >= 0, name
        assert 0 < entry.get("band", table["band"]) <= 0.30, name
