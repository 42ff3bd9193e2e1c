"""Properties of placement: no byte is lost or counted twice, and one GPU's share matches a recount from the tensors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fitcheck.estimate import estimate
from fitcheck.model import Gpu, Hardware, ModelSpec, Settings, Tensor
from fitcheck.placement import layer_loads, place, targets


@st.composite
def layouts(draw):
    n_layer = draw(st.integers(1, 12))
    n_expert = draw(st.sampled_from([0, 8]))
    tied = draw(st.booleans())
    size = st.integers(1, 4 * 2**20)
    tensors = [Tensor("token_embd.weight", "F16", (64, 1000), draw(size), None)]
    for il in range(n_layer):
        tensors.append(Tensor(f"blk.{il}.attn_q.weight", "F16", (64, 64), draw(size), il))
        tensors.append(Tensor(f"blk.{il}.ffn_up.weight", "F16", (64, 64), draw(size), il))
        if n_expert:
            tensors.append(Tensor(f"blk.{il}.ffn_up_exps.weight", "F16", (64, 64, n_expert), draw(size), il))
    tensors.append(Tensor("output_norm.weight", "F32", (64,), 256, None))
    if not tied:
        tensors.append(Tensor("output.weight", "F16", (64, 1000), draw(size), None))
    kv_heads = tuple(draw(st.sampled_from([0, 1, 2])) for _ in range(n_layer))
    return ModelSpec(ref="random.gguf", name="random", architecture="llama", file_type="F16", n_layer=n_layer,
                     n_ctx_train=4096, n_embd=64, n_head=(4,) * n_layer, n_head_kv=kv_heads, head_dim_k=16,
                     head_dim_v=16, n_vocab=1000, tensors=tuple(tensors), file_size_bytes=1,
                     n_expert=n_expert, n_expert_used=2 if n_expert else 0, n_ff=64)


@st.composite
def machines(draw):
    local = draw(st.lists(st.integers(0, 64 * 2**20), max_size=3))
    remote = draw(st.lists(st.integers(0, 64 * 2**20), max_size=2))
    gpus = tuple(Gpu(i, f"r{i}", c, c, remote=f"10.0.0.{i}:50052") for i, c in enumerate(remote))
    gpus += tuple(Gpu(i, f"g{i}", c, c) for i, c in enumerate(local))
    ram = draw(st.integers(0, 256 * 2**20))
    return Hardware("override", gpus, ram, ram)


@given(layouts(), machines(), st.integers(0, 20), st.integers(0, 20), st.booleans())
@hsettings(max_examples=200, deadline=None)
def test_every_byte_is_placed_once(spec, hw, ngl, n_cpu_moe, override):
    settings = Settings(ctx=1024, gpu_reserve_bytes=2**20, margin_bytes=0,
                        tensor_overrides=((r"blk\.0\.attn_q", "CPU"),) if override else ())
    needs = estimate(spec, settings)
    tgts = targets(hw, settings)
    loads = layer_loads(spec, needs, settings, [t.name for t in tgts])
    p = place(spec, needs, settings, tgts, loads, min(ngl, spec.n_layer + 1) if len(tgts) > 1 else 0,
              min(n_cpu_moe, spec.n_layer))
    output_on_accel = len(tgts) > 1 and min(ngl, spec.n_layer + 1) > spec.n_layer
    tied_copy = needs.tied_output_copy_bytes if output_on_accel else 0
    assert sum(d.weights_bytes for d in p.devices) == needs.weights_bytes + tied_copy
    assert sum(d.kv_cache_bytes for d in p.devices) == needs.kv_cache_bytes
    assert sum(d.other_bytes for d in p.devices) == needs.recurrent_state_bytes + needs.output_bytes
    assert p.devices[-1].kind == "cpu"


@given(layouts(), st.integers(0, 64 * 2**20), st.integers(0, 256 * 2**20), st.integers(0, 20))
@hsettings(max_examples=200, deadline=None)
def test_one_gpu_placement_matches_an_independent_count(spec, vram, ram, ngl):
    """-ngl N on one GPU, recounted from the tensors: the last N of the n_layer + 1 layers (output last)."""
    settings = Settings(ctx=1024, gpu_reserve_bytes=2**20, margin_bytes=0)
    hw = Hardware("override", (Gpu(0, "g0", vram, vram),), ram, ram)
    needs = estimate(spec, settings)
    tgts = targets(hw, settings)
    ngl = min(ngl, spec.n_layer + 1)
    p = place(spec, needs, settings, tgts, layer_loads(spec, needs, settings, [t.name for t in tgts]), ngl, 0)

    blocks = set(range(spec.n_layer - min(ngl, spec.n_layer), spec.n_layer))
    output_on_gpu = ngl > spec.n_layer
    gpu_weights = 0
    for t in spec.tensors:
        on_output_layer = t.layer is None and not t.name.startswith("token_embd")
        if t.layer in blocks or (output_on_gpu and on_output_layer):
            gpu_weights += t.size_bytes
    tied_copy = next(t.size_bytes for t in spec.tensors if t.name == "token_embd.weight") \
        if output_on_gpu and spec.tied_embeddings else 0
    gpu_kv = sum(needs.layers[i].kv_cache_bytes for i in blocks)
    gpu_state = sum(needs.layers[i].recurrent_state_bytes for i in blocks)
    used = bool(blocks) or output_on_gpu
    gpu_compute = needs.compute_bytes if output_on_gpu else needs.layer_compute_bytes if used else 0
    gpu_total = gpu_weights + tied_copy + gpu_kv + gpu_state + gpu_compute + (2**20 if used else 0)

    gpu, cpu = p.devices
    assert gpu.total_bytes == gpu_total
    assert cpu.weights_bytes == spec.weights_bytes - gpu_weights
    assert cpu.kv_cache_bytes == needs.kv_cache_bytes - gpu_kv
    assert p.fits == (gpu_total <= vram and cpu.total_bytes <= ram)


@given(st.integers(1, 600), st.integers(0, 600), st.integers(-5, 605))
@hsettings(max_examples=500, deadline=None)
def test_boundary_search_from_a_guess_finds_the_exact_boundary(hi, threshold, guess):
    """The context search probes outward from a cheap guess: any guess must give the exact answer."""
    from fitcheck.plan import _largest_near

    threshold = min(threshold, hi)
    assert _largest_near(guess, 1, hi, lambda x: x <= threshold) == (threshold if threshold >= 1 else None)
