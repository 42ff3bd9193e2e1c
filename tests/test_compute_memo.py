"""The per-backend replay memo (fitcheck.compute._replayed): sibling quants share what does not depend on
their weights' types, and every figure is the one an unshared replay gives."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import pytest

from fitcheck import compute
from fitcheck.compute import sched
from fitcheck.estimate import estimate
from fitcheck.model import Settings
from fitcheck.sources.gguf import load_local
from tests import gguf_builder as synth

FIGURES = ("compute_bytes", "layer_compute_bytes", "host_compute_bytes", "streamed_compute_bytes",
           "streamed_host_compute_bytes", "expert_streamed_compute_bytes")


def _figures(needs) -> tuple[int, ...]:
    return tuple(getattr(needs, name) for name in FIGURES)


@pytest.fixture
def replays(monkeypatch):
    """An empty memo, and the per-backend replays run from here on (one entry per sched.buffer_sizes call)."""
    monkeypatch.setattr(compute, "_REPLAYED", OrderedDict())
    calls: list[int] = []
    real = sched.buffer_sizes

    def counted(*args, **kwargs):
        calls.append(args[1])  # the accelerators of the placement replayed
        return real(*args, **kwargs)

    monkeypatch.setattr(sched, "buffer_sizes", counted)
    return calls


def _quant(make_gguf, name: str, weight: str, down: str, embd: str, moe: bool = False):
    if moe:
        meta, tensors = synth.moe_layout(n_layer=4, n_embd=512, n_head=8, n_head_kv=2, head_dim=64, n_expert=8,
                                         n_expert_used=2, n_ff_exp=256, n_vocab=4096, weight_type=weight,
                                         expert_type=weight, expert_down_type=down, output_type=embd, name=name)
        meta.update(synth.tokenizer_metadata(4096))
        return load_local(str(make_gguf(name, "qwen3moe", meta, tensors)))
    meta, tensors = synth.llama_layout(n_layer=4, n_embd=512, n_head=8, n_head_kv=2, n_ff=1024, n_vocab=4096,
                                       n_ctx_train=8192, weight_type=weight, ffn_down_type=down, output_type=embd,
                                       embd_type=embd, name=name)
    return load_local(str(make_gguf(name, "llama", meta, tensors)))


@pytest.mark.parametrize("moe", [False, True])
def test_sibling_quants_share_the_offloaded_replays_and_keep_their_figures(make_gguf, replays, monkeypatch, moe):
    q4 = _quant(make_gguf, "m-Q4_K_M", "Q4_K", "Q6_K", "Q6_K", moe)
    q8 = _quant(make_gguf, "m-Q8_0", "Q8_0", "Q8_0", "Q8_0", moe)  # every type differs, token_embd's too
    s = Settings(ctx=4096, flash_attn="on", backend="cuda")
    first = _figures(estimate(q4, s))
    per_shape = len(replays)
    assert per_shape == (4 if moe else 3)  # one GPU, two GPUs, layers streamed from RAM (+ experts in RAM)
    shared = _figures(estimate(q8, s))
    # with every layer offloaded no weight is copied between backends (token_embd's lookup stays on the
    # host): the one- and two-GPU replays are shared; the streamed ones copy every block's weights
    assert replays[per_shape:] == ([1, 1] if moe else [1])
    monkeypatch.setattr(compute, "_REPLAYED", OrderedDict())
    alone = _figures(estimate(q8, s))
    assert shared == alone
    assert shared[:3] == first[:3]
    assert shared[3] > first[3]  # Q8_0's weights are larger copies than Q4_K_M's
    assert (shared[5] > first[5]) is moe
    before = len(replays)
    assert _figures(estimate(q4, s)) == first  # from the memo as Q8_0 left it: its own streamed replays only
    assert _figures(estimate(q4, s)) == first
    assert len(replays) - before == (2 if moe else 1)


def test_a_remembered_replay_is_not_reused_for_other_copied_sizes(make_gguf, replays, monkeypatch):
    """Only the quants whose copied weights have the same sizes share a streamed replay: another type of one
    block weight (attn_v, ffn_down) is a miss, and its figures are an unshared replay's."""
    q4 = _quant(make_gguf, "n-Q4_K_M", "Q4_K", "Q6_K", "Q6_K")
    q4s = _quant(make_gguf, "n-Q4_K_S", "Q4_K", "Q4_K", "Q6_K")
    again = _quant(make_gguf, "n-Q4_K_M-copy", "Q4_K", "Q6_K", "Q6_K")  # another file, the same sizes
    s = Settings(ctx=4096, flash_attn="off", backend="cuda", parallel=2)
    first = _figures(estimate(q4, s))
    other = _figures(estimate(q4s, s))
    assert replays == [1, 2, 1, 1]  # the second file's streamed replay ran
    assert _figures(estimate(again, s)) == first
    assert len(replays) == 4  # the third one's did not
    for spec, figures in ((q4s, other), (again, first)):
        monkeypatch.setattr(compute, "_REPLAYED", OrderedDict())
        assert _figures(estimate(spec, s)) == figures


def test_memo_keeps_placements_and_alignments_apart(make_gguf, replays, monkeypatch):
    """-nkvo and Metal's alignment are other replays, not the CUDA ones remembered."""
    q4 = _quant(make_gguf, "o-Q4_K_M", "Q4_K", "Q6_K", "Q6_K")
    s = Settings(ctx=4096, flash_attn="on", backend="cuda")
    variants = (s, replace(s, no_kv_offload=True), replace(s, backend="metal"))
    remembered = [_figures(estimate(q4, v)) for v in variants]
    assert len(replays) == 9
    for v, figures in zip(variants, remembered, strict=True):
        monkeypatch.setattr(compute, "_REPLAYED", OrderedDict())
        assert _figures(estimate(q4, v)) == figures
    assert remembered[2] != remembered[0]
