"""Write the example headers (real shapes and types, no weights):

- Llama-3-8B-Q4_K_M-header.gguf: Llama-3-8B Q4_K_M with its 128,256-token vocabulary;
- gpt-oss-120b-MXFP4-header.gguf: gpt-oss-120b (36 layers, 128 experts in MXFP4, 4 used, sliding window 128
  on every other layer), without a vocabulary to keep it small.

Run `python examples/make_example.py` to rebuild them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.gguf_builder: not shipped

from tests import gguf_builder as synth

HERE = Path(__file__).parent

if __name__ == "__main__":
    meta, tensors = synth.llama_layout(name="Meta-Llama-3-8B-Instruct (header only)", n_ctx_train=8192)
    examples = [("Llama-3-8B-Q4_K_M-header.gguf", "llama", meta, tensors)]
    meta, tensors = synth.moe_layout(arch="gpt-oss", n_layer=36, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64,
                                     n_expert=128, n_expert_used=4, n_ff_exp=2880, n_vocab=201088,
                                     n_ctx_train=131072, weight_type="Q8_0", expert_type="MXFP4",
                                     output_type="Q8_0", window=128, name="gpt-oss-120b (header only)",
                                     file_type=38)
    examples.append(("gpt-oss-120b-MXFP4-header.gguf", "gpt-oss", meta, tensors))
    for name, arch, meta, tensors in examples:
        out = HERE / name
        full = synth.write_header_only(out, arch, meta, tensors)
        print(f"wrote {out} ({out.stat().st_size:,} bytes; the complete file would be {full:,})")
