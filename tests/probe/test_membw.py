"""RAM bandwidth: one real measurement (fast, bounded), the rest with a fake measure and tmp_path caches."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fitcheck.cachedir import cache_dir
from fitcheck.model import GiB, MiB
from fitcheck.probe import membw
from fitcheck.probe.membw import (
    _array_bytes,
    _llc_bytes,
    cached_ram_bandwidth,
    cpu_info,
    fingerprint,
    measure_ram_bandwidth,
)


def test_real_measurement_is_positive_finite_and_quick():
    start = time.perf_counter()
    gbps = measure_ram_bandwidth()
    assert time.perf_counter() - start < 1.0
    assert math.isfinite(gbps) and gbps > 0


class Measure:
    def __init__(self, value: float = 42.5):
        self.value, self.calls = value, []

    def __call__(self, threads):
        self.calls.append(threads)
        return self.value


def test_cache_measures_once_per_machine(tmp_path):
    measure = Measure()
    assert cached_ram_bandwidth(tmp_path, threads=4, measure=measure, key="cpu A") == (42.5, "measured")
    assert cached_ram_bandwidth(tmp_path, threads=4, measure=measure, key="cpu A") == (42.5, "measured")
    assert measure.calls == [4]
    assert cached_ram_bandwidth(tmp_path, measure=Measure(90.0), key="cpu B") == (90.0, "measured")
    entries = json.loads((tmp_path / "membw.json").read_text())["entries"]
    assert set(entries) == {"cpu A", "cpu B"} and entries["cpu A"]["gbps"] == 42.5


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "entries": {"k": {"gbps": "fast"}}}',
                                     '{"format": 1, "entries": {"k": {"gbps": -3}}}', '{"format": 99}', "[]"])
def test_a_bad_cache_is_measured_again(tmp_path, content):
    (tmp_path / "membw.json").write_text(content)
    measure = Measure()
    assert cached_ram_bandwidth(tmp_path, measure=measure, key="k") == (42.5, "measured") and len(measure.calls) == 1
    assert cached_ram_bandwidth(tmp_path, measure=measure, key="k")[0] == 42.5 and len(measure.calls) == 1


def test_an_unwritable_cache_just_measures_again(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory should be")
    measure = Measure()
    for _ in range(2):
        assert cached_ram_bandwidth(blocked / "fitcheck", measure=measure, key="k") == (42.5, "measured")
    assert len(measure.calls) == 2


def test_an_implausible_measurement_is_not_cached(tmp_path):
    with pytest.raises(RuntimeError, match="implausible"):
        cached_ram_bandwidth(tmp_path, measure=Measure(math.nan), key="k")
    assert not (tmp_path / "membw.json").exists()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("FITCHECK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "fitcheck"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "fitcheck"


def test_cached_ram_bandwidth_uses_the_default_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path))
    cached_ram_bandwidth(measure=Measure(), key="k")
    assert (tmp_path / membw.CACHE_FILE).is_file()


class Psutil:
    def __init__(self, physical, total=32 * GiB):
        self.physical, self.total = physical, total

    def cpu_count(self, logical=True):
        return 16 if logical else self.physical

    def virtual_memory(self):
        return SimpleNamespace(total=self.total, available=self.total // 2)


def test_cpu_info_from_proc_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD Ryzen 9 7950X 16-Core Processor\n"
                   "processor\t: 1\nmodel name\t: AMD Ryzen 9 7950X 16-Core Processor\n")
    assert cpu_info(Psutil(8), x86, system="Linux") == ("AMD Ryzen 9 7950X 16-Core Processor", 8)
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd0c\n\n"
                   "Hardware\t: BCM2835\nModel\t: Raspberry Pi 5\n")
    assert cpu_info(Psutil(4), arm, system="Linux")[0] == "BCM2835"


def test_cpu_info_falls_back_to_logical_cpus(tmp_path, monkeypatch):
    monkeypatch.setattr(membw.os, "cpu_count", lambda: 12)
    assert cpu_info(Psutil(None), tmp_path / "missing", system="Linux")[1] == 12

    class Broken:
        def cpu_count(self, logical=True):
            raise OSError("no /sys")

    assert cpu_info(Broken(), tmp_path / "missing", system="Linux")[1] == 12


def test_fingerprint_names_cpu_cores_ram_and_threads(monkeypatch):
    monkeypatch.setattr(membw, "cpu_info", lambda psutil_module=None: ("Xeon w5-3435X", 16))
    assert fingerprint(8, Psutil(16, total=int(255.8 * GiB))) == "Xeon w5-3435X|16 cores|256 GiB|8 threads"
    assert fingerprint(None, Psutil(16)) == "Xeon w5-3435X|16 cores|32 GiB|16 threads"


def test_array_sizes_stay_small_and_beyond_the_cache():
    assert _array_bytes(1, None, llc=32 * MiB) == 128 * MiB
    assert _array_bytes(2, 64 * GiB, llc=32 * MiB) == 64 * MiB
    assert _array_bytes(8, 64 * GiB, llc=96 * MiB) == 48 * MiB  # 4 × LLC in all
    assert _array_bytes(64, 512 * GiB, llc=512 * MiB) == 16 * MiB  # 1 GiB in all at most
    assert _array_bytes(256, 512 * GiB, llc=512 * MiB) == 8 * MiB  # at least 8 MiB a thread
    assert _array_bytes(2, 256 * MiB, llc=32 * MiB) == 32 * MiB  # 1/4 of what is available
    assert _array_bytes(4, 64 * MiB, llc=32 * MiB) == 4 * MiB  # ... even below 8 MiB a thread


def test_llc_counts_each_shared_cache_once(tmp_path):
    def cache(cpu, index, level, size, shared):
        d = tmp_path / f"cpu{cpu}" / "cache" / f"index{index}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "size").write_text(f"{size}\n")
        (d / "shared_cpu_list").write_text(f"{shared}\n")

    for cpu in range(4):  # two CCXs of two cores, 32 MiB L3 each; private 1 MiB L2
        cache(cpu, 2, 2, "1024K", str(cpu))
        cache(cpu, 3, 3, "32768K", "0-1" if cpu < 2 else "2-3")
    assert _llc_bytes(tmp_path) == 64 * MiB
    assert _llc_bytes(tmp_path / "none") is None


def test_bandwidth_cache_path_is_under_the_cache_dir(tmp_path: Path):
    cached_ram_bandwidth(tmp_path / "deep" / "er", measure=Measure(), key="k")
    assert (tmp_path / "deep" / "er" / "membw.json").is_file()
