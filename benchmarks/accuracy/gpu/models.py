"""The published models the GPU logs ran, as shapes (quant_mix.Model) with where each shape comes from.

Each entry is a model's config.json (hidden_size, num_hidden_layers, num_attention_heads,
num_key_value_heads, head_dim, intermediate_size, vocab_size, tie_word_embeddings, MoE sizes); the same
numbers are printed by llama.cpp's print_info lines in the logs that show them. A row of logs.yaml names
one entry and a file type; quant_mix rebuilds the file's tensor list from them.
"""

from __future__ import annotations

from quant_mix import Model

MODELS: dict[str, tuple[Model, str]] = {
    # meta-llama/Meta-Llama-3-8B-Instruct config.json; Llama-3.1/DeepSeek-R1-Distill-Llama-8B add rope_freqs
    "llama-3-8b": (Model("llama", 32, 4096, 32, 8, 14336, 128256, ctx_train=8192, rope_base=500000.0),
                   "https://huggingface.co/meta-llama/Meta-Llama-3-8B-Instruct/blob/main/config.json"),
    "llama-3.1-8b": (Model("llama", 32, 4096, 32, 8, 14336, 128256, rope_freqs=True, ctx_train=131072,
                           rope_base=500000.0),
                     "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json"),
    "llama-3.2-3b": (Model("llama", 28, 3072, 24, 8, 8192, 128256, head_dim=128, tied=True, rope_freqs=True,
                           ctx_train=131072, rope_base=500000.0),
                     "https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct/blob/main/config.json"),
    "qwen2.5-7b": (Model("qwen2", 28, 3584, 28, 4, 18944, 152064, ctx_train=32768, rope_base=1000000.0),
                   "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json"),
    "qwen2.5-0.5b": (Model("qwen2", 24, 896, 14, 2, 4864, 151936, tied=True, ctx_train=32768,
                           rope_base=1000000.0),
                     "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/blob/main/config.json"),
    "qwen3-8b": (Model("qwen3", 36, 4096, 32, 8, 12288, 151936, head_dim=128, ctx_train=40960,
                       rope_base=1000000.0),
                 "https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json"),
    "qwen3-4b": (Model("qwen3", 36, 2560, 32, 8, 9728, 151936, head_dim=128, tied=True, ctx_train=40960,
                       rope_base=1000000.0),
                 "https://huggingface.co/Qwen/Qwen3-4B/blob/main/config.json"),
    "qwen3-14b": (Model("qwen3", 40, 5120, 40, 8, 17408, 151936, head_dim=128, ctx_train=40960,
                        rope_base=1000000.0),
                  "https://huggingface.co/Qwen/Qwen3-14B/blob/main/config.json"),
    "qwen3-30b-a3b": (Model("qwen3moe", 48, 2048, 32, 4, 6144, 151936, head_dim=128, n_expert=128, n_ff_exp=768,
                            ctx_train=40960, rope_base=1000000.0, extra_meta={"n_expert_used": 8}),
                      "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json"),
    "mistral-7b-v0.3": (Model("llama", 32, 4096, 32, 8, 14336, 32768, ctx_train=32768, rope_base=1000000.0),
                        "https://huggingface.co/mistralai/Mistral-7B-Instruct-v0.3/blob/main/config.json"),
    # EleutherAI/pythia-2.8b config.json (GPTNeoXForCausalLM, float16, rotary_pct 0.25 -> n_rot 20, vocab padded
    # to 50304); ggml-org/ci converts it from the HF checkpoint for its CUDA/Vulkan runs
    "pythia-2.8b": (Model("gptneox", 32, 2560, 32, 32, 10240, 50304, src_type="F16", ctx_train=2048,
                          extra_meta={"gptneox.rope.dimension_count": 20}),
                    "https://huggingface.co/EleutherAI/pythia-2.8b/blob/main/config.json"),
    # Qwen/Qwen2.5-1.5B-Instruct, Qwen2.5-14B-Instruct and Qwen3-32B config.json (qwen2: q/k/v biases; the 1.5B ties
    # its embeddings); their Q4_K_M buffers (934.69 / 8148.38 + 417.66 / 18423.65 + 417.30 MiB) match public logs
    "qwen2.5-1.5b": (Model("qwen2", 28, 1536, 12, 2, 8960, 151936, tied=True, ctx_train=32768, rope_base=1000000.0),
                     "https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct/blob/main/config.json"),
    "qwen2.5-14b": (Model("qwen2", 48, 5120, 40, 8, 13824, 152064, ctx_train=32768, rope_base=1000000.0),
                    "https://huggingface.co/Qwen/Qwen2.5-14B-Instruct/blob/main/config.json"),
    "qwen3-32b": (Model("qwen3", 64, 5120, 64, 8, 25600, 151936, head_dim=128, ctx_train=40960,
                        rope_base=1000000.0),
                  "https://huggingface.co/Qwen/Qwen3-32B/blob/main/config.json"),
}
