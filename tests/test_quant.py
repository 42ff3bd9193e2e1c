import gguf
import pytest

from fitcheck import quant


def test_every_ggml_type_matches_gguf_constants():
    ours = quant.tensor_types()
    for qtype, (block, type_size) in gguf.GGML_QUANT_SIZES.items():
        t = ours[qtype.name]
        assert (t.id, t.block_size, t.type_size) == (qtype.value, block, type_size), qtype.name
        assert t.bits_per_weight == pytest.approx(type_size * 8 / block, abs=1e-3)
    assert set(ours) == {q.name for q in gguf.GGML_QUANT_SIZES}


def test_file_type_ids_match_llama_cpp():
    for ft in gguf.LlamaFileType:
        if ft.name == "GUESSED":
            continue
        name = ft.name.removeprefix("MOSTLY_").replace("ALL_", "")
        assert quant.file_type_name(ft.value) == name
    assert quant.file_types()["Q4_K_M"].bits_per_weight > quant.file_types()["Q4_K_S"].bits_per_weight


def test_row_size_uses_blocks():
    assert quant.row_size("q8_0", 1024) == 1024 // 32 * 34
    assert quant.row_size("f16", 1024) == 2048
    assert quant.row_size("Q4_K", 4096) == 16 * 144
    assert quant.row_size(12, 4096) == 16 * 144


def test_cache_types_are_known_tensor_types():
    for name in quant.CACHE_TYPES:
        assert quant.tensor_type(name).block_size in (1, 32)


def test_unknown_type_raises_keyerror():
    with pytest.raises(KeyError):
        quant.tensor_type("Q9_Z")
