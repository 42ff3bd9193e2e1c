"""The boundary checks on GGUF metadata: every value the estimator reads is typed, finite, in range and
consistent with the tensors, or the file is named as corrupt (the fuzz campaign's finds, one test each)."""

from __future__ import annotations

import math

import pytest

from fitcheck.errors import InputError
from fitcheck.sources.gguf import load_local
from fitcheck.sources.validate import MAX_LAYERS
from tests import gguf_builder as synth


def _llama(**changes):
    meta, tensors = synth.llama_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=300,
                                       with_vocab=False)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return meta, tensors


def _load(make_gguf, meta, tensors, arch="llama"):
    return load_local(str(make_gguf("v", arch, meta, tensors)))


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(("key", "value", "says"), [
    ("llama.block_count", synth.typed("float32", NAN), r"llama\.block_count is a float \(nan\), expected an integer"),
    ("llama.block_count", synth.typed("float64", INF), r"block_count is a float \(inf\)"),
    ("llama.block_count", synth.typed("float64", 1.7e308), r"block_count is a float \(1\.7e\+308\)"),
    ("llama.block_count", "2", r"block_count is a string \('2'\)"),
    ("llama.block_count", [2, 2], r"block_count is an array of 2 values"),
    ("llama.block_count", True, r"block_count is a boolean"),
    ("llama.attention.head_count", synth.typed("float32", NAN), r"head_count is a float \(nan\)"),
    ("llama.attention.head_count_kv", [2.0, NAN], r"head_count_kv\[0\] is a float \(2\.0\)"),
    ("llama.attention.head_count_kv", ["2", "2"], r"head_count_kv\[0\] is a string"),
    ("llama.embedding_length", synth.typed("int64", -2**62),
     r"embedding_length = -4611686018427387904 is out of range"),
    ("llama.expert_feed_forward_length", "768", r"expert_feed_forward_length is a string"),
    ("llama.expert_shared_count", synth.typed("float32", INF), r"expert_shared_count is a float \(inf\)"),
    ("llama.attention.key_length_mla", synth.typed("float32", NAN), r"key_length_mla is a float"),
    ("general.file_type", "Q4_K_M", r"general\.file_type is a string"),
    ("general.file_type", [15], r"general\.file_type is an array"),
    ("tokenizer.ggml.tokens", "not-a-list", r"tokenizer\.ggml\.tokens is a string .*expected an array of strings"),
    ("tokenizer.ggml.tokens", [1, 2, 3], r"tokenizer\.ggml\.tokens is not an array of strings"),
    ("llama.expert_weights_norm", "yes", r"expert_weights_norm is a string .*expected a boolean"),
    ("llama.attention.sliding_window_pattern", ["x", "y"], r"sliding_window_pattern\[0\] is a string"),
])
def test_values_of_the_wrong_type_are_named(make_gguf, key, value, says):
    meta, tensors = _llama(**{key.replace(".", "__"): value})
    with pytest.raises(InputError, match="corrupt GGUF header: .*" + says) as err:
        _load(make_gguf, meta, tensors)
    assert "internal error" not in str(err.value) and err.value.hint


def test_lfm2_shortconv_cache_of_the_wrong_type(make_gguf):
    meta, tensors = _llama()
    meta = {k.replace("llama.", "lfm2."): v for k, v in meta.items()}
    meta["lfm2.shortconv.l_cache"] = synth.typed("float32", NAN)
    with pytest.raises(InputError, match=r"lfm2\.shortconv\.l_cache is a float \(nan\)"):
        _load(make_gguf, meta, tensors, arch="lfm2")


@pytest.mark.parametrize("claim", [MAX_LAYERS + 1, 10_000_000, 2**31])
def test_implausible_layer_counts_are_refused_without_allocating(make_gguf, claim):
    meta, tensors = _llama(llama__block_count=claim)
    with pytest.raises(InputError, match=rf"block_count = {claim} is out of range \(expected 1\.\.{MAX_LAYERS}\)"):
        _load(make_gguf, meta, tensors)


def test_a_layer_count_the_tensors_do_not_back_is_corrupt(make_gguf):
    meta, tensors = _llama(llama__block_count=400)  # plausible, but the file holds 2 blocks
    with pytest.raises(InputError, match=r"block_count is 400 but the file has tensors for 2 of those blocks"):
        _load(make_gguf, meta, tensors)


def test_experts_claimed_beyond_the_count(make_gguf):
    meta, tensors = synth.moe_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, head_dim=64, n_expert=8,
                                     n_expert_used=2, n_ff_exp=256, n_vocab=300)
    meta["qwen3moe.expert_used_count"] = 2**31
    with pytest.raises(InputError, match=r"expert_used_count = 2147483648 is out of range"):
        _load(make_gguf, meta, tensors, arch="qwen3moe")
    meta["qwen3moe.expert_used_count"] = 9
    with pytest.raises(InputError, match=r"expert_used_count 9 exceeds qwen3moe\.expert_count 8"):
        _load(make_gguf, meta, tensors, arch="qwen3moe")


def test_implausibly_many_experts_per_token(make_gguf):
    meta, tensors = synth.moe_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, head_dim=64, n_expert=128,
                                     n_expert_used=65, n_ff_exp=256, n_vocab=300)
    with pytest.raises(InputError, match=r"expert_used_count = 65 is out of range \(expected 0\.\.64\)"):
        _load(make_gguf, meta, tensors, arch="qwen3moe")


def test_expert_routers_without_used_experts(make_gguf):
    meta, tensors = synth.moe_layout(n_layer=2, n_embd=256, n_head=4, n_head_kv=2, head_dim=64, n_expert=8,
                                     n_expert_used=2, n_ff_exp=256, n_vocab=300)
    meta["qwen3moe.expert_used_count"] = 0
    with pytest.raises(InputError, match=r"expert routers but qwen3moe\.expert_count is 8 and "
                                         r"qwen3moe\.expert_used_count is 0"):
        _load(make_gguf, meta, tensors, arch="qwen3moe")


def test_mla_without_its_rank(make_gguf):
    meta, tensors = _llama()
    meta = {k.replace("llama.", "deepseek2."): v for k, v in meta.items()}
    tensors = tensors + [("blk.0.attn_kv_a_mqa.weight", [256, 576], "F16"),
                         ("blk.1.attn_kv_a_mqa.weight", [256, 576], "F16")]
    with pytest.raises(InputError, match=r"MLA model .* without deepseek2\.attention\.kv_lora_rank"):
        _load(make_gguf, meta, tensors, arch="deepseek2")


@pytest.mark.parametrize(("name", "says"), [
    ("blk.attn_norm", r"tensor name 'blk\.attn_norm' is not blk\.N\.NAME"),
    ("blk.0", r"tensor name 'blk\.0' is not blk\.N\.NAME"),
    ("blk.00.x", r"is not blk\.N\.NAME"),
    ("blk." + "9" * 5000 + ".attn_norm.weight", r"tensor name 'blk\.9+…' is longer than ggml's 63 bytes"),
    ("blk.0.\x1b[31m\n" + "x" * 70, r"tensor name 'blk\.0\.\\x1b\[31m\\x0axxx+…' is longer"),
])
def test_broken_tensor_names(make_gguf, name, says):
    meta, tensors = _llama()
    tensors = tensors + [(name, [256], "F32")]
    with pytest.raises(InputError, match=says) as err:
        _load(make_gguf, meta, tensors)
    assert "\x1b" not in str(err.value) and len(str(err.value)) < 400


def test_duplicate_tensor(tmp_path):  # written by the fuzz harness's encoder: GGUFWriter refuses duplicates
    from tests.fuzz import harness

    model = harness.seed("llama")
    model.tensors.append(harness.TI(model.tensors[3].name, list(model.tensors[3].dims), model.tensors[3].type_id))
    out = tmp_path / "dup.gguf"
    out.write_bytes(harness.encode(model).data)
    with pytest.raises(InputError, match=r"tensor 'blk\.0\.[a-z_.]+' appears twice"):
        load_local(str(out))


def test_tensor_offsets_must_follow_each_other(tmp_path):
    from tests.fuzz import harness

    model = harness.seed("llama")
    model.tensors[2].offset = 12345
    out = tmp_path / "off.gguf"
    out.write_bytes(harness.encode(model).data)
    with pytest.raises(InputError, match=r"has data offset 12345, expected \d+"):
        load_local(str(out))


def test_unknown_architecture_is_a_guess_not_a_crash(make_gguf):
    from fitcheck.estimate import estimate
    from fitcheck.model import Settings

    meta, tensors = _llama()
    meta = {k.replace("llama.", "brandnew."): v for k, v in meta.items()}
    spec = _load(make_gguf, meta, tensors, arch="brandnew")
    needs = estimate(spec, Settings())
    assert any("not in fitcheck's rules" in n and "assumed" in n for n in needs.notes)


@pytest.mark.parametrize("arch", ["llama\nx", "\x1b[31mllama", "a" * 100, "../etc", ""])
def test_architecture_names_are_identifiers(make_gguf, tmp_path, arch):
    from tests.fuzz import harness

    model = harness.seed("llama")
    model.kvs[0] = harness.KV("general.architecture", harness.STRING, arch)
    out = tmp_path / "arch.gguf"
    out.write_bytes(harness.encode(model).data)
    with pytest.raises(InputError, match=r"general\.architecture is a string .* not an architecture name") as err:
        load_local(str(out))
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)


def test_valid_values_pass_through_checked(llama8b, qwen3_30b_a3b, gemma3):
    assert llama8b.metadata["llama.block_count"] == 32
    assert qwen3_30b_a3b.metadata["qwen3moe.expert_used_count"] == 8
    assert gemma3.sliding_window == 512 and gemma3.metadata["gemma3.attention.sliding_window"] == 512
