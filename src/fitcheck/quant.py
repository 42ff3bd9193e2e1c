"""ggml tensor types and llama.cpp file types, from data/quant_types.yaml (shipped inside the package)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .data import load_yaml

# Cache types llama.cpp accepts for -ctk / -ctv (common/arg.cpp kv_cache_types).
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


@dataclass(frozen=True)
class TensorType:
    name: str
    id: int
    block_size: int
    type_size: int
    bits_per_weight: float
    note: str


@dataclass(frozen=True)
class FileType:
    name: str
    id: int
    bits_per_weight: float
    note: str


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, TensorType], dict[int, TensorType], dict[str, FileType], dict[int, FileType]]:
    raw: dict[str, Any] = load_yaml("quant_types.yaml")
    by_name = {name: TensorType(name=name, **fields) for name, fields in raw["tensor_types"].items()}
    files = {name: FileType(name=name, **fields) for name, fields in raw["file_types"].items()}
    return (by_name, {t.id: t for t in by_name.values()}, files, {f.id: f for f in files.values()})


def tensor_types() -> dict[str, TensorType]:
    return _tables()[0]


def tensor_type(name_or_id: str | int) -> TensorType:
    by_name, by_id, _, _ = _tables()
    found = by_id.get(name_or_id) if isinstance(name_or_id, int) else by_name.get(name_or_id.upper())
    if found is None:
        raise KeyError(f"unknown ggml type {name_or_id!r}")
    return found


def file_types() -> dict[str, FileType]:
    return _tables()[2]


def file_type_name(file_type_id: int | None) -> str | None:
    if file_type_id is None:
        return None
    found = _tables()[3].get(file_type_id)
    return found.name if found else f"unknown ({file_type_id})"


def row_size(type_name: str | int, n_elements: int) -> int:
    """Bytes for n_elements of a type (ggml_row_size); n_elements must fill whole blocks."""
    t = tensor_type(type_name)
    return n_elements // t.block_size * t.type_size + (t.type_size if n_elements % t.block_size else 0)
