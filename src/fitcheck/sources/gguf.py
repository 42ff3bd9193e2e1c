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
from ..text import quoted, shown
from . import validate
from .gguf_header import GGUFHeader

SPLIT_RE = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


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
    from .shared_arrays import parse_file  # sibling quants' tokenizer arrays, recorded in fitcheck's cache

    shards: list[tuple[GGUFHeader, int | None]] = []
    for shard in shard_paths:
        try:
            parsed = parse_file(str(shard), shard.name)
            shards.append((parsed.header, parsed.size))
        except OSError as exc:
            raise InputError(f"{shown(shard, 200)}: cannot read ({shown(exc.strerror or exc)})") from exc
    return build_spec(str(path), shards)


def build_spec(ref: str, shards: Sequence[tuple[GGUFHeader, int | None]]) -> ModelSpec:
    """Merge one or more shard headers into a ModelSpec; note files shorter than their tensors need.

    Every value is checked on the way (sources.validate): what a stranger's header claims reaches the
    estimator only once it is known to be well-typed, in range and consistent with the tensors present."""
    where = shown(ref, 200)
    meta: dict[str, Any] = dict(shards[0][0].metadata)
    if not isinstance(meta.get("general.architecture"), str):
        raise InputError(f"{where}: GGUF has no general.architecture",
                         hint="is this a model file (not a LoRA or mmproj)?")
    arch = validate.architecture(where, meta["general.architecture"])
    notes: list[str] = []
    expected_shards = validate.Checker(where, meta).get_int("split.count", 1, 0, validate.MAX_SHARDS)
    if expected_shards > len(shards):
        raise InputError(f"{where}: this is shard 1 of {expected_shards} but the name has no -0000N-of-0000M suffix",
                         hint="keep llama.cpp's split file names")

    tensors: list[Tensor] = []
    seen: set[str] = set()
    total_file = 0
    extents: list[tuple[int, int, int]] = []
    for header, file_size in shards:
        end = header.data_offset
        expected_offset = 0
        for info in header.tensors:
            name, layer = validate.tensor_name(where, info.name)
            if name in seen:
                raise validate.Checker(where, {}).fail(f"tensor {quoted(name)} appears twice")
            seen.add(name)
            try:
                ttype = quant.tensor_type(info.type_id)
            except (KeyError, TypeError):
                raise InputError(f"{where}: tensor {quoted(name)} has unknown ggml type {shown(info.type_id)}",
                                 hint="a newer llama.cpp type? update fitcheck") from None
            n = validate.tensor_shape(where, name, info.dims, ttype.block_size)
            size = quant.row_size(ttype.name, n)
            if info.offset != expected_offset:  # gguf.cpp: tensors are laid out in order, each aligned
                raise validate.Checker(where, {}).fail(
                    f"tensor {quoted(name)} has data offset {shown(info.offset)}, expected {expected_offset}")
            expected_offset += (size + header.alignment - 1) // header.alignment * header.alignment
            end = max(end, header.data_offset + info.offset + size)
            tensors.append(Tensor(name, ttype.name, info.dims, size, layer))
        total_file += end
        extents.append((header.header_bytes, header.data_offset, end))
        if file_size is not None and file_size < end:
            notes.append(f"file holds {file_size:,} of the {end:,} bytes its tensors need "
                         "(an incomplete download, or a header-only file)")

    hp = validate.gguf_hparams(where, arch, meta, tensors)
    title = meta.get("general.name")
    return ModelSpec(
        ref=ref,
        name=shown(title if isinstance(title, str) and title else os.path.basename(ref)),
        architecture=arch,
        file_type=quant.file_type_name(hp.file_type),
        n_layer=hp.n_layer,
        n_ctx_train=hp.n_ctx_train,
        n_embd=hp.n_embd,
        n_head=hp.n_head,
        n_head_kv=hp.n_head_kv,
        head_dim_k=hp.head_dim_k,
        head_dim_v=hp.head_dim_v,
        n_vocab=hp.n_vocab,
        tensors=tuple(tensors),
        file_size_bytes=total_file,
        n_expert=hp.n_expert,
        n_expert_used=hp.n_expert_used,
        n_ff=hp.n_ff,
        sliding_window=hp.sliding_window,
        metadata=hp.metadata,
        notes=tuple(notes),
        shard_extents=tuple(extents),
    )
