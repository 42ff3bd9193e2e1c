"""NVML and psutil faked at their one seam: the module objects the probe is given."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fitcheck.model import Gpu
from fitcheck.probe import system
from fitcheck.probe.catalog import DeviceSpec
from fitcheck.probe.nvidia import nvml_bandwidth_gbps, probe_gpus
from fitcheck.probe.overrides import HardwareOverrides, apply_overrides, unified_gpu_share
from fitcheck.probe.system import probe_hardware

GiB = 1024**3


class FakeNVML:
    """The slice of pynvml's interface that the probe uses. A card is (name, total, free) plus, optionally, a
    dict of what the other queries return: bus (bits), mem_clock (MHz), gen / width (max PCIe link), cur_gen /
    cur_width (current link). A query whose key is missing raises, as NVML's NOT_SUPPORTED does."""

    NVML_CLOCK_MEM = 2

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
        _, total, free = self.cards[handle][:3]
        return SimpleNamespace(total=total, free=free, used=total - free)

    def _extra(self, handle, key):
        extra = self.cards[handle][3] if len(self.cards[handle]) > 3 else {}
        if key not in extra:
            raise RuntimeError("Not Supported")
        return extra[key]

    def nvmlDeviceGetMemoryBusWidth(self, handle):
        return self._extra(handle, "bus")

    def nvmlDeviceGetMaxClockInfo(self, handle, clock):
        assert clock == self.NVML_CLOCK_MEM
        return self._extra(handle, "mem_clock")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._extra(handle, "gen")

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._extra(handle, "width")

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        return self._extra(handle, "cur_gen")

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        return self._extra(handle, "cur_width")


def no_table(name, memory_bytes):
    return None


def spec(name, bandwidth, bus="pcie4 x16", backend="cuda", memory_gib=24):
    return DeviceSpec(name=name, vendor="nvidia", family="geforce", backend=backend, aliases=(),
                      memory_gib=(memory_gib,), bandwidth_gbps=bandwidth, fp16_tflops=330.3, fp32_tflops=82.6,
                      bus=bus, released=2022, source=f"https://example.org/{name}")


def table_of(*specs):
    """A hardware table lookup over these rows only, recording its calls."""

    def lookup(name, memory_bytes):
        lookup.calls.append((name, memory_bytes))
        return next((s for s in specs if name.endswith(s.name)), None)

    lookup.calls = []
    return lookup


@pytest.fixture(autouse=True)
def no_real_sysfs(tmp_path, monkeypatch):
    """probe_hardware scans /sys on Linux: point it at an empty tree unless a test builds one."""
    monkeypatch.setattr(system, "SYSFS_ROOT", tmp_path / "empty-sys")


class FakePsutil:
    def __init__(self, total, available, cores=None):
        self.total, self.available, self.cores = total, available, cores

    def virtual_memory(self):
        return SimpleNamespace(total=self.total, available=self.available)

    def cpu_count(self, logical=True):
        return self.cores


def test_two_gpus_with_free_memory():
    nvml = FakeNVML([("NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB), ("NVIDIA RTX A4000", 16 * GiB, 15 * GiB)])
    gpus, notes = probe_gpus(nvml, no_table)
    assert gpus == (Gpu(0, "NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB, backend="cuda"),
                    Gpu(1, "NVIDIA RTX A4000", 16 * GiB, 15 * GiB, backend="cuda"))
    assert len(notes) == 2 and all("not in the hardware table" in n for n in notes) and nvml.shutdown


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


# ---- bandwidth, compute and host link -----------------------------------------------------------------------

RTX_4090 = {"bus": 384, "mem_clock": 10501, "gen": 4, "width": 16}


def test_table_figures_for_a_known_gpu():
    lookup = table_of(spec("RTX 4090", 1008.0))
    gpus, notes = probe_gpus(FakeNVML([("NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB, RTX_4090)]), lookup)
    g = gpus[0]
    assert (g.bandwidth_gbps, g.fp16_tflops, g.fp32_tflops) == (1008.0, 330.3, 82.6)
    assert (g.link_gbps, g.backend, g.spec_source) == (32.0, "cuda", "https://example.org/RTX 4090")
    assert lookup.calls == [("NVIDIA GeForce RTX 4090", 24 * GiB)] and notes == ()


def test_a_narrower_slot_than_the_card_limits_the_link():
    lookup = table_of(spec("RTX 4090", 1008.0, bus="pcie4 x16"))
    in_x4 = dict(RTX_4090, gen=3, width=4)  # a gen 4 x16 card behind a gen 3 x4 riser
    gpus, _ = probe_gpus(FakeNVML([("NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB, in_x4)]), lookup)
    assert gpus[0].link_gbps == 4.0 and gpus[0].bandwidth_gbps == 1008.0


def test_unified_table_row_has_no_host_link():
    lookup = table_of(spec("GB10", 273.0, bus="unified", memory_gib=128))
    gpus, _ = probe_gpus(FakeNVML([("NVIDIA GB10", 120 * GiB, 100 * GiB, {"gen": 5, "width": 16})]), lookup)
    assert gpus[0].link_gbps is None and gpus[0].bandwidth_gbps == 273.0


def test_unknown_gpu_bandwidth_from_bus_width_and_memory_clock():
    gpus, notes = probe_gpus(FakeNVML([("NVIDIA Future 9090", 24 * GiB, 22 * GiB, RTX_4090)]), no_table)
    g = gpus[0]
    assert g.bandwidth_gbps == pytest.approx(1008.1) and g.spec_source == "nvml"  # 384/8 × 10501 × 2 / 1000
    assert (g.fp16_tflops, g.fp32_tflops, g.link_gbps, g.backend) == (None, None, 32.0, "cuda")
    assert "1008 GB/s from NVML" in notes[0] and "compute unknown" in notes[0]


@pytest.mark.parametrize(("bus", "clock", "expected"), [
    (5120, 1215, 1555.2),  # A100 40GB, HBM2
    (5120, 2619, 3352.3),  # H100 SXM, HBM3
    (256, 5005, 320.3),  # GTX 1080, GDDR5X
    (512, 14001, 1792.1),  # RTX 5090, GDDR7
])
def test_nvml_bandwidth_formula_matches_vendor_figures(bus, clock, expected):
    nvml = FakeNVML([("X", GiB, GiB, {"bus": bus, "mem_clock": clock})])
    assert nvml_bandwidth_gbps(nvml, 0) == pytest.approx(expected)


def test_every_extra_nvml_query_may_fail():
    gpus, notes = probe_gpus(FakeNVML([("NVIDIA Old", 4 * GiB, 3 * GiB, {"bus": 0, "mem_clock": 3000})]), no_table)
    g = gpus[0]
    assert (g.total_bytes, g.free_bytes) == (4 * GiB, 3 * GiB)
    assert (g.bandwidth_gbps, g.link_gbps, g.spec_source) == (None, None, None)
    assert "memory bandwidth unknown" in notes[0]


def test_current_link_is_the_fallback_for_the_maximum():
    card = {"cur_gen": 3, "cur_width": 8}  # the maximum queries are not supported
    gpus, _ = probe_gpus(FakeNVML([("NVIDIA A", 8 * GiB, 8 * GiB, card)]), no_table)
    assert gpus[0].link_gbps == 8.0


def test_a_broken_table_is_a_note_and_nvml_figures_remain():
    def broken(name, memory_bytes):
        raise ImportError("no module named fitcheck.probe.catalog")

    cards = [("NVIDIA A", 24 * GiB, 22 * GiB, RTX_4090), ("NVIDIA B", 24 * GiB, 22 * GiB, RTX_4090)]
    gpus, notes = probe_gpus(FakeNVML(cards), broken)
    assert [g.bandwidth_gbps for g in gpus] == [pytest.approx(1008.1)] * 2
    assert len(notes) == 1 and "hardware table unavailable" in notes[0]


# ---- the whole probe: CPU, RAM bandwidth ---------------------------------------------------------------------

def test_cpu_fields_always_and_bandwidth_only_when_asked():
    calls = []

    def bandwidth():
        calls.append(1)
        return 83.5, "measured"

    def probed(**kw):
        return probe_hardware(FakeNVML([], fail_init=True), FakePsutil(64 * GiB, 50 * GiB, cores=8), system="Linux",
                              bandwidth=bandwidth, cpu=lambda: ("AMD Ryzen 7 7700X 8-Core Processor", 8), **kw)

    quiet = probed()
    assert (quiet.cpu_name, quiet.cpu_threads) == ("AMD Ryzen 7 7700X 8-Core Processor", 8)
    assert quiet.ram_bandwidth_gbps is None and quiet.ram_bandwidth_source is None and calls == []
    measured = probed(measure_bandwidth=True)
    assert (measured.ram_bandwidth_gbps, measured.ram_bandwidth_source) == (83.5, "measured") and calls == [1]


def test_cpu_threads_are_physical_cores_from_psutil():
    hw = probe_hardware(FakeNVML([], fail_init=True), FakePsutil(64 * GiB, 50 * GiB, cores=6), system="Linux")
    assert hw.cpu_threads == 6


def test_a_failing_bandwidth_measurement_is_a_note():
    def bandwidth():
        raise MemoryError("cannot allocate")

    hw = probe_hardware(FakeNVML([], fail_init=True), FakePsutil(64 * GiB, 50 * GiB, cores=4), system="Linux",
                        measure_bandwidth=True, bandwidth=bandwidth)
    assert hw.ram_bandwidth_gbps is None and any("RAM bandwidth could not be measured" in n for n in hw.notes)


def test_probe_passes_the_table_lookup_to_nvml():
    lookup = table_of(spec("RTX 4090", 1008.0))
    hw = probe_hardware(FakeNVML([("NVIDIA GeForce RTX 4090", 24 * GiB, 22 * GiB, RTX_4090)]),
                        FakePsutil(64 * GiB, 50 * GiB), system="Linux", lookup=lookup)
    assert hw.gpus[0].bandwidth_gbps == 1008.0 and hw.gpus[0].spec_source == "https://example.org/RTX 4090"
