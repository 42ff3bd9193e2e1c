"""`fitcheck --exact` against a real llama.cpp: runs only where one is installed (the llama_cpp module, or
llama-fit-params on PATH / in $FITCHECK_LLAMA_CPP); skipped otherwise, so CI stays green without it.

A Hub file that was never downloaded: the loopback Hub serves a header-only GGUF as a 1.8 GB file, and
llama.cpp answers for it from a sparse copy that occupies no more than its header on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fitcheck.exact.engines import find_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import FakeHub

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(find_engine() is None, reason="no llama.cpp here (pip install 'fitcheck[exact]')")
SLACK = 64 * 1024  # a filesystem's last-block rounding


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    sys.path.insert(0, str(ROOT / "benchmarks" / "accuracy"))
    import layout_io

    folder = tmp_path_factory.mktemp("exact-hub")
    header = folder / "Llama-3.1-8B-shaped-Q4_K_M.gguf"  # the layout of Llama 3.1 8B's first 8 blocks
    full = layout_io.write_gguf(layout_io.load_layout(ROOT / "benchmarks/accuracy/layouts/llama-3.1-8b.json"),
                                header, sparse=False)
    with FakeHub() as h:
        h.add_file("org/Llama-GGUF", header.name, header, size=full)
        yield h


def fitcheck(hub: FakeHub, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(cache / "hf"), FITCHECK_CACHE_DIR=str(cache / "fitcheck"),
               NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "fitcheck", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_hub_model_never_downloaded(hub, tmp_path):
    out = fitcheck(hub, tmp_path, "hf:org/Llama-GGUF:Q4_K_M", "--cpu-only", "--ram", "64G", "-c", "8192",
                   "--exact", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    exact, memory = doc["exact"], doc["memory"]
    assert exact["engine"].startswith(("llama-cpp-python", "llama-fit-params"))
    copy = exact["sparse_copy"]
    assert copy["size_bytes"] == doc["model"]["size_bytes"] > 1_000_000_000
    assert copy["disk_bytes"] <= copy["header_bytes"] + SLACK  # the header, never the weights
    assert sum(r.body_bytes for r in hub.requests) < 3 * copy["header_bytes"]  # headers only crossed the link
    # llama.cpp's own figures for the same settings: the KV cache is exact, the rest within llama.cpp's rounding
    res = exact["resolution_bytes"]
    assert exact["memory"]["kv_cache_bytes"] == pytest.approx(memory["kv_cache_bytes"], abs=res["kv_cache_bytes"])
    assert exact["memory"]["weights_bytes"] == pytest.approx(memory["weights_bytes"], abs=res["weights_bytes"] + 1)
    assert exact["memory"]["output_bytes"] == pytest.approx(memory["output_bytes"], abs=res["output_bytes"])
    assert exact["memory"]["compute_bytes"] > 0
    text = fitcheck(hub, tmp_path, "hf:org/Llama-GGUF:Q4_K_M", "--cpu-only", "--ram", "64G", "-c", "8192", "--exact")
    assert text.returncode == 0, text.stderr
    assert "Estimate vs llama.cpp" in text.stdout and "header-only sparse copy" in text.stdout
