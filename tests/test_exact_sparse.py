"""Header-only sparse copies (fitcheck.exact.sparse): the header's bytes, the full size, almost no disk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fitcheck.errors import InputError, SourceError
from fitcheck.exact.sparse import disk_bytes, shards_of, write_copies
from fitcheck.sources.gguf import load_local
from fitcheck.sources.resolve import resolve
from fitcheck.sources.types import Location, Model
from tests import gguf_builder as synth

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import FakeHub, tiny_file, tiny_layout

SLACK = 64 * 1024  # a filesystem may round a file's last block up (4 KiB here; some use 64 KiB)


def _copies(model: Model, out: Path) -> Path:
    out.mkdir()
    return write_copies(shards_of(model.files, model.spec.shard_extents), out)


def test_single_file(tmp_path, llama8b_path):
    model = resolve(str(llama8b_path))
    assert isinstance(model, Model)
    (_, data_offset, end), = model.spec.shard_extents
    copy = _copies(model, tmp_path / "copy")
    assert copy.name == llama8b_path.name and copy.parent != llama8b_path.parent
    assert copy.stat().st_size == end == model.spec.file_size_bytes
    assert copy.read_bytes()[:data_offset] == llama8b_path.read_bytes()[:data_offset].ljust(data_offset, b"\0")
    assert disk_bytes(copy) <= data_offset + SLACK  # a hole, not 4.6 GB of zeros
    assert end > 1000 * data_offset
    again = load_local(str(copy))  # the copy reads as the model it was made from
    assert again.tensors == model.spec.tensors and not again.notes


def test_split_model_keeps_every_shard_name(tmp_path):
    meta, tensors = tiny_layout("Q8_0")
    folder = tmp_path / "model"
    folder.mkdir()
    synth.write_header_only(folder / "Tiny.gguf", "llama", meta, tensors, split_max_tensors=20)
    first = sorted(folder.glob("*.gguf"))[0]
    model = resolve(str(first))
    assert isinstance(model, Model) and len(model.files) == len(model.spec.shard_extents) > 1
    copy = _copies(model, tmp_path / "copy")
    names = sorted(p.name for p in copy.parent.iterdir())
    assert names == sorted(p.name for p in folder.glob("*.gguf")) and copy.name == first.name
    for shard, (_, data_offset, end) in zip(sorted(copy.parent.iterdir()), model.spec.shard_extents, strict=True):
        assert shard.stat().st_size == end and disk_bytes(shard) <= data_offset + SLACK
    assert load_local(str(copy)).tensors == model.spec.tensors


def test_hub_file_reads_the_header_range_once(tmp_path):
    header, full = tiny_file(tmp_path)
    with FakeHub() as hub:
        hub.add_file("org/Tiny-GGUF", header.name, header, size=full)
        os.environ["HF_ENDPOINT"] = hub.endpoint
        try:
            model = resolve("hf:org/Tiny-GGUF:Q4_K_M")
            assert isinstance(model, Model) and model.files[0].remote and model.files[0].send_token
            hub.reset_counters()
            copy = _copies(model, tmp_path / "copy")
            (_, data_offset, end), = model.spec.shard_extents
            assert len(hub.file_requests(header.name)) == 1 and hub.bytes_sent(header.name) == data_offset
        finally:
            del os.environ["HF_ENDPOINT"]
    assert copy.name == header.name and copy.stat().st_size == end == full
    assert copy.read_bytes()[:data_offset] == header.read_bytes()[:data_offset].ljust(data_offset, b"\0")
    assert disk_bytes(copy) <= data_offset + SLACK


def test_changed_file_is_refused(tmp_path, llama8b_path):
    model = resolve(str(llama8b_path))
    assert isinstance(model, Model)
    short = tmp_path / "short.gguf"
    short.write_bytes(llama8b_path.read_bytes()[:1000])
    moved = Model(model.spec, model.model_arg, (Location(str(short)),))
    with pytest.raises(InputError, match="header is 1,000 bytes"):
        _copies(moved, tmp_path / "copy")


def test_unknown_files_are_an_error(llama8b):
    with pytest.raises(SourceError, match="--exact"):
        shards_of((), llama8b.shard_extents)
