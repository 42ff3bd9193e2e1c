"""Local GGUF files (single or split) to a ModelSpec, and the header-to-spec mapping every source shares."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import quant
from ..errors import InputError
from ..model import ModelSpec, Tensor
from .gguf_header import ArraySummary, FileSource, GGUFHeader, parse_header

SPLIT_RE = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
LAYER_RE = re.compile(r"^blk\.(\d+)\.")


def split_names(name: str) -> list[str] | None:
    """All shard names of a llama.cpp split model (`x-00001-of-00003.gguf`), or None if not split."""
    m = SPLIT_RE.match(name)
    if not m:
        return None
    count = int(m["count"])
    return [f"{m['prefix']}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def load_local(path_text: str) -> ModelSpec:
    path = Path(path_text)
    if path.is_dir():
        raise InputError(f"{path}: is a directory", hint="pass a .gguf file (the first shard of a split model)")
    if not path.exists():
        raise InputError(f"{path}: no such file", hint="check the path, or use hf:org/repo for a Hub model")
    shard_paths = [path]
    names = split_names(path.name)
    if names:
        shard_paths = [path.with_name(n) for n in names]
        missing = [p.name for p in shard_paths if not p.exists()]
        if missing:
            raise InputError(f"{path}: split model is missing {len(missing)} shard(s), e.g. {missing[0]}",
                             hint="download every shard into the same folder")
    shards = []
    for shard in shard_paths:
        try:
            with FileSource(str(shard)) as source:
                shards.append((parse_header(source, shard.name), source.size))
        except OSError as exc:
            raise InputError(f"{shard}: cannot read ({exc.strerror or exc})") from exc
    return build_spec(str(path), shards)


def _int(meta: dict[str, Any], key: str, default: int = 0) -> int:
    value = meta.get(key, default)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def per_layer(meta: dict[str, Any], key: str, n_layer: int, default: int) -> tuple[int, ...]:
    """A hyperparameter that may be one number or an array with one entry per layer (llama.cpp get_key_or_arr)."""
    value = meta.get(key, default)
    if isinstance(value, list):
        if len(value) != n_layer:
            raise InputError(f"{key} has {len(value)} entries for {n_layer} layers")
        return tuple(int(v) for v in value)
    if isinstance(value, ArraySummary):
        raise InputError(f"{key} is an array of {value.count} entries for {n_layer} layers")
    return (int(value),) * n_layer


def build_spec(ref: str, shards: Sequence[tuple[GGUFHeader, int | None]]) -> ModelSpec:
    """Merge one or more shard headers into a ModelSpec; note files shorter than their tensors need."""
    meta: dict[str, Any] = dict(shards[0][0].metadata)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise InputError(f"{ref}: GGUF has no general.architecture",
                         hint="is this a model file (not a LoRA or mmproj)?")
    notes: list[str] = []
    expected_shards = _int(meta, "split.count", 1)
    if expected_shards > len(shards):
        raise InputError(f"{ref}: this is shard 1 of {expected_shards} but the name has no -0000N-of-0000M suffix",
                         hint="keep llama.cpp's split file names")

    tensors: list[Tensor] = []
    total_file = 0
    for header, file_size in shards:
        end = header.data_offset
        for info in header.tensors:
            try:
                ttype = quant.tensor_type(info.type_id)
            except KeyError:
                raise InputError(f"{ref}: tensor {info.name} has unknown ggml type {info.type_id}",
                                 hint="a newer llama.cpp type? update fitcheck") from None
            n = 1
            for d in info.dims:
                n *= d
            size = quant.row_size(ttype.name, n)
            end = max(end, header.data_offset + info.offset + size)
            m = LAYER_RE.match(info.name)
            tensors.append(Tensor(info.name, ttype.name, info.dims, size, int(m.group(1)) if m else None))
        total_file += end
        if file_size is not None and file_size < end:
            notes.append(f"file holds {file_size:,} of the {end:,} bytes its tensors need "
                         "(an incomplete download, or a header-only file)")

    n_layer = _int(meta, f"{arch}.block_count")
    if n_layer <= 0:
        raise InputError(f"{ref}: {arch}.block_count is missing", hint="not a llama.cpp model GGUF?")
    n_embd = _int(meta, f"{arch}.embedding_length")
    n_head = per_layer(meta, f"{arch}.attention.head_count", n_layer, 0)
    n_head_kv = per_layer(meta, f"{arch}.attention.head_count_kv", n_layer, max(n_head))
    head_max = max(n_head) or 1
    head_dim_k = _int(meta, f"{arch}.attention.key_length", n_embd // head_max)
    head_dim_v = _int(meta, f"{arch}.attention.value_length", n_embd // head_max)
    n_vocab = _vocab_size(meta, arch, tensors)
    n_ff_values = per_layer(meta, f"{arch}.feed_forward_length", n_layer, 0)
    name = meta.get("general.name") or os.path.basename(ref)
    return ModelSpec(
        ref=ref,
        name=str(name),
        architecture=arch,
        file_type=quant.file_type_name(meta.get("general.file_type")),
        n_layer=n_layer,
        n_ctx_train=_int(meta, f"{arch}.context_length", 4096),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim_k,
        head_dim_v=head_dim_v,
        n_vocab=n_vocab,
        tensors=tuple(tensors),
        file_size_bytes=total_file,
        n_expert=_int(meta, f"{arch}.expert_count"),
        n_expert_used=_int(meta, f"{arch}.expert_used_count"),
        n_ff=max(n_ff_values),
        sliding_window=_int(meta, f"{arch}.attention.sliding_window"),
        metadata={k: v for k, v in meta.items() if not isinstance(v, (list, ArraySummary)) or len(v) <= 4096},
        notes=tuple(notes),
    )


def _vocab_size(meta: dict[str, Any], arch: str, tensors: list[Tensor]) -> int:
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is not None:
        return len(tokens)
    if f"{arch}.vocab_size" in meta:
        return _int(meta, f"{arch}.vocab_size")
    for t in tensors:  # token_embd is [n_embd, n_vocab]
        if t.name == "token_embd.weight" and len(t.shape) == 2:
            return t.shape[1]
    return 0
