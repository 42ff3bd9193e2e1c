"""Write examples/Llama-3-8B-Q4_K_M-header.gguf: the header of a Llama-3-8B Q4_K_M with no weights.

Shapes, types and the 128,256-token vocabulary follow the real file (Q4_K_M mixes Q6_K into half of
attn_v/ffn_down and the output); run `python examples/make_example.py` to rebuild it.
"""

from pathlib import Path

from fitcheck import synth

OUT = Path(__file__).with_name("Llama-3-8B-Q4_K_M-header.gguf")

if __name__ == "__main__":
    meta, tensors = synth.llama_layout(name="Meta-Llama-3-8B-Instruct (header only)", n_ctx_train=8192)
    full = synth.write_header_only(OUT, "llama", meta, tensors)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes; the complete file would be {full:,})")
