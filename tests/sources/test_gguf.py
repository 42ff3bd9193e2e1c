"""Local GGUF files to ModelSpec: facts, per-layer arrays, split models, incomplete files."""

from __future__ import annotations

import pytest

from fitcheck.errors import InputError
from fitcheck.sources.gguf import load_local, split_names
from tests import gguf_builder as synth


def test_llama8b_facts(llama8b):
    assert llama8b.architecture == "llama"
    assert llama8b.file_type == "Q4_K_M"
    assert (llama8b.n_layer, llama8b.n_embd, llama8b.n_vocab, llama8b.n_ctx_train) == (32, 4096, 128256, 131072)
    assert llama8b.n_head_kv == (8,) * 32 and llama8b.head_dim_k == 128
    assert llama8b.parameters == 8_030_261_248  # Llama-3-8B's real parameter count
    assert not llama8b.tied_embeddings
    blk0 = [t for t in llama8b.tensors if t.layer == 0]
    assert len(blk0) == 9
    q = next(t for t in blk0 if t.name == "blk.0.attn_q.weight")
    assert q.size_bytes == 4096 * 4096 // 256 * 144


def test_header_only_file_is_noted(llama8b):
    assert any("header-only" in note for note in llama8b.notes)
    assert llama8b.file_size_bytes > llama8b.weights_bytes


def test_per_layer_kv_heads_array(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=300,
                                       with_vocab=False)
    meta["llama.attention.head_count_kv"] = [2, 0, 4, 2]
    spec = load_local(str(make_gguf("arr", "llama", meta, tensors)))
    assert spec.n_head_kv == (2, 0, 4, 2)


def test_split_model_sums_every_shard(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=300,
                                       with_vocab=False)
    first = make_gguf("split", "llama", meta, tensors, split_max_tensors=12)
    assert first.name.endswith("-00001-of-00004.gguf")
    spec = load_local(str(first))
    single = load_local(str(make_gguf("single", "llama", meta, tensors)))
    assert len(spec.tensors) == len(tensors) == len(single.tensors)
    assert spec.weights_bytes == single.weights_bytes
    assert spec.file_size_bytes > single.file_size_bytes  # four headers instead of one


def test_split_model_missing_shard(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=300,
                                       with_vocab=False)
    first = make_gguf("split", "llama", meta, tensors, split_max_tensors=12)
    first.with_name(first.name.replace("00001-of", "00003-of")).unlink()
    with pytest.raises(InputError, match="missing 1 shard"):
        load_local(str(first))


def test_split_names():
    assert split_names("m-00002-of-00003.gguf") == ["m-00001-of-00003.gguf", "m-00002-of-00003.gguf",
                                                    "m-00003-of-00003.gguf"]
    assert split_names("model.gguf") is None


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_local(str(tmp_path / "nope.gguf"))


def test_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load_local(str(tmp_path))


def test_no_architecture(make_gguf, tmp_path):
    import gguf

    path = tmp_path / "noarch.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.kv_data[0].pop("general.architecture")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    with pytest.raises(InputError, match=r"general\.architecture"):
        load_local(str(path))


def test_wrong_length_per_layer_array(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=300,
                                       with_vocab=False)
    meta["llama.attention.head_count_kv"] = [2, 2]
    with pytest.raises(InputError, match="2 entries for 4 layers"):
        load_local(str(make_gguf("badarr", "llama", meta, tensors)))
