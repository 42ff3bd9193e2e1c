"""Compare fitcheck.compute.graph' rebuilt graph with llama.cpp's own: node by node, and the buffer both need.

Usage: python benchmarks/accuracy/check_graphs.py LAYOUT "ctx batch ubatch np unified tk tv fa swa_full emb"
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import fit_compute  # noqa: E402
import graph_peak  # noqa: E402
import replay_alloc  # noqa: E402

from fitcheck import compute  # noqa: E402
from fitcheck.compute import galloc  # noqa: E402
from fitcheck.model import Settings  # noqa: E402


def settings_of(line: str) -> Settings:
    ctx, batch, ub, np_, uni, tk, tv, fa, swa_full, emb = line.split()
    return Settings(ctx=int(ctx), batch=int(batch), ubatch=int(ub), parallel=int(np_), kv_unified=uni == "1",
                    cache_type_k=tk, cache_type_v=tv, flash_attn=fa, swa_full=swa_full == "1", embeddings=emb == "1",
                    consumer="library")


def main() -> None:
    spec = fit_compute.layout_specs()[sys.argv[1]]
    settings = settings_of(sys.argv[2])
    c, flash_attn, kinds = fit_compute.context_of(spec, settings)
    graph = compute.build_graph(spec, c, settings, flash_attn, kinds)
    mine = [(n.op, list(n.ne)) for n in graph.nodes if n.own]
    ts, size = graph_peak.tensors(sys.argv[1], sys.argv[2], with_size=True)
    theirs = [(t["op"], [int(x) for x in t["shape"][1:-1].split(",")], t["name"]) for t in ts
              if t["kind"] == "node" and t["own"]]
    print(f"llama.cpp {size} bytes, fitcheck {graph.buffer_size()} bytes ({graph.buffer_size() / size - 1:+.4f}); "
          f"own nodes {len(theirs)} vs {len(mine)}")
    off_theirs: dict[int, int] = {}
    galloc.buffer_size(replay_alloc.to_graph(ts), offsets=off_theirs)
    theirs_own = [(t, off_theirs.get(k)) for k, t in enumerate(ts) if t["kind"] == "node" and t["own"]]
    mine_t = graph.tensors()
    off_mine: dict[int, int] = {}
    galloc.buffer_size(mine_t, offsets=off_mine)
    mine_own = [(t, off_mine.get(k)) for k, t in enumerate(mine_t) if not t.leaf and t.own]
    for (a, oa), (b, ob) in zip(theirs_own, mine_own, strict=False):
        if oa != ob:
            print(f"first offset difference: llama.cpp {a['op']} {a['name']} {a['shape']} {a['nb']} @{oa}  "
                  f"fitcheck {b.op} {b.layout} @{ob}")
            break
    for k, (a, b) in enumerate(zip(theirs, mine, strict=False)):
        if (a[0], a[1]) != b:
            print(f"first difference at own node {k}:")
            for j in range(max(0, k - 3), min(k + 4, len(theirs))):
                print(f"  llama.cpp {theirs[j]}   fitcheck {mine[j] if j < len(mine) else None}")
            break


if __name__ == "__main__":
    main()
