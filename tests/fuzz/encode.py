"""Small real-shaped GGUF headers as a structure, and a GGUF encoder that writes whatever it is given (wrong
types, unknown type ids, broken names, offsets) and records where each count, length, type and value lies,
for the fuzz harness (tests/fuzz/harness.py)."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYOUTS = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy" / "layouts"

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q", F64: "d"}
N_VOCAB = 512
# name -> (layout file, blocks kept)
SEEDS = {"llama": ("llama-3.1-8b", 4), "qwen3moe": ("qwen3-30b-a3b", 4), "deepseek2": ("deepseek-v2-lite", 3),
         "lfm2": ("lfm2-1.2b", 16), "gemma3": ("gemma-3-4b", 12)}


@dataclass
class KV:
    key: str | bytes
    type_id: int
    value: Any  # scalar, str/bytes, or (element type, [values]) for arrays


@dataclass
class TI:
    name: str | bytes
    dims: list[int]
    type_id: int
    offset: int | None = None  # None: the running aligned offset gguf.cpp expects


@dataclass
class Model:
    kvs: list[KV]
    tensors: list[TI]
    version: int = 3
    alignment: int = 32


@dataclass
class Encoded:
    data: bytes
    fields: list[tuple[int, int, str]] = field(default_factory=list)  # (offset, width, kind)


# -- seeds --------------------------------------------------------------------------------------------------------

def _typed(value: Any) -> tuple[int, Any]:
    if isinstance(value, dict):
        kind = {"uint8": U8, "int8": I8, "uint16": U16, "int16": I16, "uint32": U32, "int32": I32,
                "float32": F32, "uint64": U64, "int64": I64, "float64": F64, "bool": BOOL,
                "string": STRING}[value["type"]]
        return kind, value["value"]
    if isinstance(value, bool):
        return BOOL, value
    if isinstance(value, int):
        return (I32 if value < 0 else U64 if value >= 1 << 32 else U32), value
    if isinstance(value, float):
        return F32, value
    if isinstance(value, str):
        return STRING, value
    if isinstance(value, list):
        elem = _typed(value[0])[0] if value else I32
        return ARRAY, (elem, list(value))
    raise TypeError(value)


def _type_ids() -> dict[str, int]:
    from fitcheck import quant

    return {name: t.id for name, t in quant.tensor_types().items()}


def seed(name: str) -> Model:
    """One of SEEDS as a structure: its layout with `blocks` blocks and an N_VOCAB-token vocabulary."""
    layout_name, blocks = SEEDS[name]
    layout = json.loads((LAYOUTS / f"{layout_name}.json").read_text())
    arch = layout["arch"]
    ids = _type_ids()
    meta: dict[str, Any] = {"general.architecture": arch, **layout["metadata"]}
    meta[f"{arch}.block_count"] = blocks
    for key, value in list(meta.items()):
        if isinstance(value, list):
            meta[key] = value[:blocks]
    kvs = [KV(k, *_typed(v)) for k, v in meta.items()]
    tokens = ["<unk>", "<s>", "</s>"] + [f"tok{i}" for i in range(3, N_VOCAB)]
    kvs += [KV("tokenizer.ggml.model", STRING, "llama"), KV("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
            KV("tokenizer.ggml.scores", ARRAY, (F32, [0.0] * N_VOCAB)),
            KV("tokenizer.ggml.token_type", ARRAY, (I32, [1] * N_VOCAB))]
    tensors = []
    vocab = int(layout["tokenizer"]["n_vocab"]) if layout.get("tokenizer") else None
    for tname, shape, typ in layout["tensors"]:
        if tname.startswith("blk.") and int(tname.split(".")[1]) >= blocks:
            continue
        dims = [int(d) for d in shape]
        if vocab is not None and len(dims) == 2 and dims[1] == vocab:
            dims[1] = N_VOCAB
        tensors.append(TI(tname, dims, ids[typ]))
    return Model(kvs, tensors)


# -- encoding -----------------------------------------------------------------------------------------------------

def _row_bytes(type_id: int, dims: list[int]) -> int:
    from fitcheck import quant

    try:
        t = quant.tensor_type(type_id)
    except KeyError:
        return 0
    n = 1
    for d in dims:
        n *= d
    return n // t.block_size * t.type_size


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.fields: list[tuple[int, int, str]] = []

    def put(self, fmt: str, value: Any, kind: str | None = None) -> None:
        raw = _pack(fmt, value)
        if kind:
            self.fields.append((len(self.buf), len(raw), kind))
        self.buf += raw

    def string(self, text: str | bytes, kind: str = "length") -> None:
        raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        self.put("Q", len(raw), kind)
        self.buf += raw

    def value(self, type_id: int, value: Any) -> None:
        if type_id == STRING:
            self.string(value)
        elif type_id == ARRAY:
            elem, items = value
            self.put("I", elem, "type")
            self.put("Q", len(items), "count")
            for item in items:
                self.value(elem, item)
        elif type_id in _FMT:
            self.put(_FMT[type_id], value, "value")
        # any other type id: nothing follows (the reader must refuse it)


def _pack(fmt: str, value: Any) -> bytes:
    try:
        return struct.pack("<" + fmt, value)
    except (struct.error, OverflowError, TypeError):
        # a value that does not fit its type: keep the low bytes, as a broken writer would
        width = struct.calcsize("<" + fmt)
        if isinstance(value, float) and not math.isfinite(value):
            value = 0
        return (int(value) & ((1 << (8 * width)) - 1)).to_bytes(width, "little")


def encode(model: Model) -> Encoded:
    w = _Writer()
    w.buf += b"GGUF"
    w.put("I", model.version, "version")
    w.put("Q", len(model.tensors), "count")
    w.put("Q", len(model.kvs), "count")
    for kv in model.kvs:
        w.string(kv.key, "length")
        w.put("I", kv.type_id, "type")
        w.value(kv.type_id, kv.value)
    offset = 0
    for t in model.tensors:
        w.string(t.name, "length")
        w.put("I", len(t.dims), "ndims")
        for d in t.dims:
            w.put("Q", d, "dim")
        w.put("I", t.type_id, "type")
        w.put("Q", offset if t.offset is None else t.offset, "offset")
        size = _row_bytes(t.type_id, t.dims) if all(isinstance(d, int) and d >= 0 for d in t.dims) else 0
        offset += (size + model.alignment - 1) // model.alignment * model.alignment
    return Encoded(bytes(w.buf), w.fields)
