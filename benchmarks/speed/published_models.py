"""The models of the published llama-bench rows, rebuilt as header-only GGUFs with their real shapes.

llama-bench names a model by architecture, size class and file type ("llama 7B Q4_0", 3.56 GiB, 6.74 B); each
entry here rebuilds that file's tensors (Llama-2-7B for "llama 7B", gpt-oss-20b/120b, Qwen3-30B-A3B) so the
rebuilt size can be checked against the published size column before a row is used.
"""

from __future__ import annotations

import sys
import tempfile
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from fitcheck.model import ModelSpec  # noqa: E402
from fitcheck.sources.gguf import load_local  # noqa: E402
from tests import gguf_builder  # noqa: E402

# quant -> (attention/ffn weight type, ffn_down and attn_v type, output type, token_embd type, file type id)
LLAMA2_TYPES = {"Q4_0": ("Q4_0", "Q4_0", "Q6_K", "Q4_0", 2), "Q8_0": ("Q8_0", "Q8_0", "Q8_0", "Q8_0", 7),
                "F16": ("F16", "F16", "F16", "F16", 1)}


def _load(name: str, arch: str, meta: dict, tensors: list) -> ModelSpec:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.gguf"
        gguf_builder.write_header_only(path, arch, meta, tensors)
        return load_local(str(path))


@cache
def model(published_model: str) -> ModelSpec | None:
    """The ModelSpec for a llama-bench model string, or None when fitcheck has no rebuilt shape for it."""
    text = published_model.replace("mostly ", "")
    if text.startswith("llama 7B "):
        quant = text.split()[-1]
        if quant not in LLAMA2_TYPES:
            return None
        w, down, out, embd, ftype = LLAMA2_TYPES[quant]
        meta, tensors = gguf_builder.llama_layout(
            n_layer=32, n_embd=4096, n_head=32, n_head_kv=32, n_ff=11008, n_vocab=32000, n_ctx_train=4096,
            weight_type=w, ffn_down_type=down, output_type=out, embd_type=embd, file_type=ftype,
            name=f"llama-2-7b {quant}", with_vocab=False)
        return _load(f"llama-2-7b-{quant}", "llama", meta, tensors)
    if text.startswith("gpt-oss 20B") or text.startswith("gpt-oss 120B"):
        big = "120B" in text
        meta, tensors = gguf_builder.moe_layout(
            arch="gpt-oss", n_layer=36 if big else 24, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64,
            n_expert=128 if big else 32, n_expert_used=4, n_ff_exp=2880, n_vocab=201088, n_ctx_train=131072,
            weight_type="F16", expert_type="MXFP4", output_type="F16", window=128, file_type=38,
            name=text)
        return _load("gpt-oss", "gpt-oss", meta, tensors)
    return None
