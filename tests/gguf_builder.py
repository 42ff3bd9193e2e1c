"""Header-only GGUF files with realistic layouts, for the examples, the tests and the benchmarks (not shipped).

A header-only file holds the metadata and tensor infos of a real model but none of its tensor data, so a
70B layout costs a few MB. `truncate` it to `full_size` and llama.cpp loads it (sparse zeros) for truth runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# A tensor as (name, shape in ggml order: ne0 first, ggml type name such as "Q4_K").
TensorSpec = tuple[str, Sequence[int], str]

_SCALAR_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "uint64", "int64",
                 "float64", "bool", "string")


def typed(type_name: str, value: Any) -> dict[str, Any]:
    """A metadata value with an explicit GGUF type (llama.cpp checks scalar types strictly)."""
    if type_name not in _SCALAR_TYPES:
        raise ValueError(f"unknown GGUF type {type_name!r}")
    return {"type": type_name, "value": value}


def tokenizer_metadata(n_vocab: int) -> dict[str, Any]:
    """A SentencePiece-style vocabulary of n_vocab tokens that llama.cpp accepts (it needs the byte tokens)."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256  # UNKNOWN, CONTROL, CONTROL, BYTE
    tokens += [f"t{i}" for i in range(len(tokens), n_vocab)]
    types += [1] * (n_vocab - len(types))
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens[:n_vocab],
        "tokenizer.ggml.scores": [0.0] * n_vocab,
        "tokenizer.ggml.token_type": types[:n_vocab],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
    }


def _add_value(writer: Any, key: str, value: Any) -> None:
    import gguf

    if isinstance(value, Mapping):
        kind = value["type"]
        enum = gguf.GGUFValueType[kind.upper()]
        writer.add_key_value(key, value["value"], enum)
    elif isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        if value < 0:
            writer.add_int32(key, value)
        elif value >= 2**32:
            writer.add_uint64(key, value)
        else:
            writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, (list, tuple)):
        writer.add_array(key, list(value))
    else:
        raise TypeError(f"cannot write {key}={value!r}")


def write_header_only(path: str | Path, arch: str, metadata: Mapping[str, Any],
                      tensors: Iterable[TensorSpec], *, split_max_tensors: int = 0) -> int:
    """Write the header of a GGUF (no tensor data); return the size the complete file(s) would have.

    With split_max_tensors, writes llama.cpp-style shards (name-00001-of-0000N.gguf) and returns their sum.
    """
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch, split_max_tensors=split_max_tensors)
    for key, value in metadata.items():
        _add_value(writer, key, value)
    for name, shape, type_name in tensors:
        qtype = gguf.GGMLQuantizationType[type_name.upper()]
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        n_elements = 1
        for dim in shape:
            n_elements *= int(dim)
        if int(shape[0]) % block:
            raise ValueError(f"{name}: ne0={shape[0]} is not a multiple of {type_name}'s block of {block}")
        # GGUFWriter takes numpy order (outermost first); np.float32 keeps the shape as elements.
        writer.add_tensor_info(name, list(reversed([int(d) for d in shape])), np.dtype(np.float32),
                               n_elements // block * type_size, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    full = 0
    for fout, shard in zip(writer.fout or [], writer.tensors, strict=True):
        header_end = fout.tell()
        data_start = gguf.GGUFWriter.ggml_pad(header_end, writer.data_alignment)
        data_size = sum(gguf.GGUFWriter.ggml_pad(ti.nbytes, writer.data_alignment) for ti in shard.values())
        full += data_start + data_size
    writer.close()
    return full


def llama_layout(*, n_layer: int = 32, n_embd: int = 4096, n_head: int = 32, n_head_kv: int = 8,
                 n_ff: int = 14336, n_vocab: int = 128256, n_ctx_train: int = 131072,
                 arch: str = "llama", weight_type: str = "Q4_K", ffn_down_type: str = "Q6_K",
                 output_type: str = "Q6_K", embd_type: str = "Q4_K", tied: bool = False,
                 file_type: int = 15, name: str = "Llama-3-8B-shaped", with_vocab: bool = True,
                 attn_bias: bool = False) -> tuple[dict[str, Any], list[TensorSpec]]:
    """Metadata and tensors of a llama-family dense model (defaults: Llama-3-8B, Q4_K_M)."""
    head_dim = n_embd // n_head
    n_embd_kv = head_dim * n_head_kv
    meta: dict[str, Any] = {
        "general.name": name,
        "general.file_type": file_type,
        f"{arch}.block_count": n_layer,
        f"{arch}.context_length": n_ctx_train,
        f"{arch}.embedding_length": n_embd,
        f"{arch}.feed_forward_length": n_ff,
        f"{arch}.attention.head_count": n_head,
        f"{arch}.attention.head_count_kv": n_head_kv,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-5,
        f"{arch}.rope.freq_base": 500000.0,
        f"{arch}.rope.dimension_count": head_dim,
        f"{arch}.vocab_size": n_vocab,
    }
    if with_vocab:
        meta.update(tokenizer_metadata(n_vocab))
    tensors: list[TensorSpec] = [("token_embd.weight", [n_embd, n_vocab], embd_type)]
    for il in range(n_layer):
        p = f"blk.{il}."
        tensors += [
            (p + "attn_norm.weight", [n_embd], "F32"),
            (p + "attn_q.weight", [n_embd, n_embd], weight_type),
            (p + "attn_k.weight", [n_embd, n_embd_kv], weight_type),
            (p + "attn_v.weight", [n_embd, n_embd_kv], ffn_down_type),
            (p + "attn_output.weight", [n_embd, n_embd], weight_type),
            (p + "ffn_norm.weight", [n_embd], "F32"),
            (p + "ffn_gate.weight", [n_embd, n_ff], weight_type),
            (p + "ffn_up.weight", [n_embd, n_ff], weight_type),
            (p + "ffn_down.weight", [n_ff, n_embd], ffn_down_type),
        ]
        if attn_bias:
            tensors += [(p + "attn_q.bias", [n_embd], "F32"), (p + "attn_k.bias", [n_embd_kv], "F32"),
                        (p + "attn_v.bias", [n_embd_kv], "F32")]
    tensors.append(("output_norm.weight", [n_embd], "F32"))
    if not tied:
        tensors.append(("output.weight", [n_embd, n_vocab], output_type))
    return meta, tensors


def gemma3_layout(*, n_layer: int = 18, n_embd: int = 640, n_head: int = 4, n_head_kv: int = 1,
                  head_dim: int = 256, n_ff: int = 2048, n_vocab: int = 262144, window: int = 512,
                  n_ctx_train: int = 32768, weight_type: str = "Q8_0",
                  with_vocab: bool = False) -> tuple[dict[str, Any], list[TensorSpec]]:
    """A gemma3 model (defaults: gemma-3-270m): 5 sliding layers then 1 global, tied embeddings."""
    meta: dict[str, Any] = {
        "general.name": "gemma-3-shaped",
        "general.file_type": 7,
        "gemma3.block_count": n_layer,
        "gemma3.context_length": n_ctx_train,
        "gemma3.embedding_length": n_embd,
        "gemma3.feed_forward_length": n_ff,
        "gemma3.attention.head_count": n_head,
        "gemma3.attention.head_count_kv": n_head_kv,
        "gemma3.attention.key_length": head_dim,
        "gemma3.attention.value_length": head_dim,
        "gemma3.attention.sliding_window": window,
        "gemma3.attention.layer_norm_rms_epsilon": 1e-6,
        "gemma3.rope.freq_base": 1000000.0,
    }
    if with_vocab:
        meta.update(tokenizer_metadata(n_vocab))
    tensors: list[TensorSpec] = [("token_embd.weight", [n_embd, n_vocab], weight_type)]
    for il in range(n_layer):
        p = f"blk.{il}."
        tensors += [
            (p + "attn_norm.weight", [n_embd], "F32"),
            (p + "attn_q.weight", [n_embd, n_head * head_dim], weight_type),
            (p + "attn_k.weight", [n_embd, n_head_kv * head_dim], weight_type),
            (p + "attn_v.weight", [n_embd, n_head_kv * head_dim], weight_type),
            (p + "attn_q_norm.weight", [head_dim], "F32"),
            (p + "attn_k_norm.weight", [head_dim], "F32"),
            (p + "attn_output.weight", [n_head * head_dim, n_embd], weight_type),
            (p + "post_attention_norm.weight", [n_embd], "F32"),
            (p + "ffn_norm.weight", [n_embd], "F32"),
            (p + "ffn_gate.weight", [n_embd, n_ff], weight_type),
            (p + "ffn_up.weight", [n_embd, n_ff], weight_type),
            (p + "ffn_down.weight", [n_ff, n_embd], weight_type),
            (p + "post_ffw_norm.weight", [n_embd], "F32"),
        ]
    tensors.append(("output_norm.weight", [n_embd], "F32"))
    return meta, tensors


def moe_layout(*, arch: str = "qwen3moe", n_layer: int = 48, n_embd: int = 2048, n_head: int = 32,
               n_head_kv: int = 4, head_dim: int = 128, n_expert: int = 128, n_expert_used: int = 8,
               n_ff_exp: int = 768, n_vocab: int = 151936, n_ctx_train: int = 40960, weight_type: str = "Q4_K",
               expert_type: str = "Q4_K", expert_down_type: str | None = None, output_type: str = "Q6_K",
               window: int = 0, name: str = "Qwen3-30B-A3B-shaped",
               file_type: int = 15) -> tuple[dict[str, Any], list[TensorSpec]]:
    """A mixture-of-experts model (defaults: Qwen3-30B-A3B Q4_K_M). Experts are 3-D [in, out, n_expert]."""
    meta: dict[str, Any] = {
        "general.name": name,
        "general.file_type": file_type,
        f"{arch}.block_count": n_layer,
        f"{arch}.context_length": n_ctx_train,
        f"{arch}.embedding_length": n_embd,
        f"{arch}.feed_forward_length": n_ff_exp,
        f"{arch}.expert_feed_forward_length": n_ff_exp,
        f"{arch}.expert_count": n_expert,
        f"{arch}.expert_used_count": n_expert_used,
        f"{arch}.attention.head_count": n_head,
        f"{arch}.attention.head_count_kv": n_head_kv,
        f"{arch}.attention.key_length": head_dim,
        f"{arch}.attention.value_length": head_dim,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-6,
        f"{arch}.rope.freq_base": 1000000.0,
    }
    if window:
        meta[f"{arch}.attention.sliding_window"] = window
    down = expert_down_type or expert_type
    tensors: list[TensorSpec] = [("token_embd.weight", [n_embd, n_vocab], weight_type)]
    for il in range(n_layer):
        p = f"blk.{il}."
        tensors += [
            (p + "attn_norm.weight", [n_embd], "F32"),
            (p + "attn_q.weight", [n_embd, n_head * head_dim], weight_type),
            (p + "attn_k.weight", [n_embd, n_head_kv * head_dim], weight_type),
            (p + "attn_v.weight", [n_embd, n_head_kv * head_dim], weight_type),
            (p + "attn_output.weight", [n_head * head_dim, n_embd], weight_type),
            (p + "ffn_norm.weight", [n_embd], "F32"),
            (p + "ffn_gate_inp.weight", [n_embd, n_expert], "F32"),
            (p + "ffn_gate_exps.weight", [n_embd, n_ff_exp, n_expert], expert_type),
            (p + "ffn_up_exps.weight", [n_embd, n_ff_exp, n_expert], expert_type),
            (p + "ffn_down_exps.weight", [n_ff_exp, n_embd, n_expert], down),
        ]
    tensors += [("output_norm.weight", [n_embd], "F32"), ("output.weight", [n_embd, n_vocab], output_type)]
    return meta, tensors
