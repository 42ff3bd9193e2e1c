"""Command-line hardware: --gpu NAME from the GPU table, --ram-bandwidth, and how they mix with the others."""

from __future__ import annotations

import pytest

from fitcheck.errors import UsageError
from fitcheck.model import GiB, Gpu, Hardware, HardwareSource
from fitcheck.probe import catalog
from fitcheck.probe.catalog import DeviceSpec, resolve
from fitcheck.probe.overrides import HardwareOverrides, apply_overrides


def dev(name: str, memory: tuple[int, ...], *, bus: str = "pcie4 x16", cores: int | None = None,
        bandwidth: float = 936.0, backend: str = "cuda") -> DeviceSpec:
    return DeviceSpec(name=name, vendor="apple" if cores else "nvidia", family="apple" if cores else "geforce",
                      backend=backend, aliases=(), memory_gib=memory, bandwidth_gbps=bandwidth, fp16_tflops=71.0,
                      fp32_tflops=35.6, bus=bus, released=2020, source="https://example.test", gpu_cores=cores)


TABLE = (
    dev("RTX 3090", (24,)),
    dev("RTX 3060 12GB", (12,), bandwidth=360.0),
    dev("RTX 3060 8GB", (8,), bandwidth=240.0),
    dev("M2 Max (30-core GPU)", (32, 64), bus="unified", cores=30, bandwidth=400.0, backend="metal"),
    dev("M2 Max (38-core GPU)", (32, 64, 96), bus="unified", cores=38, bandwidth=400.0, backend="metal"),
    dev("DGX Spark (GB10)", (128,), bus="unified", bandwidth=273.0),
)


@pytest.fixture(autouse=True)
def small_table(monkeypatch):
    monkeypatch.setattr(catalog, "devices", lambda: TABLE)


PC = Hardware(source=HardwareSource.PROBE, gpus=(Gpu(0, "NVIDIA GeForce RTX 3060", 12 * GiB, 11 * GiB),),
              ram_total_bytes=64 * GiB, ram_available_bytes=50 * GiB, notes=("probed",), ram_bandwidth_gbps=60.0,
              ram_bandwidth_source="measured", cpu_threads=8, cpu_name="Ryzen 7")
MAC = Hardware(source=HardwareSource.PROBE, ram_total_bytes=64 * GiB, ram_available_bytes=40 * GiB,
               unified_memory=True, ram_bandwidth_gbps=380.0, ram_bandwidth_source="measured",
               gpus=(Gpu(0, "Apple M2 Max", 48 * GiB, 48 * GiB, bandwidth_gbps=400.0, backend="metal"),))


def test_no_overrides_is_the_probe_unchanged():
    assert apply_overrides(PC, HardwareOverrides()) == PC
    assert apply_overrides(MAC, HardwareOverrides()) == MAC  # a probed Mac keeps its GPU and stays "probe"


def test_gpu_stops_the_gpu_probe():
    assert HardwareOverrides().probe_gpus and not HardwareOverrides(gpu="RTX 3090").probe_gpus


def test_discrete_gpu_replaces_the_gpus_and_keeps_the_ram():
    hw = apply_overrides(PC, HardwareOverrides(gpu="2x RTX 3090"))
    assert hw.source == HardwareSource.OVERRIDE and not hw.unified_memory
    assert hw.gpus == resolve("2x RTX 3090").gpus()
    assert [(g.index, g.name, g.total_bytes, g.free_bytes, g.bandwidth_gbps, g.link_gbps) for g in hw.gpus] == [
        (0, "RTX 3090", 24 * GiB, 24 * GiB, 936.0, 32.0), (1, "RTX 3090", 24 * GiB, 24 * GiB, 936.0, 32.0)]
    assert (hw.ram_total_bytes, hw.ram_available_bytes, hw.ram_bandwidth_gbps) == (64 * GiB, 50 * GiB, 60.0)
    assert hw.notes == ("probed",)


def test_discrete_gpu_on_a_mac_is_a_pc_with_that_card():
    hw = apply_overrides(MAC, HardwareOverrides(gpu="RTX 3090", ram=32 * GiB, gpu_share=0.9))
    assert not hw.unified_memory and [g.name for g in hw.gpus] == ["RTX 3090"]
    assert hw.ram_total_bytes == 32 * GiB and any("--gpu-share ignored" in n for n in hw.notes)


def test_rpc_devices_still_come_first():
    hw = apply_overrides(PC, HardwareOverrides(gpu="RTX 3090", rpc=(("10.0.0.2:50052", 16 * GiB),)))
    assert [(g.remote, g.name) for g in hw.gpus] == [("10.0.0.2:50052", "remote (16 GiB)"), (None, "RTX 3090")]


def test_unified_device_is_the_whole_machine():
    hw = apply_overrides(PC, HardwareOverrides(gpu="M2 Max 64GB"))
    assert hw.unified_memory and hw.source == HardwareSource.OVERRIDE
    assert (hw.ram_total_bytes, hw.ram_available_bytes) == (64 * GiB, 64 * GiB)
    (gpu,) = hw.gpus
    assert (gpu.name, gpu.total_bytes, gpu.free_bytes, gpu.link_gbps, gpu.backend) == (
        "M2 Max (30-core GPU)", 48 * GiB, 48 * GiB, None, "metal")  # 3/4 above 36 GiB
    assert (hw.ram_bandwidth_gbps, hw.ram_bandwidth_source) == (400.0, "table")  # CPU and GPU share it
    assert "M2 Max: assumed the 30-core GPU; name 'M2 Max (38-core GPU)' for the other" in hw.notes
    assert any("48 GiB of 64 GiB" in n for n in hw.notes)


def test_unified_share_rule_and_gpu_share():
    small = apply_overrides(PC, HardwareOverrides(gpu="M2 Max (38-core GPU) 32GB"))
    assert small.gpus[0].total_bytes == int(32 * GiB * 2 / 3)
    assert small.notes[0] == "probed" and len(small.notes) == 2 and "21.3 GiB of 32 GiB" in small.notes[1]
    shared = apply_overrides(PC, HardwareOverrides(gpu="DGX Spark", gpu_share=0.9))
    assert shared.gpus[0].total_bytes == int(128 * GiB * 0.9) and shared.ram_total_bytes == 128 * GiB


def test_unified_device_with_ram_takes_the_ram_and_drops_the_memory_guess():
    hw = apply_overrides(PC, HardwareOverrides(gpu="M2 Max", ram=48 * GiB))
    assert (hw.ram_total_bytes, hw.ram_available_bytes, hw.gpus[0].total_bytes) == (48 * GiB, 48 * GiB, 36 * GiB)
    assert any("30-core" in n for n in hw.notes) and not any("smallest sold" in n for n in hw.notes)
    guessed = apply_overrides(PC, HardwareOverrides(gpu="M2 Max"))
    assert guessed.ram_total_bytes == 32 * GiB and any("smallest sold" in n for n in guessed.notes)


def test_ram_bandwidth_override():
    hw = apply_overrides(PC, HardwareOverrides(ram_bandwidth_gbps=90.0))
    assert (hw.ram_bandwidth_gbps, hw.ram_bandwidth_source, hw.source) == (90.0, "override", HardwareSource.OVERRIDE)
    assert hw.gpus == PC.gpus
    mac = apply_overrides(PC, HardwareOverrides(gpu="M2 Max 64GB", ram_bandwidth_gbps=300.0))
    assert (mac.ram_bandwidth_gbps, mac.ram_bandwidth_source) == (300.0, "override")


@pytest.mark.parametrize(("overrides", "words"), [
    (HardwareOverrides(gpu="RTX 3090", vram=(24 * GiB,)), "--gpu and --vram both set the GPU: pick one"),
    (HardwareOverrides(gpu="RTX 3090", cpu_only=True), "--cpu-only"),
    (HardwareOverrides(gpu="RTX 3090", unified=True), "--unified"),
    (HardwareOverrides(ram_bandwidth_gbps=0.0), "--ram-bandwidth"),
    (HardwareOverrides(gpu="RTX 3060"), "is ambiguous: RTX 3060 12GB, RTX 3060 8GB"),
    (HardwareOverrides(gpu="RTX 9999"), "no such GPU"),
])
def test_usage_errors(overrides, words):
    with pytest.raises(UsageError) as info:
        apply_overrides(PC, overrides)
    assert words in str(info.value) and "\n" not in str(info.value) and info.value.hint


def test_existing_overrides_still_apply():
    two = apply_overrides(PC, HardwareOverrides(vram=(24 * GiB, 12 * GiB)))
    assert [g.free_bytes for g in two.gpus] == [24 * GiB, 12 * GiB] and two.source == HardwareSource.OVERRIDE
    assert apply_overrides(PC, HardwareOverrides(cpu_only=True)).gpus == ()
    assert apply_overrides(PC, HardwareOverrides(ram=16 * GiB)).ram_available_bytes == 16 * GiB
    simulated = apply_overrides(PC, HardwareOverrides(unified=True, ram=128 * GiB, gpu_share=0.9))
    assert simulated.unified_memory and simulated.gpus[0].total_bytes == int(128 * GiB * 0.9)


def test_probed_mac_with_ram_keeps_its_gpu_figures():
    hw = apply_overrides(MAC, HardwareOverrides(ram=32 * GiB))
    (gpu,) = hw.gpus
    assert (gpu.name, gpu.total_bytes, gpu.bandwidth_gbps) == ("Apple M2 Max", int(32 * GiB * 2 / 3), 400.0)
    assert hw.source == HardwareSource.OVERRIDE


def test_real_table_gpu(monkeypatch):
    monkeypatch.undo()  # the packaged table
    hw = apply_overrides(PC, HardwareOverrides(gpu="RTX 4090"))
    assert [g.name for g in hw.gpus] == ["RTX 4090"] and hw.gpus[0].total_bytes == 24 * GiB
    assert hw.gpus[0].bandwidth_gbps and hw.gpus[0].spec_source
    mac = apply_overrides(PC, HardwareOverrides(gpu="M2 Max (38-core GPU) 96GB"))
    assert mac.unified_memory and mac.ram_total_bytes == 96 * GiB and mac.gpus[0].total_bytes == 72 * GiB
