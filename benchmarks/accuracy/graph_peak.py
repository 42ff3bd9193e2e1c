"""Trace a measured compute buffer to the tensors that make up its peak (a study aid for fit_compute.py).

Writes one layout as a sparse GGUF, runs measure with MEASURE_GRAPH=1 for one setting, and prints the buffer
size, the tensor that ends highest in it, and every tensor alive when that tensor was placed.
Usage: python benchmarks/accuracy/graph_peak.py LAYOUT "ctx batch ubatch np unified tk tv fa swa_full emb" [--all]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import layout_io  # noqa: E402

MEASURE = HERE / "work" / "measure"


def tensors(layout_name: str, setting: str, with_size: bool = False):
    layout = next(layout_io.load_layout(p) for p in layout_io.layout_paths() if p.stem == layout_name)
    with tempfile.TemporaryDirectory(dir=HERE / "work") as tmp:
        gguf = Path(tmp) / "m.gguf"
        layout_io.write_gguf(layout, gguf)
        proc = subprocess.run([str(MEASURE), str(gguf)], input=setting + "\n", capture_output=True, text=True,
                              env={**os.environ, "MEASURE_GRAPH": "1", "OMP_NUM_THREADS": "2"}, check=True)
    out, size = [], 0
    for line in proc.stdout.splitlines():
        if line.startswith("@@SIZE\t"):
            size = int(line.split("\t")[1])
        if not line.startswith("@@T\t"):
            continue
        parts = line.split("\t")
        kind, idx, op, name, shape, size, off, ident, view, own, flags, dtype, nb = parts[1:14]
        out.append({"kind": kind, "i": int(idx) if kind == "node" else -1, "op": op, "name": name, "shape": shape,
                    "size": int(size), "off": int(off), "id": ident, "view": None if view == "(nil)" else view,
                    "own": own == "own", "flags": int(flags), "type": dtype, "nb": nb, "srcs": parts[14:]})
    return (out, size) if with_size else out


def main() -> None:
    ts = tensors(sys.argv[1], sys.argv[2])
    owners = [t for t in ts if t["view"] is None and t["own"]]
    last_use: dict[str, int] = {}
    by_id = {t["id"]: t for t in ts}
    for t in ts:
        for s in t["srcs"] + ([t["view"]] if t["view"] else []):
            root = s
            while root in by_id and by_id[root]["view"]:
                root = by_id[root]["view"]
            last_use[root] = max(last_use.get(root, -1), t["i"])
    end = max(t["off"] + t["size"] for t in owners)
    top = max(owners, key=lambda t: t["off"] + t["size"])
    print(f"buffer >= {end / 2**20:.2f} MiB; highest: #{top['i']} {top['op']} {top['name']} {top['shape']}")
    alive = [t for t in owners if t["i"] <= top["i"] <= max(last_use.get(t["id"], t["i"]), t["i"])]
    for t in sorted(alive, key=lambda t: t["off"]):
        print(f"  {t['off'] / 2**20:9.2f} +{t['size'] / 2**20:8.2f} MiB  #{t['i']:4d} {t['op']:12s} {t['name']} {t['shape']}")
    if "--all" in sys.argv:
        for t in (t for t in ts if t["own"]):
            print(f"  #{t['i']:4d} {t['op']:12s} {t['name']:28s} {t['shape']:28s} {t['size'] / 2**20:8.2f} "
                  f"@{t['off'] / 2**20:8.2f} {'view' if t['view'] else ''} <{','.join(by_id[s]['name'] if s in by_id else '(w)' for s in t['srcs'])}")


if __name__ == "__main__":
    main()
