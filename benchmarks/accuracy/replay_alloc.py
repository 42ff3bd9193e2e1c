"""Check fitcheck.compute.galloc against llama.cpp: replay a dumped graph and compare every offset and the buffer size.

Usage: python benchmarks/accuracy/replay_alloc.py LAYOUT "ctx batch ubatch np unified tk tv fa swa_full emb"
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import graph_peak  # noqa: E402

from fitcheck.compute import galloc  # noqa: E402


def to_graph(ts: list[dict]) -> list[galloc.Tensor]:
    index = {t["id"]: k for k, t in enumerate(ts)}
    graph = []
    for t in ts:
        srcs = tuple(index[s] for s in t["srcs"] if s in index)
        graph.append(galloc.Tensor(op=t["op"], nbytes=t["size"], layout=(t["type"], t["shape"], t["nb"]), srcs=srcs,
                                   view_of=index.get(t["view"]) if t["view"] else None, own=t["own"],
                                   is_input=bool(t["flags"] & 1), is_output=bool(t["flags"] & 2),
                                   leaf=t["kind"] == "leaf", name=t["name"]))
    return graph


def main() -> None:
    ts, size = graph_peak.tensors(sys.argv[1], sys.argv[2], with_size=True)
    graph = to_graph(ts)
    offsets: dict[int, int] = {}
    sim = galloc.buffer_size(graph, offsets=offsets)
    bad = [(k, t) for k, t in enumerate(ts) if t["own"] and t["view"] is None and offsets.get(k) != t["off"]]
    print(f"llama.cpp {size} bytes, replay {sim} bytes, {len(bad)} offsets differ")
    for k, t in bad[:10]:
        print(f"  #{t['i']} {t['op']} {t['name']} llama.cpp @{t['off']} replay @{offsets.get(k)}")


if __name__ == "__main__":
    main()
