"""CPU time of parsing a tree's GGUF headers: the plain walk vs the shared-array rule (sources/shared_arrays.py).

Usage: python benchmarks/scan/parse.py TREE [N]   (TREE: from bench.py --keep; the first N model files, sorted)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    os.environ["FITCHECK_CACHE_DIR"] = tempfile.mkdtemp(prefix="fitcheck-parse-")  # empty: nothing recorded yet
    from fitcheck.sources import shared_arrays
    from fitcheck.sources.gguf_header import FileSource, parse_header

    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    files = sorted(p for p in Path(sys.argv[1]).rglob("*.gguf") if "mmproj" not in p.name)[:n]
    start = time.process_time()
    for p in files:
        with FileSource(str(p)) as source:
            parse_header(source, p.name)
    plain = time.process_time() - start
    start, shared = time.process_time(), 0
    for p in files:
        shared += bool(shared_arrays.parse_file(str(p)).shared)
    rule = time.process_time() - start
    print(f"{len(files)} files: plain walk {plain / len(files) * 1000:.1f} ms a file, shared-array rule "
          f"{rule / len(files) * 1000:.1f} ms a file (CPU); {shared} took a sibling's arrays")


if __name__ == "__main__":
    main()
