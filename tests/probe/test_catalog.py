"""The GPU table as values: DeviceSpec, find() for the probe and resolve() for --gpu (no network, no GPU)."""

from __future__ import annotations

from collections import Counter

import pytest

from fitcheck.errors import UsageError
from fitcheck.model import GiB, Gpu
from fitcheck.probe import catalog
from fitcheck.probe.catalog import DeviceSpec, Selection, devices, find, key, load_devices, resolve


def dev(name: str, memory: tuple[int, ...] = (24,), *, aliases: tuple[str, ...] = (), bus: str = "pcie4 x16",
        cores: int | None = None, vendor: str = "nvidia", family: str = "geforce", backend: str = "cuda",
        released: int = 2022, bandwidth: float = 500.0) -> DeviceSpec:
    return DeviceSpec(name=name, vendor=vendor, family=family, backend=backend, aliases=aliases, memory_gib=memory,
                      bandwidth_gbps=bandwidth, fp16_tflops=100.0, fp32_tflops=25.0, bus=bus, released=released,
                      source=f"https://example.test/{name.replace(' ', '-')}", gpu_cores=cores)


def apple(name: str, cores: int, memory: tuple[int, ...], bandwidth: float = 400.0) -> DeviceSpec:
    return dev(name, memory, bus="unified", cores=cores, vendor="apple", family="apple", backend="metal",
               bandwidth=bandwidth)


TABLE = (
    dev("RTX 2060", (6,), aliases=("NVIDIA GeForce RTX 2060",), bus="pcie3 x16"),
    dev("RTX 2060 12GB", (12,), aliases=("NVIDIA GeForce RTX 2060 12GB",), bus="pcie3 x16"),
    dev("RTX 3060 8GB", (8,)),
    dev("RTX 3060 12GB", (12,), aliases=("NVIDIA GeForce RTX 3060",), bandwidth=360.0),
    dev("RTX 3060 Ti", (8,), aliases=("NVIDIA GeForce RTX 3060 Ti",)),
    dev("RTX 3060 Laptop", (6,), aliases=("NVIDIA GeForce RTX 3060 Laptop GPU",), family="geforce-laptop"),
    dev("RTX 3090", (24,), aliases=("NVIDIA GeForce RTX 3090",), bandwidth=936.0),
    dev("RTX 4050 Laptop", (6,), aliases=("NVIDIA GeForce RTX 4050 Laptop GPU",), family="geforce-laptop"),
    dev("RTX 4090", (24,), aliases=("NVIDIA GeForce RTX 4090",), bandwidth=1008.0),
    dev("RTX 4090 D", (24,), aliases=("NVIDIA GeForce RTX 4090 D",)),
    dev("RTX 4090 Laptop", (16,), aliases=("NVIDIA GeForce RTX 4090 Laptop GPU",), family="geforce-laptop"),
    dev("RX 7900 XT", (20,), aliases=("AMD Radeon RX 7900 XT",), vendor="amd", family="radeon", backend="rocm"),
    dev("RX 7900 XTX", (24,), aliases=("AMD Radeon RX 7900 XTX",), vendor="amd", family="radeon", backend="rocm"),
    dev("MI50", (16, 32), aliases=("AMD Instinct MI50",), vendor="amd", family="instinct", backend="rocm"),
    dev("Arc A770 16GB", (16,), aliases=("Intel(R) Arc(TM) A770 Graphics",), vendor="intel", family="arc",
        backend="sycl"),
    dev("V100 SXM2 16GB", (16,), aliases=("Tesla V100-SXM2-16GB",), bus="sxm", released=2017, family="datacenter"),
    dev("A100 80GB SXM", (80,), aliases=("NVIDIA A100-SXM4-80GB",), bus="sxm", released=2020, family="datacenter"),
    dev("H100 SXM", (80,), aliases=("NVIDIA H100 80GB HBM3",), bus="sxm", released=2022, family="datacenter"),
    dev("H100 PCIe", (80,), aliases=("NVIDIA H100 PCIe",), bus="pcie5 x16", family="datacenter"),
    dev("GH200 96GB", (96,), bus="nvlink-c2c", released=2023, family="datacenter"),
    dev("DGX Spark (GB10)", (128,), aliases=("NVIDIA GB10",), bus="unified", family="datacenter", bandwidth=273.0),
    apple("M1 Max (24-core GPU)", 24, (32, 64)),
    apple("M1 Max (32-core GPU)", 32, (32, 64)),
    apple("M2 Max (30-core GPU)", 30, (32, 64)),
    apple("M2 Max (38-core GPU)", 38, (32, 64, 96)),
    apple("M2 (8-core GPU)", 8, (8, 16, 24), bandwidth=100.0),
    apple("M2 (10-core GPU)", 10, (8, 16, 24), bandwidth=100.0),
)


def pick(text: str) -> Selection:
    return resolve(text, table=TABLE)


def usage(text: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        pick(text)
    message = str(info.value)
    assert "\n" not in message and info.value.hint
    return info.value


# ---- DeviceSpec ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("bus", "released", "gbps"), [
    ("pcie3 x16", 2020, 16.0), ("pcie4 x16", 2020, 32.0), ("pcie4 x8", 2022, 16.0), ("pcie5 x16", 2024, 64.0),
    ("pcie5 x8", 2025, 32.0), ("sxm", 2017, 16.0), ("sxm", 2020, 32.0), ("sxm", 2022, 64.0), ("oam", 2023, 64.0),
    ("nvlink-c2c", 2023, 450.0), ("unified", 2023, None), ("something new", 2030, None)])
def test_link_bandwidth_from_the_bus(bus, released, gbps):
    assert dev("X", bus=bus, released=released).link_gbps == gbps


def test_unified_follows_the_bus():
    assert dev("X", bus="unified").unified and not dev("X").unified
    assert apple("M2 Max (38-core GPU)", 38, (32,)).tier == "M2 Max"


def test_rows_become_frozen_specs_with_tuples():
    row = {"name": "RTX 3060 12GB", "vendor": "nvidia", "family": "geforce", "backend": "cuda",
           "aliases": ["NVIDIA GeForce RTX 3060"], "memory_gib": [12], "bandwidth_gbps": 360, "fp16_tflops": 51.2,
           "fp32_tflops": 12.7, "bus": "pcie4 x16", "released": 2021, "source": "https://x", "note": ""}
    apple_row = {**row, "name": "M2 Max (38-core GPU)", "memory_gib": [96, 32, 64], "bus": "unified",
                 "gpu_cores": 38, "aliases": []}
    broken = {"name": "half-written row"}
    spec, mac = load_devices([row, broken, apple_row])
    assert spec.aliases == ("NVIDIA GeForce RTX 3060",) and spec.memory_gib == (12,) and spec.bandwidth_gbps == 360.0
    assert not spec.slow_fp16 and spec.gpu_cores is None and spec.link_gbps == 32.0
    assert mac.memory_gib == (32, 64, 96) and mac.gpu_cores == 38 and mac.unified and mac.link_gbps is None
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_key_normalises_vendor_words_punctuation_memory_and_cores():
    assert key("NVIDIA GeForce RTX 3060") == key("rtx3060") == key("3060")
    assert key("RTX 3060 12 GB") == key("rtx 3060 12gb") == key("RTX-3060 (12G)")
    assert key("RTX 3060 12GB").memory_gib == 12 and key("RTX 3060 12GB").base == ("3060",)
    assert key("Apple M1 Max (24-core GPU)") == key("m1 max 24 cores")
    assert key("Intel(R) Arc(TM) A770 Graphics") == key("arc a770")
    assert key("RTX 3060 Laptop GPU") == key("3060 mobile") != key("3060")


# ---- resolve ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "name", "memory"), [
    ("rtx 3060 12gb", "RTX 3060 12GB", 12),
    ("RTX 3060 12 GB", "RTX 3060 12GB", 12),
    ("RTX3060 8GB", "RTX 3060 8GB", 8),
    ("RTX 3060 Ti", "RTX 3060 Ti", 8),
    ("RTX 3060 Laptop", "RTX 3060 Laptop", 6),
    ("rtx 3060 mobile", "RTX 3060 Laptop", 6),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 24),
    ("4090", "RTX 4090", 24),
    ("RTX 4090 D", "RTX 4090 D", 24),
    ("RTX 4090 24GB", "RTX 4090", 24),
    ("RTX 2060", "RTX 2060", 6),  # the row named exactly that, not also "RTX 2060 12GB"
    ("RTX 2060 12GB", "RTX 2060 12GB", 12),
    ("Apple M1 Max (24-core GPU)", "M1 Max (24-core GPU)", 32),
    ("M1 Max 24-core", "M1 Max (24-core GPU)", 32),
    ("m1 max 32 core 64gb", "M1 Max (32-core GPU)", 64),
    ("AMD Radeon RX 7900 XTX", "RX 7900 XTX", 24),
    ("7900 xtx", "RX 7900 XTX", 24),
    ("7900XT", "RX 7900 XT", 20),
    ("MI50 32GB", "MI50", 32),
    ("Intel(R) Arc(TM) A770 Graphics", "Arc A770 16GB", 16),
    ("Tesla V100-SXM2-16GB", "V100 SXM2 16GB", 16),
    ("DGX Spark", "DGX Spark (GB10)", 128),  # the only row with all those words
    ("  h100   SXM ", "H100 SXM", 80),
])
def test_resolves(text, name, memory):
    s = pick(text)
    assert (s.device.name, s.memory_gib, s.count) == (name, memory, 1)


@pytest.mark.parametrize("text", ["2x RTX 3090", "2 x RTX 3090", "RTX 3090 x2", "2×RTX 3090", "rtx 3090 X 2"])
def test_counts(text):
    s = pick(text)
    assert (s.device.name, s.count) == ("RTX 3090", 2)
    assert [g.index for g in s.gpus()] == [0, 1]


@pytest.mark.parametrize("text", ["0x RTX 3090", "17x RTX 3090"])
def test_count_out_of_range(text):
    assert "count must be 1 to 16" in str(usage(text))


def test_a_unified_device_cannot_be_multiplied():
    assert "unified memory" in str(usage("2x M2 Max 64GB"))
    assert "--rpc" in (usage("DGX Spark x2").hint or "")


def test_ambiguous_memory_variants_are_listed_without_ti_or_laptop():
    err = usage("RTX 3060")
    assert str(err) == "--gpu 'RTX 3060' is ambiguous: RTX 3060 12GB, RTX 3060 8GB"
    assert "RTX 3060 12GB" in (err.hint or "")
    assert str(usage("NVIDIA GeForce RTX 3060")).endswith("RTX 3060 12GB, RTX 3060 8GB")


def test_ambiguous_across_models():
    assert str(usage("H100")) == "--gpu 'H100' is ambiguous: H100 PCIe, H100 SXM"
    assert str(usage("7900")) == "--gpu '7900' is ambiguous: RX 7900 XT, RX 7900 XTX"


def test_unknown_lists_close_names():
    err = usage("RTX 4080 Super")
    assert str(err).startswith("--gpu 'RTX 4080 Super': no such GPU")
    names = str(err).split("did you mean: ")[1].rstrip("?").split(", ")
    assert 1 <= len(names) <= 5 and set(names) <= {d.name for d in TABLE}
    assert "did you mean" not in str(usage("qwertyuiop"))


def test_laptop_rows_need_the_word():
    err = usage("4050")  # only a laptop 4050 exists: suggested, never chosen
    assert "no such GPU" in str(err) and "RTX 4050 Laptop" in str(err)
    assert pick("4050 laptop").device.name == "RTX 4050 Laptop"


def test_memory_must_be_an_option():
    assert str(usage("RTX 3090 48GB")) == "--gpu 'RTX 3090 48GB': RTX 3090 comes with 24 GB"
    assert str(usage("M2 Max 128GB")) == "--gpu 'M2 Max 128GB': M2 Max comes with 32, 64 or 96 GB"
    assert "16 or 32 GB" in str(usage("MI50 64GB"))


def test_empty_or_vendor_only_is_a_usage_error():
    assert "names no GPU" in str(usage("  "))
    assert "names no GPU" in str(usage("NVIDIA GeForce"))


def test_apple_tier_prefers_the_variant_with_the_memory():
    s = pick("M2 Max 96GB")
    assert (s.device.name, s.memory_gib, s.note, s.notes) == ("M2 Max (38-core GPU)", 96, None, ())


def test_apple_tier_then_the_fewest_cores_with_a_note():
    s = pick("M2 Max 64GB")
    assert (s.device.name, s.memory_gib) == ("M2 Max (30-core GPU)", 64)
    assert s.note == "M2 Max: assumed the 30-core GPU; name 'M2 Max (38-core GPU)' for the other"
    assert s.notes == (s.note,) and not s.memory_assumed


def test_apple_tier_without_memory_assumes_the_smallest():
    s = pick("Apple M2")  # not M2 Max
    assert (s.device.name, s.memory_gib, s.memory_assumed) == ("M2 (8-core GPU)", 8, True)
    assert len(s.notes) == 2 and "8-core" in s.notes[0]
    assert s.notes[1] == ("M2 (8-core GPU): assumed 8 GB, the smallest sold (also 16 or 24 GB); "
                          "add e.g. '24GB' to --gpu for another")
    assert "assumed 16 GB" in (pick("MI50").memory_note or "")
    assert pick("RTX 3090").memory_note is None


def test_selection_gpus_carry_the_spec():
    s = pick("2x RTX 3060 12GB")
    gpus = s.gpus()
    assert gpus == tuple(Gpu(index=i, name="RTX 3060 12GB", total_bytes=12 * GiB, free_bytes=12 * GiB,
                             bandwidth_gbps=360.0, fp16_tflops=100.0, fp32_tflops=25.0, link_gbps=32.0,
                             backend="cuda", spec_source="https://example.test/RTX-3060-12GB") for i in (0, 1))
    assert [g.total_bytes for g in s.gpus(total_bytes=5 * GiB)] == [5 * GiB, 5 * GiB]


# ---- find ---------------------------------------------------------------------------------------------------

def test_find_nvml_names_and_memory():
    assert find("NVIDIA GeForce RTX 3060", 8 * GiB, table=TABLE).name == "RTX 3060 8GB"
    assert find("NVIDIA GeForce RTX 3060", 12 * GiB - 300 * 2**20, table=TABLE).name == "RTX 3060 12GB"
    assert find("NVIDIA GeForce RTX 3060", table=TABLE).name == "RTX 3060 12GB"  # the row holding that alias
    assert find("NVIDIA GeForce RTX 2060", table=TABLE).name == "RTX 2060"
    assert find("NVIDIA GeForce RTX 2060", 12 * GiB, table=TABLE).name == "RTX 2060 12GB"
    assert find("NVIDIA GeForce RTX 3060 Laptop GPU", 6 * GiB, table=TABLE).name == "RTX 3060 Laptop"
    assert find("NVIDIA H100 80GB HBM3", 80 * GiB, table=TABLE).name == "H100 SXM"
    assert find("AMD Radeon RX 7900 XTX", table=TABLE).name == "RX 7900 XTX"
    assert find("Apple M2 Max", 96 * GiB, table=TABLE).name == "M2 Max (38-core GPU)"


def test_find_is_exact():
    for name in ("NVIDIA GeForce RTX 4080", "4050", "NVIDIA GeForce RTX 3060 Ti Laptop GPU", "H100", "", "Max"):
        assert find(name, 8 * GiB, table=TABLE) is None, name


def test_find_never_raises(monkeypatch):
    def broken() -> tuple[DeviceSpec, ...]:
        raise OSError("hardware.yaml missing")

    monkeypatch.setattr(catalog, "devices", broken)
    assert find("NVIDIA GeForce RTX 4090", 24 * GiB) is None
    assert find("RTX 4090", table=(dev("RTX 4090", ()),)).name == "RTX 4090"  # no memory options: no crash


# ---- the packaged table -------------------------------------------------------------------------------------

KNOWN = ["RTX 3060 12GB", "RTX 3060 8GB", "RTX 4090", "RTX 3090", "M2 Max (38-core GPU)", "RX 7900 XTX", "H100 SXM",
         "P40"]


def test_real_table_known_rows():
    by_name = {d.name: d for d in devices()}
    assert set(KNOWN) <= set(by_name)
    assert by_name["RTX 3060 12GB"].memory_gib == (12,) and by_name["RTX 3060 12GB"].link_gbps == 32.0
    assert by_name["M2 Max (38-core GPU)"].unified and by_name["M2 Max (38-core GPU)"].gpu_cores == 38
    assert by_name["H100 SXM"].link_gbps == 64.0 and by_name["H100 SXM"].backend == "cuda"


@pytest.mark.parametrize("text", KNOWN)
def test_real_table_names_resolve_to_themselves(text):
    assert resolve(text).device.name == text


def test_real_table_query_cases():
    assert str_of(lambda: resolve("RTX 3060")) == "--gpu 'RTX 3060' is ambiguous: RTX 3060 12GB, RTX 3060 8GB"
    assert resolve("4090").device.name == "RTX 4090"
    assert resolve("NVIDIA GeForce RTX 4090").device.name == "RTX 4090"
    assert resolve("7900 xtx").device.name == "RX 7900 XTX"
    assert resolve("tesla p40").device.name == "P40"
    s = resolve("M2 Max 64GB")
    assert (s.device.name, s.memory_gib) == ("M2 Max (30-core GPU)", 64) and "30-core" in (s.note or "")
    assert resolve("2 x RTX 3090").count == 2


def test_real_table_every_row_is_reachable():
    keys = Counter((key(d.name).base, key(d.name).memory_gib, key(d.name).cores) for d in devices())
    assert [k for k, n in keys.items() if n > 1] == []  # normalising keeps every row distinct
    for d in devices():
        assert resolve(d.name).device == d
        for alias in d.aliases:
            for memory in d.memory_gib:
                assert find(alias, memory * GiB) == d, (alias, memory)


def str_of(call) -> str:
    with pytest.raises(UsageError) as info:
        call()
    return str(info.value)
