"""Sibling quants share their tokenizer arrays on this machine (sources/shared_arrays.py): the header is the one
a plain parse gives, a changed count or a shifted extent is walked, and a wrong extent falls back to the plain
read."""

from __future__ import annotations

from pathlib import Path

import pytest

from fitcheck.errors import InputError
from fitcheck.sources import cache, shared_arrays
from fitcheck.sources.gguf import load_local
from fitcheck.sources.gguf_header import FileSource, parse_header
from fitcheck.sources.header_scan import BOUNDARY, digest
from tests import gguf_builder as synth

N_VOCAB = 20000


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path / "cache"))


def _quant(path: Path, *, weight_type: str = "Q4_K", file_type: int = 15, n_vocab: int = N_VOCAB,
           tokens: dict[int, str] | None = None) -> Path:
    meta, tensors = synth.llama_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=n_vocab,
                                       weight_type=weight_type, embd_type=weight_type, file_type=file_type,
                                       name="fam")
    if tokens:
        vocab = list(meta["tokenizer.ggml.tokens"])
        for i, t in tokens.items():
            vocab[i] = t
        meta["tokenizer.ggml.tokens"] = vocab
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_header_only(path, "llama", meta, tensors)
    return path


def _plain(path: Path):
    with FileSource(str(path)) as src:
        return parse_header(src, path.name)


def test_two_quants_share_the_vocabulary(tmp_path):
    q4 = _quant(tmp_path / "m-Q4_K_M.gguf")
    q8 = _quant(tmp_path / "m-Q8_0.gguf", weight_type="Q8_0", file_type=7)
    first = shared_arrays.parse_file(str(q4))
    assert first.shared == ()  # nothing recorded yet: walked, and recorded
    second = shared_arrays.parse_file(str(q8))
    assert second.shared == ("tokenizer.ggml.tokens",)
    assert second.header == _plain(q8)  # exactly a plain read's header
    assert second.header.metadata["general.file_type"] == 7
    assert shared_arrays.parse_file(str(q4)).header == first.header == _plain(q4)


def test_plain_local_check_uses_the_recorded_arrays(tmp_path):
    q4 = _quant(tmp_path / "a" / "m-Q4_K_M.gguf")
    q6 = _quant(tmp_path / "b" / "m-Q6_K.gguf", weight_type="Q6_K", file_type=18)
    assert load_local(str(q4)).n_vocab == N_VOCAB  # `fitcheck m-Q4_K_M.gguf` records the arrays
    assert shared_arrays.parse_file(str(q6)).shared == ("tokenizer.ggml.tokens",)


def test_a_vocabulary_differing_only_in_its_middle_is_shared(tmp_path):
    """The remote rule, honestly: count, offsets and the bytes at both boundaries match, so the array is taken
    as the sibling's. Its contents are never used (a long array is only its type and count), so the header is
    still exactly what a walk gives."""
    _quant(tmp_path / "m-Q4_K_M.gguf")
    shared_arrays.parse_file(str(tmp_path / "m-Q4_K_M.gguf"))
    mid = N_VOCAB // 2
    other = _quant(tmp_path / "other-Q4_K_M.gguf", tokens={mid: "x" * len(f"t{mid}")})  # same length
    parsed = shared_arrays.parse_file(str(other))
    assert parsed.shared == ("tokenizer.ggml.tokens",)
    assert parsed.header == _plain(other)


def test_a_shifted_middle_or_another_count_is_walked(tmp_path):
    shared_arrays.parse_file(str(_quant(tmp_path / "m-Q4_K_M.gguf")))
    mid = N_VOCAB // 2
    longer = _quant(tmp_path / "longer.gguf", tokens={mid: f"t{mid}-longer"})  # same count, ends later
    parsed = shared_arrays.parse_file(str(longer))
    assert parsed.shared == () and parsed.header == _plain(longer)
    bigger = _quant(tmp_path / "bigger.gguf", n_vocab=N_VOCAB + 64)
    parsed = shared_arrays.parse_file(str(bigger))
    assert parsed.shared == () and parsed.header == _plain(bigger)
    assert parsed.header.metadata["tokenizer.ggml.tokens"].count == N_VOCAB + 64


def test_a_wrong_extent_falls_back_to_the_plain_read(tmp_path):
    """A recorded extent whose boundary digests match but whose end is wrong (forged here: a real sibling
    cannot produce it without a digest collision) sends the parser into the middle of a string; the next key
    is unreadable, and the file is parsed again without any shared extent."""
    path = _quant(tmp_path / "m.gguf")
    runs: list = []
    with FileSource(str(path)) as src:
        parse_header(src, path.name, runs=runs)
        run = next(r for r in runs if r.key == "tokenizer.ggml.tokens")
        wrong = run.end - 8
        head = src.read_at(run.record, run.body + BOUNDARY - run.record)
        tail = src.read_at(wrong - BOUNDARY, BOUNDARY)
    cache.put(shared_arrays.KIND, [[wrong, digest(head), digest(tail)]], run.key, str(run.count), str(run.record),
              str(run.body))
    parsed = shared_arrays.parse_file(str(path))
    assert parsed.shared == ()
    assert parsed.header == _plain(path)
    assert shared_arrays.parse_file(str(path)).shared == ("tokenizer.ggml.tokens",)  # the true extent, recorded


def test_a_corrupt_file_still_fails_as_before(tmp_path):
    path = _quant(tmp_path / "m.gguf")
    shared_arrays.parse_file(str(path))
    data = bytearray(path.read_bytes())
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(InputError, match="not a valid GGUF header"):
        shared_arrays.parse_file(str(cut))
