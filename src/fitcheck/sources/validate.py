"""The boundary checks: every value a stranger's header (GGUF metadata, config.json, a safetensors header) gives
the estimator is checked here once, for type, finiteness and a plausible range, and against the tensors the
file actually holds. What leaves this module is trusted: the estimator never converts a raw value again.

A value of the wrong type, out of range or contradicted by the tensors is a corrupt header: an InputError
that names the file, the key and what is wrong with it (untrusted text escaped and cut, fitcheck.text).
The bounds are generous (far above any published model) but they bound the work: a claim of 2^31 layers or
experts would otherwise cost time and memory in proportion to the claim, not to the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..text import quoted, shown

MAX_LAYERS = 512  # llama.cpp's LLAMA_MAX_LAYERS (src/llama-hparams.h): it refuses more
MAX_DIM = 1 << 20  # widths: embedding, feed-forward, head dims, ranks (largest published ~60k)
MAX_HEADS = 1 << 14
MAX_EXPERTS = 1024  # llama.cpp's LLAMA_MAX_EXPERTS
MAX_EXPERTS_USED = 64  # published MoE models route each token to at most ~16; the compute graph grows with it
MAX_VOCAB = 1 << 24
MAX_CTX = 1 << 32
MAX_SMALL = 1 << 16  # conv kernels, token shifts, intervals, gating function ids
MAX_SHARDS = 99999  # the -NNNNN-of-NNNNN suffix
GGML_MAX_NAME = 64  # ggml's tensor name buffer, the terminating NUL included (gguf.cpp refuses longer)
INT64_MAX = (1 << 63) - 1
ARCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
LAYER_NAME_RE = re.compile(r"^blk\.(0|[1-9][0-9]{0,8})\.(.+)$")
CORRUPT_HINT = "the header is corrupt or was written by a broken converter; re-download or re-convert the model"

# Keys under "{arch}." the estimator reads, with their kind and range.
_INT, _BOOL, _FLOAT = "int", "bool", "float"
ARCH_KEYS: dict[str, tuple[str, int, int]] = {
    "block_count": (_INT, 1, MAX_LAYERS),
    "context_length": (_INT, 0, MAX_CTX),
    "embedding_length": (_INT, 1, MAX_DIM),
    "vocab_size": (_INT, 0, MAX_VOCAB),
    "attention.key_length": (_INT, 0, MAX_DIM),
    "attention.value_length": (_INT, 0, MAX_DIM),
    "attention.sliding_window": (_INT, 0, MAX_CTX),
    "attention.chunk_size": (_INT, 0, MAX_CTX),
    "attention.kv_lora_rank": (_INT, 0, MAX_DIM),
    "attention.q_lora_rank": (_INT, 0, MAX_DIM),
    "attention.key_length_mla": (_INT, 0, MAX_DIM),
    "attention.value_length_mla": (_INT, 0, MAX_DIM),
    "attention.shared_kv_layers": (_INT, 0, MAX_LAYERS),
    "attention.causal": (_BOOL, 0, 1),
    "rope.dimension_count": (_INT, 0, MAX_DIM),
    "expert_count": (_INT, 0, MAX_EXPERTS),
    "expert_used_count": (_INT, 0, MAX_EXPERTS_USED),
    "expert_shared_count": (_INT, 0, MAX_EXPERTS),
    "expert_feed_forward_length": (_INT, 0, MAX_DIM),
    "expert_shared_feed_forward_length": (_INT, 0, MAX_DIM),
    "expert_gating_func": (_INT, 0, MAX_SMALL),
    "expert_weights_norm": (_BOOL, 0, 1),
    "expert_weights_scale": (_FLOAT, 0, 0),
    "leading_dense_block_count": (_INT, 0, MAX_LAYERS),
    "nextn_predict_layers": (_INT, 0, MAX_LAYERS),
    "full_attention_interval": (_INT, 0, MAX_LAYERS),
    "wkv.head_size": (_INT, 0, MAX_DIM),
    "token_shift_count": (_INT, 0, MAX_SMALL),
    "shortconv.l_cache": (_INT, 0, MAX_SMALL),
    "ssm.conv_kernel": (_INT, 0, MAX_SMALL),
    "ssm.inner_size": (_INT, 0, MAX_DIM),
    "ssm.state_size": (_INT, 0, MAX_DIM),
    "ssm.group_count": (_INT, 0, MAX_DIM),
}
# One number, or one per layer (llama.cpp's get_key_or_arr).
PER_LAYER_KEYS: dict[str, tuple[int, int]] = {
    "attention.head_count": (0, MAX_HEADS),
    "attention.head_count_kv": (0, MAX_HEADS),
    "feed_forward_length": (0, MAX_DIM),
}
PATTERN_KEY = "attention.sliding_window_pattern"
GLOBAL_KEYS: dict[str, tuple[int, int]] = {
    "general.file_type": (0, (1 << 32) - 1),
    "split.count": (0, MAX_SHARDS),
}


def describe(value: Any) -> str:
    """What a value is, for a message (never the whole of a long value)."""
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, float):
        return f"a float ({value!r})"
    if isinstance(value, str):
        return f"a string ({quoted(value, 40)})"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)} values"
    if hasattr(value, "count") and hasattr(value, "element_type"):  # gguf_header.ArraySummary
        return f"an array of {value.count} values"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


class Checker:
    """Reads values of one header (`where` names it in messages) with the checks above."""

    def __init__(self, where: str, meta: Mapping[str, Any], *, source: str = "GGUF header") -> None:
        self.where = shown(where, 200)
        self.meta = meta
        self.source = source

    def fail(self, what: str, hint: str = CORRUPT_HINT) -> InputError:
        return InputError(f"{self.where}: corrupt {self.source}: {what}", hint=hint)

    def integer(self, key: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{shown(key)} is {describe(value)}, expected an integer")
        if not lo <= value <= hi:
            raise self.fail(f"{shown(key)} = {describe(value)} is out of range (expected {lo}..{hi:,})")
        return value

    def get_int(self, key: str, default: int, lo: int = 0, hi: int = MAX_DIM) -> int:
        value = self.meta.get(key)
        return default if value is None else self.integer(key, value, lo, hi)

    def get_bool(self, key: str) -> bool | None:
        value = self.meta.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(f"{shown(key)} is {describe(value)}, expected a boolean")

    def get_float(self, key: str) -> float | None:
        value = self.meta.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{shown(key)} is {describe(value)}, expected a finite number")
        return float(value)

    def per_layer(self, key: str, n_layer: int, default: int, lo: int, hi: int) -> tuple[int, ...]:
        value = self.meta.get(key)
        if value is None:
            return (default,) * n_layer
        if isinstance(value, list):
            if len(value) != n_layer:
                raise self.fail(f"{shown(key)} has {len(value)} entries for {n_layer} layers")
            return tuple(self.integer(f"{key}[{i}]", v, lo, hi) for i, v in enumerate(value))
        if not isinstance(value, (int, float, str, bool)):  # a long array the parser summarised
            raise self.fail(f"{shown(key)} is {describe(value)} for {n_layer} layers")
        return (self.integer(key, value, lo, hi),) * n_layer


def architecture(where: str, value: Any, key: str = "general.architecture") -> str:
    """An architecture name: a short identifier (it prefixes keys and appears in notes)."""
    if not isinstance(value, str) or not ARCH_RE.match(value):
        raise Checker(where, {}).fail(f"{key} is {describe(value)}, not an architecture name",
                                      hint="is this a model file (not a LoRA or mmproj)?")
    return value


@dataclass(frozen=True)
class Hparams:
    """The validated hyperparameters of a GGUF, and the metadata the estimator may read (values checked)."""

    n_layer: int
    n_ctx_train: int
    n_embd: int
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_expert: int
    n_expert_used: int
    n_ff: int
    sliding_window: int
    file_type: int | None
    metadata: dict[str, Any]


def gguf_hparams(where: str, arch: str, meta: Mapping[str, Any], tensors: Iterable[Any]) -> Hparams:
    """Check every key the estimator reads, then the claims against the tensors (names, layer indices and
    shapes as `Tensor`s with `.name`, `.shape`, `.layer`)."""
    c = Checker(where, meta)
    tensors = list(tensors)
    # keys the estimator does not read pass through (long arrays dropped); the ones it reads are replaced by
    # their checked values below: a new read of metadata belongs in ARCH_KEYS first
    clean: dict[str, Any] = {k: v for k, v in meta.items() if not _long_array(v)}
    for suffix, (kind, lo, hi) in ARCH_KEYS.items():
        key = f"{arch}.{suffix}"
        if key not in meta:
            continue
        clean[key] = (c.get_int(key, 0, lo, hi) if kind == _INT else c.get_bool(key) if kind == _BOOL
                      else c.get_float(key))
    for key, (lo, hi) in GLOBAL_KEYS.items():
        if key in meta:
            clean[key] = c.get_int(key, 0, lo, hi)

    block_key = f"{arch}.block_count"
    if block_key not in meta:
        raise InputError(f"{c.where}: {shown(block_key)} is missing", hint="not a llama.cpp model GGUF?")
    n_layer = clean[block_key]
    n_embd = c.get_int(f"{arch}.embedding_length", 0, 1, MAX_DIM)
    n_head = c.per_layer(f"{arch}.attention.head_count", n_layer, 0, *PER_LAYER_KEYS["attention.head_count"])
    n_head_kv = c.per_layer(f"{arch}.attention.head_count_kv", n_layer, max(n_head),
                            *PER_LAYER_KEYS["attention.head_count_kv"])
    n_ff = c.per_layer(f"{arch}.feed_forward_length", n_layer, 0, *PER_LAYER_KEYS["feed_forward_length"])
    for suffix, values in (("attention.head_count", n_head), ("attention.head_count_kv", n_head_kv),
                           ("feed_forward_length", n_ff)):
        clean[f"{arch}.{suffix}"] = list(values) if isinstance(meta.get(f"{arch}.{suffix}"), list) else values[0]
    pattern = _pattern(c, f"{arch}.{PATTERN_KEY}", n_layer)
    if pattern is not None:
        clean[f"{arch}.{PATTERN_KEY}"] = pattern
    else:
        clean.pop(f"{arch}.{PATTERN_KEY}", None)
    head_max = max(n_head) or 1
    n_expert = clean.get(f"{arch}.expert_count", 0)
    n_expert_used = clean.get(f"{arch}.expert_used_count", 0)
    if n_expert_used > n_expert:
        raise c.fail(f"{arch}.expert_used_count {n_expert_used} exceeds {arch}.expert_count {n_expert}")

    _check_layers(c, arch, n_layer, tensors)
    routed = any(t.layer is not None and t.layer < n_layer and t.name.endswith("ffn_gate_inp.weight") for t in tensors)
    if routed and (not n_expert or not n_expert_used):
        raise c.fail(f"the blocks have expert routers but {arch}.expert_count is {n_expert} and "
                     f"{arch}.expert_used_count is {n_expert_used}")
    if any(t.name.endswith("attn_kv_a_mqa.weight") for t in tensors) and not clean.get(
            f"{arch}.attention.kv_lora_rank"):
        raise c.fail(f"an MLA model (attn_kv_a_mqa tensors) without {arch}.attention.kv_lora_rank")

    return Hparams(
        n_layer=n_layer,
        n_ctx_train=clean.get(f"{arch}.context_length", 4096),
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=clean.get(f"{arch}.attention.key_length", n_embd // head_max),
        head_dim_v=clean.get(f"{arch}.attention.value_length", n_embd // head_max),
        n_vocab=_vocab(c, arch, meta, clean, tensors),
        n_expert=n_expert,
        n_expert_used=n_expert_used,
        n_ff=max(n_ff),
        sliding_window=clean.get(f"{arch}.attention.sliding_window", 0),
        file_type=clean.get("general.file_type"),
        metadata=clean,
    )


def _long_array(value: Any) -> bool:
    return (isinstance(value, list) and len(value) > 4096) or hasattr(value, "element_type")


def _pattern(c: Checker, key: str, n_layer: int) -> list[bool] | int | None:
    """The per-layer sliding-window pattern: a period, or one flag per layer (other lengths are ignored, as
    the registry's rule then applies)."""
    value = c.meta.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != n_layer:
            return None
        flags = []
        for i, v in enumerate(value):
            if isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)):
                flags.append(bool(v))
            else:
                raise c.fail(f"{shown(key)}[{i}] is {describe(v)}, expected a boolean")
        return flags
    if isinstance(value, bool):
        raise c.fail(f"{shown(key)} is {describe(value)}, expected a period or one flag per layer")
    if not isinstance(value, (int, float, str)):
        return None  # a summarised long array: not one entry per layer
    return c.integer(key, value, 0, MAX_LAYERS)


def _check_layers(c: Checker, arch: str, n_layer: int, tensors: list[Any]) -> None:
    """block_count against the blocks that have tensors: llama.cpp needs every block's tensors."""
    present = {t.layer for t in tensors if t.layer is not None and t.layer < n_layer}
    if len(present) < n_layer:
        missing = next(il for il in range(n_layer) if il not in present)
        raise c.fail(f"{arch}.block_count is {n_layer} but the file has tensors for {len(present)} of those "
                     f"blocks (none for blk.{missing})")


def _vocab(c: Checker, arch: str, meta: Mapping[str, Any], clean: dict[str, Any], tensors: list[Any]) -> int:
    tokens = meta.get("tokenizer.ggml.tokens")
    if tokens is not None:
        is_array = isinstance(tokens, list) or (hasattr(tokens, "count") and hasattr(tokens, "element_type"))
        if not is_array:
            raise c.fail(f"tokenizer.ggml.tokens is {describe(tokens)}, expected an array of strings")
        if isinstance(tokens, list) and any(not isinstance(t, str) for t in tokens):
            raise c.fail("tokenizer.ggml.tokens is not an array of strings")
        if hasattr(tokens, "element_type") and tokens.element_type != 8:
            raise c.fail("tokenizer.ggml.tokens is not an array of strings")
        if len(tokens) > MAX_VOCAB:
            raise c.fail(f"tokenizer.ggml.tokens has {len(tokens):,} tokens (more than {MAX_VOCAB:,})")
        return len(tokens)
    if f"{arch}.vocab_size" in clean:
        return int(clean[f"{arch}.vocab_size"])
    for t in tensors:  # token_embd is [n_embd, n_vocab]
        if t.name == "token_embd.weight" and len(t.shape) == 2:
            return min(t.shape[1], MAX_VOCAB)
    return 0


def tensor_name(where: str, name: Any) -> tuple[str, int | None]:
    """A tensor name as gguf.cpp accepts it, and its block index (None outside the blocks)."""
    c = Checker(where, {})
    if not isinstance(name, str) or not name:
        raise c.fail(f"a tensor name is {describe(name)}")
    if len(name.encode("utf-8", "surrogatepass")) >= GGML_MAX_NAME:
        raise c.fail(f"tensor name {quoted(name)} is longer than ggml's {GGML_MAX_NAME - 1} bytes")
    if not name.startswith("blk."):
        return name, None
    m = LAYER_NAME_RE.match(name)
    if not m:
        raise c.fail(f"tensor name {quoted(name)} is not blk.N.NAME")
    return name, int(m.group(1))


def tensor_shape(where: str, name: str, dims: Any, block_size: int) -> int:
    """gguf.cpp's shape checks (non-negative dimensions, an element count that fits int64, whole blocks in a
    row); the element count."""
    c = Checker(where, {})
    n = 1
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0 or d > INT64_MAX:
            raise c.fail(f"tensor {quoted(name)} has a dimension of {describe(d)}")
        n *= d
        if n > INT64_MAX:
            raise c.fail(f"tensor {quoted(name)} has more than 2^63 elements")
    if dims and dims[0] % block_size:
        raise c.fail(f"tensor {quoted(name)}: a row of {dims[0]} elements is not a whole number of "
                     f"{block_size}-element blocks")
    return n


def config_int(where: str, config: Mapping[str, Any], keys: tuple[str, ...], default: int, lo: int,
               hi: int) -> int:
    """An integer from config.json (the first of `keys` present and not null): JSON integers, or floats
    with an integral value (some converters write 4096.0)."""
    c = Checker(where, config, source="config.json")
    for key in keys:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        return c.integer(key, value, lo, hi)
    return default
