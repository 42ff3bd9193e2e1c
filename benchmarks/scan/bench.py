"""Wall time of `fitcheck scan` over 1,000 distinct GGUF files shaped like a real store.

The tree (tests.gguf_builder, header-only files truncated to their full size, so sparse): ~80 model families
across architectures (llama, qwen2, qwen3moe, gemma3) and vocabularies of 32k to 262k tokens (BPE ones with
their merges), each with several quants (another general.file_type and other tensor types, the same
tokenizer), some families with a split quant, some with a projector (mmproj), and partial downloads, laid
out as publisher/Model-GGUF/Model-QUANT.gguf. Every file is distinct: its own inode, its own bytes.

Runs (each a fresh process, `fitcheck scan --no-stores TREE --vram 24G --ram 64G --ram-bandwidth 50 --json`):
cold (an empty cache folder), warm (the same again: every row cached), and warm headers with a new context
(`-c` changed: every header cached, every row planned again), each with `-j 1` and the default `-j`; the
script checks that all the runs of one context give identical rows. The page cache is warm (the tree was
just written): this measures parsing and planning, not a cold disk.

Usage: python benchmarks/scan/bench.py [--keep DIR] [--families N]   (DIR: build the tree once, reuse it)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.gguf_builder: not shipped

from tests import gguf_builder as synth
from tests.store_trees import projector

# label, general.file_type, weight type, ffn_down / attn_v type, token_embd + output type
QUANTS = [("Q2_K", 10, "Q2_K", "Q3_K", "Q6_K"), ("Q3_K_M", 12, "Q3_K", "Q5_K", "Q6_K"),
          ("Q4_0", 2, "Q4_0", "Q4_0", "Q6_K"), ("Q4_K_S", 14, "Q4_K", "Q4_K", "Q6_K"),
          ("Q4_K_M", 15, "Q4_K", "Q6_K", "Q6_K"), ("IQ4_XS", 30, "IQ4_XS", "IQ4_XS", "Q6_K"),
          ("Q5_K_M", 17, "Q5_K", "Q6_K", "Q6_K"), ("Q6_K", 18, "Q6_K", "Q6_K", "Q6_K"),
          ("Q8_0", 7, "Q8_0", "Q8_0", "Q8_0"), ("F16", 1, "F16", "F16", "F16"), ("Q3_K_S", 11, "Q3_K", "Q3_K", "Q6_K"),
          ("Q5_K_S", 16, "Q5_K", "Q5_K", "Q6_K"), ("Q4_1", 3, "Q4_1", "Q4_1", "Q6_K"), ("BF16", 32, "BF16", "BF16", "BF16")]
# vocabulary: (n_vocab, tokenizer model); BPE ones carry merges (about one per token, as Qwen's and Llama 3's)
VOCABS = [(32000, "llama"), (32768, "llama"), (49152, "gpt2"), (65536, "gpt2"), (100352, "gpt2"),
          (128256, "gpt2"), (151936, "gpt2"), (262144, "llama")]
# dense sizes: (n_layer, n_embd, n_head, n_head_kv, n_ff)
DENSE = [(16, 2048, 32, 8, 8192), (24, 2048, 16, 8, 5632), (28, 3072, 24, 8, 8192), (32, 4096, 32, 8, 14336),
         (36, 4096, 32, 8, 12288), (40, 5120, 40, 8, 13824), (48, 5120, 40, 8, 17408), (80, 8192, 64, 8, 28672)]


def tokenizer(n_vocab: int, model: str) -> dict[str, Any]:
    meta = synth.tokenizer_metadata(n_vocab)
    meta["tokenizer.ggml.model"] = model
    if model == "gpt2":
        meta["tokenizer.ggml.merges"] = [f"t{i % 997} t{i}" for i in range(n_vocab)]
    meta["tokenizer.chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}" * 20
    return meta


def family_layout(i: int, rng: random.Random, quant: tuple[str, int, str, str, str], vocab: dict[str, Any],
                  n_vocab: int, kind: str, shape: tuple[int, ...]) -> tuple[str, dict[str, Any], list]:
    _, ft, w, down, out = quant
    if kind == "moe":
        n_layer, n_embd = shape[0], shape[1]
        meta, tensors = synth.moe_layout(n_layer=n_layer, n_embd=n_embd, n_vocab=n_vocab, weight_type=w,
                                         expert_type=w, expert_down_type=down, output_type=out,
                                         name=f"family-{i}", file_type=ft)
        arch = "qwen3moe"
    elif kind == "gemma3":
        n_layer, n_embd = shape[0], shape[1]
        meta, tensors = synth.gemma3_layout(n_layer=n_layer, n_embd=n_embd, n_head=8, n_head_kv=4, head_dim=256,
                                            n_ff=n_embd * 4, n_vocab=n_vocab, weight_type=w)
        meta["general.name"], meta["general.file_type"] = f"family-{i}", ft
        arch = "gemma3"
    else:
        arch = kind
        n_layer, n_embd, n_head, n_head_kv, n_ff = shape
        meta, tensors = synth.llama_layout(arch=arch, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                                           n_head_kv=n_head_kv, n_ff=n_ff, n_vocab=n_vocab, weight_type=w,
                                           ffn_down_type=down, output_type=out, embd_type=out, file_type=ft,
                                           name=f"family-{i}", with_vocab=False, attn_bias=arch == "qwen2",
                                           n_ctx_train=rng.choice((8192, 32768, 131072)))
    meta.update(vocab)
    meta["general.quantization_version"] = 2
    return arch, meta, tensors


class _PackMemo:
    """gguf's writer packs each string of a 150k-token array one call at a time (~1 s a file): the family's
    large arrays are the same in every quant, so their packed bytes are reused (the same bytes)."""

    def __init__(self) -> None:
        import gguf

        self.cls = gguf.GGUFWriter
        self.orig = self.cls._pack_val
        self.memo: dict[tuple[Any, ...], tuple[None, bytes]] = {}
        memo, orig = self.memo, self.orig

        def pack_val(writer: Any, val: Any, vtype: Any, add_vtype: bool, sub_type: Any = None) -> bytes:
            if isinstance(val, list) and len(val) > 4096:
                key = (tuple(val), vtype, add_vtype, sub_type)  # the writer copies the list: key by content
                if key not in memo:
                    memo[key] = (None, orig(writer, val, vtype, add_vtype, sub_type))
                return memo[key][1]
            return orig(writer, val, vtype, add_vtype, sub_type)

        self.cls._pack_val = pack_val  # type: ignore[method-assign]


def build(root: Path, families: int, target: int, seed: int = 7) -> dict[str, int]:
    """~`target` distinct files under root; returns counts by kind."""
    rng = random.Random(seed)
    memo = _PackMemo()
    counts = {"model": 0, "split shards": 0, "mmproj": 0, "partial": 0}
    per_family = max(2, (target - families // 3) // families)
    for i in range(families):
        n_vocab, tok = VOCABS[i % len(VOCABS)]
        kind = ("llama", "qwen2", "moe", "gemma3")[i % 4] if tok == "gpt2" or i % 4 != 1 else "llama"
        if kind == "gemma3":
            shape: tuple[int, ...] = (rng.choice((18, 26, 34, 48, 62)), rng.choice((1024, 2304, 2560, 3840, 5376)))
        elif kind == "moe":
            shape = (rng.choice((24, 48, 94)), rng.choice((2048, 4096)))
        else:
            shape = DENSE[rng.randrange(len(DENSE))]
        vocab = tokenizer(n_vocab, tok)
        memo.memo.clear()
        folder = root / f"pub{i % 12}" / f"Family{i}-GGUF"
        folder.mkdir(parents=True, exist_ok=True)
        quants = rng.sample(QUANTS, k=min(len(QUANTS), per_family + rng.randint(-2, 2)))
        for q in quants:
            arch, meta, tensors = family_layout(i, rng, q, vocab, n_vocab, kind, shape)
            name = f"Family{i}-{q[0]}"
            if q[0] in ("Q8_0", "F16") and i % 5 == 0:  # a split quant: llama.cpp's shard names
                split = folder / q[0]
                split.mkdir(exist_ok=True)
                synth.write_header_only(split / f"{name}.gguf", arch, meta, tensors,
                                        split_max_tensors=max(1, len(tensors) // 2))
                counts["split shards"] += len(list(split.glob("*.gguf")))
                continue
            path = folder / f"{name}.gguf"
            full = synth.write_header_only(path, arch, meta, tensors)
            os.truncate(path, full)  # sparse: the full size on a stat, the header on disk
            counts["model"] += 1
        if i % 3 == 0:
            projector(folder / f"mmproj-Family{i}-f16.gguf")
            counts["mmproj"] += 1
        if i % 4 == 2:
            head = (folder / f"Family{i}-{quants[0][0]}.gguf")
            if head.exists():
                with open(head, "rb") as f:  # a download cut short: its first 64 KiB
                    (folder / f"Family{i}-Q5_K_S.gguf.incomplete").write_bytes(f.read(65536))
                counts["partial"] += 1
    memo.cls._pack_val = memo.orig  # type: ignore[method-assign]
    return counts


def run(tree: Path, cache: Path, *extra: str) -> tuple[float, float, dict[str, Any]]:
    env = {**os.environ, "FITCHECK_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "fitcheck", "scan", "--no-stores", str(tree), "--vram", "24G",
                        "--ram", "64G", "--ram-bandwidth", "50", "--json", *extra], capture_output=True, text=True,
                       env=env, check=False)
    wall = time.perf_counter() - start
    if r.returncode not in (0, 1):
        raise SystemExit(r.stderr)
    return wall, load, json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=Path, help="build the tree here once and reuse it")
    ap.add_argument("--families", type=int, default=84)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--build-only", action="store_true", help="with --keep: build the tree and stop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = args.keep or Path(tmp) / "tree"
        if not (tree / ".built").exists():
            shutil.rmtree(tree, ignore_errors=True)
            t0 = time.perf_counter()
            counts = build(tree, args.families, args.files)
            (tree / ".built").write_text(json.dumps(counts))
            print(f"built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        counts = json.loads((tree / ".built").read_text())
        if args.build_only:
            return
        files = [p for p in tree.rglob("*") if p.is_file() and p.name != ".built"]
        on_disk = sum(p.stat().st_blocks * 512 for p in files)
        print(f"{len(files)} distinct files ({counts}), {on_disk / 1e9:.2f} GB on disk, "
              f"{len({p.stat().st_ino for p in files})} inodes; {os.cpu_count()} CPUs")
        results = []
        for jobs in (("-j", "1"), ()):
            label = "-j 1" if jobs else "default -j"
            cache = Path(tmp) / f"cache{len(jobs)}"
            shutil.rmtree(cache, ignore_errors=True)
            cold = run(tree, cache, *jobs)
            warm = run(tree, cache, *jobs)
            assert cold[2]["rows"] == warm[2]["rows"]
            new_ctx = run(tree, cache, "-c", "16k" if jobs else "24k", *jobs)
            results.append((label, cold, warm, new_ctx))
        assert results[0][1][2]["rows"] == results[1][1][2]["rows"]  # one process or several: the same rows
        doc = results[0][1][2]
        kinds: dict[str, int] = {}
        for row in doc["rows"]:
            kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        print(f"rows {len(doc['rows'])} {kinds}")
        print("| run | cold | warm | warm headers, new -c |")
        print("|---|---:|---:|---:|")
        for label, cold, warm, new_ctx in results:
            print(f"| {label} | {cold[0]:.2f} s (load {cold[1]:.1f}) | {warm[0]:.2f} s (load {warm[1]:.1f}) | "
                  f"{new_ctx[0]:.2f} s (load {new_ctx[1]:.1f}) |")


if __name__ == "__main__":
    main()
