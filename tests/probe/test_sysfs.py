"""AMD/Intel GPUs from a fake /sys tree built in tmp_path (the layout the amdgpu, xe and i915 drivers publish)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fitcheck.model import GiB, MiB
from fitcheck.probe.catalog import DeviceSpec
from fitcheck.probe.sysfs import probe_sysfs_gpus
from fitcheck.probe.system import probe_hardware

AMDGPU_IDS = """# List of AMDGPU IDs
#
# Syntax:
# device_id,\trevision_id,\tproduct_name        <-- single tab after comma

1.0.0
744C,\tC8,\tAMD Radeon RX 7900 XTX
744C,\tCC,\tAMD Radeon RX 7900 XT
73BF,\tC1,\tAMD Radeon RX 6800 XT
1681,\t00,\tAMD Radeon 680M
1681,\tC8,\tAMD Radeon 680M
"""


class Sys:
    """A /sys tree: class/drm/cardN/device -> ../../../devices/pci0000:00/<bdf>, as on a real machine."""

    def __init__(self, root: Path):
        self.root = root
        self.n = 0

    def card(self, vendor: str, device: str, files: dict[str, str | int],
             card_files: dict[str, str | int] | None = None, *, connectors: bool = True) -> Path:
        n, self.n = self.n, self.n + 1
        pci = self.root / "devices" / "pci0000:00" / f"0000:{n + 3:02x}:00.0"
        for name, value in {"vendor": vendor, "device": device, **files}.items():
            (pci / name).parent.mkdir(parents=True, exist_ok=True)
            (pci / name).write_text(f"{value}\n")
        card = self.root / "class" / "drm" / f"card{n}"
        card.mkdir(parents=True)
        (card / "device").symlink_to(pci, target_is_directory=True)
        for name, value in (card_files or {}).items():
            (card / name).write_text(f"{value}\n")
        if connectors:  # card0-DP-1 and friends are not GPUs
            (self.root / "class" / "drm" / f"card{n}-DP-1").mkdir()
        return pci


@pytest.fixture
def sys_tree(tmp_path: Path) -> Sys:
    return Sys(tmp_path / "sys")


@pytest.fixture
def ids(tmp_path: Path) -> Path:
    path = tmp_path / "amdgpu.ids"
    path.write_text(AMDGPU_IDS)
    return path


def no_table(name, memory_bytes):
    return None


def amd_spec(name: str = "RX 7900 XTX", backend: str = "rocm") -> DeviceSpec:
    return DeviceSpec(name=name, vendor="amd", family="radeon", backend=backend,
                      aliases=(f"AMD Radeon {name}", f"Radeon {name}"), memory_gib=(24,), bandwidth_gbps=960.0,
                      fp16_tflops=122.8, fp32_tflops=61.4, bus="pcie4 x16", released=2022,
                      source="https://example.org/7900xtx")


def table_of(*specs: DeviceSpec):
    def lookup(name, memory_bytes):
        lookup.calls.append((name, memory_bytes))
        return next((s for s in specs if name in (s.name, *s.aliases)), None)

    lookup.calls = []
    return lookup


def amd(total: int, used: int, **extra: str | int) -> dict[str, str | int]:
    return {"mem_info_vram_total": total, "mem_info_vram_used": used, "revision": "0xc8", **extra}


def test_amd_card_named_from_libdrm_and_figures_from_the_table(sys_tree, ids):
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 2 * GiB))
    lookup = table_of(amd_spec())
    gpus, notes = probe_sysfs_gpus(sys_tree.root, lookup=lookup, amdgpu_ids=ids)
    g = gpus[0]
    assert (g.index, g.name, g.total_bytes, g.free_bytes) == (0, "AMD Radeon RX 7900 XTX", 24 * GiB, 22 * GiB)
    assert (g.bandwidth_gbps, g.fp16_tflops, g.fp32_tflops, g.link_gbps) == (960.0, 122.8, 61.4, 32.0)
    assert (g.backend, g.spec_source) == ("rocm", "https://example.org/7900xtx")
    assert lookup.calls == [("AMD Radeon RX 7900 XTX", 24 * GiB)] and notes == ()


def test_product_name_wins_and_the_table_backend_is_kept(sys_tree, ids):
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 0, product_name="Radeon RX 7900 XTX"))
    gpus, _ = probe_sysfs_gpus(sys_tree.root, lookup=table_of(amd_spec(backend="vulkan")), amdgpu_ids=ids)
    assert gpus[0].name == "Radeon RX 7900 XTX" and gpus[0].backend == "vulkan"


def test_unknown_amd_card_keeps_its_memory_and_says_so(sys_tree):
    sys_tree.card("0x1002", "0x7550", amd(16 * GiB, GiB))
    gpus, notes = probe_sysfs_gpus(sys_tree.root, lookup=no_table, amdgpu_ids=None)
    g = gpus[0]
    assert (g.name, g.total_bytes, g.free_bytes, g.backend) == ("AMD GPU 0x7550", 16 * GiB, 15 * GiB, "rocm")
    assert g.bandwidth_gbps is None and g.spec_source is None
    assert "not in the hardware table" in notes[0]


def test_libdrm_names_by_revision_or_by_a_device_all_rows_agree_on(sys_tree, ids):
    sys_tree.card("0x1002", "0x744c", amd(20 * GiB, 0, revision="0xcc"))  # the 7900 XT's revision
    sys_tree.card("0x1002", "0x73bf", amd(16 * GiB, 0, revision="0xff"))  # one row: its name, any revision
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 0, revision="0x00"))  # two names, no matching revision
    gpus, _ = probe_sysfs_gpus(sys_tree.root, lookup=no_table, amdgpu_ids=ids)
    assert [g.name for g in gpus] == ["AMD Radeon RX 7900 XT", "AMD Radeon RX 6800 XT", "AMD GPU 0x744c"]


def test_nvidia_and_unknown_vendors_are_not_read_here(sys_tree):
    sys_tree.card("0x10de", "0x2684", {})
    sys_tree.card("0x1af4", "0x1050", {})  # virtio-gpu
    assert probe_sysfs_gpus(sys_tree.root, lookup=no_table) == ((), ())


def test_intel_xe_sums_its_tiles_and_free_is_unknown(sys_tree):
    sys_tree.card("0x8086", "0xe20b", {"tile0/physical_vram_size_bytes": 6 * GiB,
                                      "tile1/memory/physical_vram_size_bytes": 6 * GiB})
    gpus, notes = probe_sysfs_gpus(sys_tree.root, lookup=no_table)
    g = gpus[0]
    assert (g.name, g.total_bytes, g.free_bytes, g.backend) == ("Intel GPU 0xe20b", 12 * GiB, None, "sycl")
    assert "not in the hardware table" in notes[0]


def test_intel_out_of_tree_i915_lmem(sys_tree):
    sys_tree.card("0x8086", "0x56a0", {}, {"lmem_total_bytes": 16 * GiB, "lmem_avail_bytes": 15 * GiB})
    gpus, _ = probe_sysfs_gpus(sys_tree.root, lookup=no_table)
    assert (gpus[0].total_bytes, gpus[0].free_bytes) == (16 * GiB, 15 * GiB)


def test_integrated_intel_gpu_is_skipped_with_a_note_only_when_nothing_is_found(sys_tree, ids):
    sys_tree.card("0x8086", "0x46a6", {})  # Alder Lake iGPU: no VRAM files
    gpus, notes = probe_sysfs_gpus(sys_tree.root, lookup=no_table)
    assert gpus == () and "card0 (Intel GPU 0x46a6): no VRAM size in sysfs" in notes[0]
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 0))
    gpus, notes = probe_sysfs_gpus(sys_tree.root, lookup=no_table, amdgpu_ids=ids)
    assert [g.index for g in gpus] == [0] and not any("no VRAM size" in n for n in notes)
    _, notes = probe_sysfs_gpus(sys_tree.root / "x", lookup=no_table, others=1)
    assert notes == ()


def test_apu_carve_out_counts_only_when_it_is_the_only_gpu(sys_tree, ids):
    sys_tree.card("0x1002", "0x1681", amd(512 * MiB, 100 * MiB))  # Radeon 680M, 512 MiB UMA buffer
    alone, notes = probe_sysfs_gpus(sys_tree.root, lookup=no_table, amdgpu_ids=ids)
    assert [g.name for g in alone] == ["AMD Radeon 680M"] and any("integrated GPU" in n for n in notes)
    beside_nvidia, _ = probe_sysfs_gpus(sys_tree.root, lookup=no_table, others=1, amdgpu_ids=ids)
    assert beside_nvidia == ()
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 0))
    beside_dgpu, _ = probe_sysfs_gpus(sys_tree.root, lookup=no_table, amdgpu_ids=ids)
    assert [g.name for g in beside_dgpu] == ["AMD Radeon RX 7900 XTX"]


def test_indices_follow_other_gpus_and_card_order_is_numeric(sys_tree):
    for _ in range(11):
        sys_tree.card("0x1002", "0x7550", amd(16 * GiB, 0), connectors=False)
    (sys_tree.root / "devices/pci0000:00/0000:0d:00.0/mem_info_vram_total").write_text("32000000000\n")  # card10
    gpus, _ = probe_sysfs_gpus(sys_tree.root, lookup=no_table, others=2)
    assert [g.index for g in gpus] == list(range(2, 13))
    assert gpus[10].total_bytes == 32000000000 and gpus[2].total_bytes == 16 * GiB  # card10 sorts after card9


@pytest.mark.parametrize("garbage", ["", "lots", "-5"])
def test_unreadable_values_skip_the_card_never_raise(sys_tree, garbage):
    sys_tree.card("0x1002", "0x744c", {"mem_info_vram_total": garbage})
    sys_tree.card("zz", "0x744c", amd(8 * GiB, 0))
    gpus, _ = probe_sysfs_gpus(sys_tree.root, lookup=no_table)
    assert gpus == ()


def test_missing_tree_is_nothing(tmp_path):
    assert probe_sysfs_gpus(tmp_path / "nowhere", lookup=no_table) == ((), ())


# ---- in the whole probe ---------------------------------------------------------------------------------------

class NoNVML:
    def nvmlInit(self):
        raise RuntimeError("NVML Shared Library Not Found")


class OneNVIDIA:
    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return "NVIDIA GeForce RTX 3090"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(total=24 * GiB, free=23 * GiB)


class Psutil:
    def virtual_memory(self):
        return SimpleNamespace(total=64 * GiB, available=60 * GiB)

    def cpu_count(self, logical=True):
        return 8


def test_probe_adds_amd_after_nvidia(sys_tree):
    sys_tree.card("0x10de", "0x2204", {})  # the RTX 3090 shows up in drm too
    sys_tree.card("0x1002", "0xfffe", amd(24 * GiB, 0))  # an id no amdgpu.ids names (the real file is read here)
    hw = probe_hardware(OneNVIDIA(), Psutil(), system="Linux", sysfs_root=sys_tree.root, lookup=no_table)
    assert [(g.index, g.name, g.backend) for g in hw.gpus] == [(0, "NVIDIA GeForce RTX 3090", "cuda"),
                                                               (1, "AMD GPU 0xfffe", "rocm")]


def test_probe_without_nvml_drops_the_nvidia_note_once_amd_is_found(sys_tree):
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 0))
    hw = probe_hardware(NoNVML(), Psutil(), system="Linux", sysfs_root=sys_tree.root, lookup=no_table)
    assert len(hw.gpus) == 1 and not any("no NVIDIA GPU" in n for n in hw.notes)


def test_sysfs_is_linux_only(sys_tree):
    sys_tree.card("0x1002", "0x744c", amd(24 * GiB, 0))
    hw = probe_hardware(NoNVML(), Psutil(), system="Windows", sysfs_root=sys_tree.root, lookup=no_table)
    assert hw.gpus == () and any("no NVIDIA GPU" in n for n in hw.notes)
