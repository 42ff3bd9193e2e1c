"""NVML and psutil faked at their one seam: the module objects the probe is given."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fitcheck.model import Gpu
from fitcheck.probe.nvidia import probe_gpus
from fitcheck.probe.overrides import HardwareOverrides, apply_overrides, unified_gpu_share
from fitcheck.probe.system import probe_hardware

GiB = 1024**3


class FakeNVML:
    """The slice of pynvml's interface that the probe uses."""

    def __init__(self, cards, fail_init=False, fail_index=None):
        self.cards, self.fail_init, self.fail_index = cards, fail_init, fail_index
        self.shutdown = False

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetCount(self):
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index):
        if index == self.fail_index:
            raise RuntimeError("GPU is lost")
        return index

    def nvmlDeviceGetName(self, handle):
        return self.cards[handle][0].encode()  # older pynvml returns bytes

    def nvmlDeviceGetMemoryInfo(self, handle):
        _, total, free = self.cards[handle]
        return SimpleNamespace(total=total, free=free, used=total - free)


class FakePsutil:
    def __init__(self, total, available):
        self.total, self.available = total, available

    def virtual_memory(self):
        return SimpleNamespace(total=self.total, available=self.available)


def test_two_gpus_with_free_memory():
    nvml = FakeNVML([("NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB), ("NVIDIA RTX A4000", 16 * GiB, 15 * GiB)])
    gpus, notes = probe_gpus(nvml)
    assert gpus == (Gpu(0, "NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB),
                    Gpu(1, "NVIDIA RTX A4000", 16 * GiB, 15 * GiB))
    assert notes == () and nvml.shutdown


def test_nvml_missing_is_a_note():
    gpus, notes = probe_gpus(FakeNVML([], fail_init=True))
    assert gpus == () and "no NVIDIA GPU" in notes[0]


def test_one_broken_gpu_is_skipped_with_a_note():
    nvml = FakeNVML([("A", 8 * GiB, 8 * GiB), ("B", 8 * GiB, 8 * GiB)], fail_index=0)
    gpus, notes = probe_gpus(nvml)
    assert [g.name for g in gpus] == ["B"] and "GPU 0" in notes[0]


def test_hardware_probe_ram_and_gpus():
    hw = probe_hardware(FakeNVML([("A", 8 * GiB, 7 * GiB)]), FakePsutil(64 * GiB, 50 * GiB), system="Linux")
    assert hw.source == "probe" and len(hw.gpus) == 1
    assert (hw.ram_total_bytes, hw.ram_available_bytes) == (64 * GiB, 50 * GiB)
    assert not hw.unified_memory


def test_apple_silicon_is_unified():
    hw = probe_hardware(FakeNVML([], fail_init=True), FakePsutil(32 * GiB, 20 * GiB), system="Darwin", machine="arm64")
    assert hw.unified_memory and len(hw.gpus) == 1 and not any("NVIDIA" in n for n in hw.notes)


def test_broken_psutil_is_a_note():
    class Broken:
        def virtual_memory(self):
            raise OSError("no /proc")

    hw = probe_hardware(FakeNVML([], fail_init=True), Broken(), system="Linux")
    assert hw.ram_available_bytes is None and any("RAM" in n for n in hw.notes)


def test_overrides():
    probed = probe_hardware(FakeNVML([("A", 8 * GiB, 7 * GiB)]), FakePsutil(64 * GiB, 50 * GiB), system="Linux")
    two = apply_overrides(probed, HardwareOverrides(vram=(24 * GiB, 12 * GiB)))
    assert [g.free_bytes for g in two.gpus] == [24 * GiB, 12 * GiB] and two.source == "override"
    assert apply_overrides(probed, HardwareOverrides(cpu_only=True)).gpus == ()
    assert apply_overrides(probed, HardwareOverrides(ram=16 * GiB)).ram_available_bytes == 16 * GiB


def test_rpc_devices_are_added_first():
    probed = probe_hardware(FakeNVML([("A", 8 * GiB, 7 * GiB)]), FakePsutil(64 * GiB, 50 * GiB), system="Linux")
    hw = apply_overrides(probed, HardwareOverrides(rpc=(("10.0.0.2:50052", 24 * GiB),)))
    assert [g.remote for g in hw.gpus] == ["10.0.0.2:50052", None]
    assert apply_overrides(probed, HardwareOverrides(rpc=(("h:1", GiB),), cpu_only=True)).gpus == ()


def test_unified_share_rule():
    assert unified_gpu_share(32 * GiB) == pytest.approx(2 / 3)
    assert unified_gpu_share(64 * GiB) == pytest.approx(3 / 4)
    mac = probe_hardware(FakeNVML([], fail_init=True), FakePsutil(64 * GiB, 40 * GiB), system="Darwin", machine="arm64")
    assert mac.unified_memory and mac.gpus[0].total_bytes == 48 * GiB
    simulated = apply_overrides(probed_linux(), HardwareOverrides(unified=True, ram=128 * GiB, gpu_share=0.9))
    assert simulated.unified_memory and simulated.gpus[0].total_bytes == int(128 * GiB * 0.9)


def probed_linux():
    return probe_hardware(FakeNVML([], fail_init=True), FakePsutil(64 * GiB, 50 * GiB), system="Linux")
