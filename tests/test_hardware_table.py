"""Validation of data/hardware.yaml, the sourced GPU/accelerator table (no network)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

TABLE_PATH = Path(__file__).resolve().parents[1] / "data" / "hardware.yaml"

VENDORS = {"nvidia", "amd", "intel", "apple"}
FAMILY_VENDOR = {
    "geforce": "nvidia",
    "geforce-laptop": "nvidia",
    "workstation": "nvidia",
    "datacenter": "nvidia",
    "radeon": "amd",
    "radeon-pro": "amd",
    "instinct": "amd",
    "ryzen-ai": "amd",
    "arc": "intel",
    "arc-pro": "intel",
    "apple": "apple",
}
BACKENDS = {"cuda", "rocm", "vulkan", "metal", "sycl"}
VENDOR_BACKENDS = {
    "nvidia": {"cuda", "vulkan"},
    "amd": {"rocm", "vulkan"},
    "intel": {"sycl", "vulkan"},
    "apple": {"metal"},
}
BUS_RE = re.compile(r"^(pcie[345] x(1|2|4|8|16)|sxm|oam|unified|nvlink-c2c)$")

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "vendor": str,
    "family": str,
    "backend": str,
    "aliases": list,
    "memory_gib": list,
    "bandwidth_gbps": (int, float),
    "fp16_tflops": (int, float),
    "fp32_tflops": (int, float),
    "bus": str,
    "released": int,
    "source": str,
    "note": str,
}
OPTIONAL: dict[str, type | tuple[type, ...]] = {"slow_fp16": bool, "gpu_cores": int}

MIN_PER_FAMILY = {
    "geforce": 40,
    "geforce-laptop": 8,
    "datacenter": 15,
    "radeon": 15,
    "instinct": 6,
    "arc": 6,
    "apple": 25,
}
MUST_EXIST = [
    "RTX 3060 12GB",
    "RTX 3060 8GB",
    "RTX 4090",
    "RTX 3090",
    "M2 Max (38-core GPU)",
    "RX 7900 XTX",
    "H100 SXM",
    "P40",
]


def _load() -> dict[str, Any]:
    with TABLE_PATH.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


TABLE = _load()
DEVICES: list[dict[str, Any]] = TABLE["devices"]


def _key(s: str) -> str:
    return " ".join(s.split()).casefold()


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _has_type(v: Any, typ: type | tuple[type, ...]) -> bool:
    # bool is an int subclass: only a field declared bool may hold one.
    if isinstance(v, bool):
        return typ is bool
    return isinstance(v, typ)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("name", f"row {i}")) for i, r in enumerate(rows)]


row_param = pytest.mark.parametrize("row", DEVICES, ids=_ids(DEVICES))


def test_schema_version() -> None:
    assert TABLE.get("schema") == 1
    assert isinstance(DEVICES, list)


def test_row_count() -> None:
    assert len(DEVICES) >= 150, f"only {len(DEVICES)} devices"


@row_param
def test_fields_and_types(row: dict[str, Any]) -> None:
    name = row.get("name")
    for field, typ in REQUIRED.items():
        assert field in row, f"{name}: missing {field!r}"
        value = row[field]
        assert _has_type(value, typ), f"{name}: {field} should be {typ}, got {value!r}"
    for field, typ in OPTIONAL.items():
        if field in row:
            assert _has_type(row[field], typ), f"{name}: {field} should be {typ}, got {row[field]!r}"
    unknown = set(row) - set(REQUIRED) - set(OPTIONAL)
    assert not unknown, f"{name}: unknown fields {sorted(unknown)}"
    assert row["name"].strip() == row["name"] and row["name"], f"{name!r}: name is empty or padded"
    assert all(isinstance(a, str) and a.strip() for a in row["aliases"]), f"{name}: aliases must be non-empty strings"


@row_param
def test_enumerations(row: dict[str, Any]) -> None:
    name = row["name"]
    assert row["vendor"] in VENDORS, f"{name}: vendor {row['vendor']!r}"
    assert row["family"] in FAMILY_VENDOR, f"{name}: family {row['family']!r}"
    assert FAMILY_VENDOR[row["family"]] == row["vendor"], f"{name}: family {row['family']} is not {row['vendor']}"
    assert row["backend"] in BACKENDS, f"{name}: backend {row['backend']!r}"
    assert row["backend"] in VENDOR_BACKENDS[row["vendor"]], f"{name}: backend {row['backend']} for {row['vendor']}"
    assert BUS_RE.match(row["bus"]), f"{name}: bus {row['bus']!r}"


def test_names_unique() -> None:
    counts = Counter(_key(r["name"]) for r in DEVICES)
    dupes = sorted(k for k, n in counts.items() if n > 1)
    assert not dupes, f"duplicate names: {dupes}"


def test_aliases_unique_across_names_and_aliases() -> None:
    owner: dict[str, str] = {}
    clashes: list[str] = []
    for row in DEVICES:
        for label in [row["name"], *row["aliases"]]:
            k = _key(label)
            if k in owner:
                clashes.append(f"{label!r} in {row['name']} also in {owner[k]}")
            else:
                owner[k] = row["name"]
    assert not clashes, "; ".join(clashes)


@row_param
def test_memory(row: dict[str, Any]) -> None:
    mem = row["memory_gib"]
    name = row["name"]
    assert mem, f"{name}: memory_gib is empty"
    assert all(_is_num(m) and 1 <= m <= 1024 for m in mem), f"{name}: memory_gib out of 1..1024: {mem}"
    assert mem == sorted(mem) and len(set(mem)) == len(mem), f"{name}: memory_gib not strictly ascending: {mem}"


@row_param
def test_numeric_ranges(row: dict[str, Any]) -> None:
    name = row["name"]
    bw, fp16, fp32 = row["bandwidth_gbps"], row["fp16_tflops"], row["fp32_tflops"]
    assert 50 <= bw <= 10000, f"{name}: bandwidth {bw} GB/s"
    assert 0.5 <= fp32 <= 200, f"{name}: fp32 {fp32} TFLOPS"
    # Pascal's 1/64-rate FP16 is as low as 0.03 TFLOPS (GTX 1050), so flagged rows get a lower floor.
    fp16_floor = 0.01 if row.get("slow_fp16") else 0.1
    assert fp16_floor <= fp16 <= 5000, f"{name}: fp16 {fp16} TFLOPS"
    assert 2000 <= row["released"] <= 2030, f"{name}: released {row['released']}"


@row_param
def test_fp16_not_below_fp32(row: dict[str, Any]) -> None:
    if row.get("slow_fp16"):
        assert row["fp16_tflops"] < row["fp32_tflops"], f"{row['name']}: slow_fp16 set but FP16 is not slow"
        return
    assert row["fp16_tflops"] >= 0.9 * row["fp32_tflops"], (
        f"{row['name']}: fp16 {row['fp16_tflops']} < 0.9 x fp32 {row['fp32_tflops']} (mark slow_fp16 if real)"
    )


@row_param
def test_source_is_url(row: dict[str, Any]) -> None:
    assert re.match(r"^https?://[^\s/]+\.[^\s/]+/\S*$", row["source"]), f"{row['name']}: source {row['source']!r}"


@row_param
def test_apple_and_unified_rows(row: dict[str, Any]) -> None:
    name = row["name"]
    if row["vendor"] == "apple":
        assert isinstance(row.get("gpu_cores"), int) and row["gpu_cores"] > 0, f"{name}: Apple row needs gpu_cores"
        assert row["bus"] == "unified", f"{name}: Apple row must have bus unified"
        assert f"({row['gpu_cores']}-core GPU)" in name, f"{name}: name should carry the GPU core count"
    else:
        assert "gpu_cores" not in row, f"{name}: gpu_cores is for Apple rows only"


def test_apple_variants_differ() -> None:
    seen: dict[tuple[str, int], str] = {}
    for row in DEVICES:
        if row["vendor"] != "apple":
            continue
        chip = row["name"].split(" (")[0]
        k = (chip, row["gpu_cores"])
        assert k not in seen, f"{row['name']} repeats {seen[k]}"
        seen[k] = row["name"]


def test_family_coverage() -> None:
    counts = Counter(r["family"] for r in DEVICES)
    short = {f: (counts[f], n) for f, n in MIN_PER_FAMILY.items() if counts[f] < n}
    assert not short, f"families below minimum (have, need): {short}"


@pytest.mark.parametrize("name", MUST_EXIST)
def test_named_rows_exist(name: str) -> None:
    assert name in {r["name"] for r in DEVICES}, f"missing row {name!r}"
