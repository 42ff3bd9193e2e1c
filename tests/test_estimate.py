"""The estimator against llama.cpp's allocation rules, with figures pinned to the byte."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fitcheck.context import resolve_context
from fitcheck.errors import UsageError
from fitcheck.estimate import estimate
from fitcheck.model import MiB, Settings
from fitcheck.sources.gguf import load_local
from tests import gguf_builder as synth


def test_llama8b_kv_f16(llama8b):
    # 32 layers x 8 KV heads x 128 x (K + V) x 2 bytes x 8192 cells
    assert estimate(llama8b, Settings(ctx=8192)).kv_cache_bytes == 1_073_741_824


def test_llama8b_kv_q8_0(llama8b):
    needs = estimate(llama8b, Settings(ctx=8192, cache_type_k="q8_0", cache_type_v="q8_0", flash_attn="on"))
    assert needs.kv_cache_bytes == 570_425_344


def test_mixed_cache_types(llama8b):
    needs = estimate(llama8b, Settings(ctx=8192, cache_type_k="q4_0", cache_type_v="f16"))
    assert needs.kv_cache_bytes == 32 * 8192 * (1024 // 32 * 18 + 1024 * 2)


def test_gemma3_sliding_window(gemma3):
    # 15 sliding layers x 1024 cells (pad256(512 + 512)) + 3 global layers x 4096 cells, 1 x 256 x 2 x 2 bytes
    needs = estimate(gemma3, Settings(ctx=4096))
    assert needs.kv_cache_bytes == 28_311_552
    assert [layer.sliding for layer in needs.layers[:6]] == [True] * 5 + [False]


def test_gemma3_swa_full(gemma3):
    assert estimate(gemma3, Settings(ctx=4096, swa_full=True)).kv_cache_bytes == 18 * 4096 * 1024


def test_gemma3_window_larger_than_context(gemma3):
    # min(ctx, window + ubatch): a short context caps the sliding cache too
    assert estimate(gemma3, Settings(ctx=512)).kv_cache_bytes == 18 * 512 * 1024


def test_context_is_padded_to_256(llama8b):
    needs = estimate(llama8b, Settings(ctx=1000))
    assert needs.n_ctx == 1024 and needs.kv_cache_bytes == 1024 * 32 * 2048 * 2


def test_parallel_split_and_unified(llama8b):
    c = resolve_context(llama8b, Settings(ctx=10000, parallel=3))
    assert (c.n_ctx_seq, c.n_stream, c.n_ctx) == (3584, 3, 10752)  # pad256(10240 / 3) per sequence
    u = resolve_context(llama8b, Settings(ctx=10000, parallel=3, kv_unified=True))
    assert (u.n_ctx_seq, u.n_stream, u.n_ctx) == (10240, 1, 10240)


def test_sliding_window_with_parallel(gemma3):
    split = estimate(gemma3, Settings(ctx=8192, parallel=4))  # 4 streams of 2048; swa min(2048, 1024)
    assert split.kv_cache_bytes == 4 * (15 * 1024 + 3 * 2048) * 1024
    unified = estimate(gemma3, Settings(ctx=8192, parallel=4, kv_unified=True))  # swa 512 x 4 + 512
    assert unified.kv_cache_bytes == (15 * 2560 + 3 * 8192) * 1024


def test_default_context_is_not_the_training_maximum(llama8b):
    needs = estimate(llama8b, Settings())
    assert needs.ctx == 8192 < llama8b.n_ctx_train


def test_quantized_v_needs_flash_attention(llama8b):
    with pytest.raises(UsageError, match="flash attention"):
        estimate(llama8b, Settings(cache_type_v="q8_0", flash_attn="off"))


def test_unknown_cache_type(llama8b):
    with pytest.raises(UsageError):
        estimate(llama8b, Settings(cache_type_k="q3_k"))


def test_weights_are_exact_per_tensor(llama8b):
    needs = estimate(llama8b, Settings())
    assert needs.weights_bytes == sum(t.size_bytes for t in llama8b.tensors)
    assert sum(layer.weights_bytes for layer in needs.layers) + needs.input_bytes + needs.output_layer_bytes \
        == needs.weights_bytes


def test_output_buffer(llama8b):
    assert estimate(llama8b, Settings()).output_bytes == 4 * 128256
    assert estimate(llama8b, Settings(parallel=4)).output_bytes == 4 * 128256 * 4


def test_compute_buffer_grows_without_flash_attention(llama8b):
    old = Settings(ctx=8192, llama_cpp_build=9000, backend="cuda")  # before n_outputs_max: a row per token
    fa = estimate(llama8b, replace(old, flash_attn="on")).compute_bytes
    no_fa = estimate(llama8b, replace(old, flash_attn="off")).compute_bytes
    # llama.cpp's CUDA compute buffer for Llama-3-8B at 8192/512: 258.5 MiB with FA, ~560 MiB without
    assert fa == pytest.approx(258.5 * MiB, rel=0.05)
    assert no_fa == pytest.approx(560 * MiB, rel=0.05)
    assert estimate(llama8b, replace(old, ubatch=128)).compute_bytes < fa / 3


def test_llama_server_reserves_one_output_per_sequence(llama8b):
    """Since b9460 llama-server's worst-case graph keeps n_parallel x (1 + n_draft) logits rows, not n_ubatch."""
    latest = estimate(llama8b, Settings(ctx=8192, parallel=4, kv_unified=True, flash_attn="on"))
    before = estimate(llama8b, Settings(ctx=8192, parallel=4, kv_unified=True, flash_attn="on", llama_cpp_build=9459))
    library = estimate(llama8b, Settings(ctx=8192, parallel=4, kv_unified=True, flash_attn="on", consumer="library"))
    draft = estimate(llama8b, Settings(ctx=8192, parallel=4, kv_unified=True, flash_attn="on", n_draft=3))
    assert (latest.output_rows, before.output_rows, library.output_rows, draft.output_rows) == (4, 512, 512, 16)
    assert before.compute_bytes == library.compute_bytes
    # the logits of 508 rows fewer: 4 x n_vocab x 508 bytes, less what the layers' own peak keeps
    assert before.compute_bytes - latest.compute_bytes > 0.5 * 4 * 128256 * 508
    assert latest.compute_bytes < draft.compute_bytes < before.compute_bytes


def test_ubatch_is_capped_by_batch_and_context(llama8b):
    c = resolve_context(llama8b, Settings(ctx=256, batch=2048, ubatch=512))
    assert (c.n_batch, c.n_ubatch) == (256, 256)


def _small(make_gguf, arch, extra, n_layer=4, n_head_kv=2):
    meta, tensors = synth.llama_layout(arch=arch, n_layer=n_layer, n_embd=256, n_head=4, n_head_kv=n_head_kv,
                                       n_ff=512, n_vocab=1000, with_vocab=False)
    meta.update({k.replace("ARCH", arch): v for k, v in extra.items()})
    return load_local(str(make_gguf(arch, arch, meta, tensors)))


def test_layers_without_kv_heads_have_no_cache(make_gguf):
    spec = _small(make_gguf, "llama", {"ARCH.attention.head_count_kv": [2, 0, 2, 0]})
    needs = estimate(spec, Settings(ctx=1024))
    assert [layer.kv_cache_bytes for layer in needs.layers] == [1024 * 128 * 2 * 2, 0] * 2


def test_gpt_oss_slides_every_other_layer(make_gguf):
    spec = _small(make_gguf, "gpt-oss", {"ARCH.attention.sliding_window": 128})
    needs = estimate(spec, Settings(ctx=4096))
    assert [layer.sliding for layer in needs.layers] == [True, False, True, False]
    row = 128 * 2 * 2  # 2 KV heads x 64 dims x (K + V) x f16... head dim is 256 / 4 = 64
    assert needs.kv_cache_bytes == 2 * 768 * row + 2 * 4096 * row  # pad256(128 + 512) = 768


def test_gguf_declared_pattern_wins(make_gguf):
    spec = _small(make_gguf, "llama", {"ARCH.attention.sliding_window": 256,
                                        "ARCH.attention.sliding_window_pattern": [True, False, False, True]})
    assert [layer.sliding for layer in estimate(spec, Settings()).layers] == [True, False, False, True]


def test_cohere2_and_llama4_periods(make_gguf):
    cohere = _small(make_gguf, "cohere2", {"ARCH.attention.sliding_window": 4096}, n_layer=8)
    assert [layer.sliding for layer in estimate(cohere, Settings()).layers] == [True, True, True, False] * 2
    llama4 = _small(make_gguf, "llama4", {}, n_layer=8)  # chunked attention, 8192 when the GGUF is silent
    assert [layer.sliding for layer in estimate(llama4, Settings()).layers] == [True, True, True, False] * 2


def test_recurrent_state_mamba2(make_gguf):
    spec = _small(make_gguf, "mamba2", {"ARCH.ssm.conv_kernel": 4, "ARCH.ssm.inner_size": 512,
                                        "ARCH.ssm.state_size": 128, "ARCH.ssm.group_count": 1})
    needs = estimate(spec, Settings(ctx=8192, parallel=2))
    per_seq = 3 * (512 + 2 * 128) + 128 * 512  # conv (d_conv - 1) x (d_inner + 2 g d_state) + d_state x d_inner
    assert needs.kv_cache_bytes == 0
    assert needs.recurrent_state_bytes == 4 * 4 * per_seq * 2
    assert estimate(spec, Settings(ctx=65536, parallel=2)).recurrent_state_bytes == needs.recurrent_state_bytes


def test_hybrid_by_kv_heads(make_gguf):
    spec = _small(make_gguf, "lfm2", {"ARCH.shortconv.l_cache": 3, "ARCH.attention.head_count_kv": [0, 2, 0, 2]})
    needs = estimate(spec, Settings(ctx=1024))
    assert [layer.kv_cache_bytes > 0 for layer in needs.layers] == [False, True, False, True]
    assert needs.recurrent_state_bytes == 2 * 4 * 256 * 2  # 2 conv layers x F32 x n_embd x (l_cache - 1)


def test_qwen3next_attention_interval(make_gguf):
    spec = _small(make_gguf, "qwen3next", {"ARCH.full_attention_interval": 4, "ARCH.ssm.conv_kernel": 4,
                                           "ARCH.ssm.inner_size": 256, "ARCH.ssm.state_size": 64,
                                           "ARCH.ssm.group_count": 2}, n_layer=8)
    needs = estimate(spec, Settings(ctx=1024))
    assert [layer.kv_cache_bytes > 0 for layer in needs.layers] == [False, False, False, True] * 2
    assert sum(layer.recurrent_state_bytes > 0 for layer in needs.layers) == 6


def test_mla_cache(make_gguf):
    spec = _small(make_gguf, "deepseek2", {"ARCH.attention.kv_lora_rank": 512, "ARCH.rope.dimension_count": 64,
                                           "ARCH.attention.key_length_mla": 192,
                                           "ARCH.attention.head_count_kv": 1})
    needs = estimate(spec, Settings(ctx=1024))
    assert needs.kv_cache_bytes == 4 * 1024 * 576 * 2  # one latent row of 512 + 64, no V rows


def test_encoder_has_no_kv(make_gguf):
    spec = _small(make_gguf, "bert", {})
    assert estimate(spec, Settings(ctx=512)).kv_cache_bytes == 0


def test_unknown_architecture_is_noted(make_gguf):
    spec = _small(make_gguf, "brandnew", {})
    needs = estimate(spec, Settings(ctx=1024))
    assert needs.kv_cache_bytes == 4 * 1024 * 128 * 2 * 2
    assert any("brandnew" in note for note in needs.notes)


def test_tied_embeddings_copy(make_gguf):
    meta, tensors = synth.llama_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=1000,
                                       with_vocab=False, tied=True)
    spec = load_local(str(make_gguf("tied", "llama", meta, tensors)))
    needs = estimate(spec, Settings())
    embd = next(t for t in spec.tensors if t.name == "token_embd.weight")
    assert spec.tied_embeddings and needs.tied_output_copy_bytes == embd.size_bytes


def test_total_is_the_sum_of_parts(llama8b):
    n = estimate(llama8b, Settings(ctx=16384))
    assert n.total_bytes == (n.weights_bytes + n.kv_cache_bytes + n.recurrent_state_bytes + n.compute_bytes
                             + n.output_bytes + n.overhead_bytes)
    assert replace(n, overhead_bytes=0).total_bytes == n.total_bytes - n.overhead_bytes
