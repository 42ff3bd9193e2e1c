"""Read a layout spec (benchmarks/accuracy/layouts/*.json) and write it as a header-only / sparse GGUF."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LAYOUT_DIR = HERE / "layouts"

for _path in (ROOT / "src", ROOT):  # fitcheck, and tests.gguf_builder (the header writer, not shipped)
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def layout_paths() -> list[Path]:
    return sorted(LAYOUT_DIR.glob("*.json"))


def load_layout(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def expanded_metadata(layout: dict[str, Any]) -> dict[str, Any]:
    """The layout's metadata with the {"n_vocab": N} tokenizer placeholder expanded (gguf_builder.tokenizer_metadata)."""
    from tests.gguf_builder import tokenizer_metadata

    meta: dict[str, Any] = {}
    tok = layout.get("tokenizer")
    if tok:
        meta.update(tokenizer_metadata(int(tok["n_vocab"])))
    meta.update(layout["metadata"])
    return meta


def tensor_specs(layout: dict[str, Any]) -> list[tuple[str, list[int], str]]:
    return [(name, list(shape), typ) for name, shape, typ in layout["tensors"]]


def write_gguf(layout: dict[str, Any], path: str | Path, *, sparse: bool = True) -> int:
    """Write the header; with sparse=True also extend the file to its full size (no data, a sparse file)."""
    from tests.gguf_builder import write_header_only

    full = write_header_only(path, layout["arch"], expanded_metadata(layout), tensor_specs(layout))
    if sparse:
        os.truncate(path, full)
    return full
