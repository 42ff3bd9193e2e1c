"""Header-only side files for llama-server's extras: a vision projector, a LoRA adapter for the Llama-3-8B
layout, a small draft model. Their sizes are worked out by hand in tests/test_cli_command_line.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import gguf_builder as synth

MMPROJ_META = {
    "general.type": "mmproj",
    "clip.has_vision_encoder": True,
    "clip.vision.image_size": 224,
    "clip.vision.patch_size": 14,
    "clip.vision.embedding_length": 1024,
    "clip.vision.feed_forward_length": 4096,
    "clip.vision.attention.head_count": 16,
    "clip.vision.block_count": 2,
}
MMPROJ_TENSORS: list[synth.TensorSpec] = [("v.patch_embd.weight", [14, 14, 3, 1024], "F16")]
for _il in range(2):
    MMPROJ_TENSORS += [(f"v.blk.{_il}.attn_qkv.weight", [1024, 3072], "F16"),
                       (f"v.blk.{_il}.ffn_up.weight", [1024, 4096], "F16"),
                       (f"v.blk.{_il}.ffn_down.weight", [4096, 1024], "F16")]
MMPROJ_TENSORS.append(("mm.0.weight", [1024, 4096], "F16"))

LORA_RANK = 16
LORA_TENSORS: list[synth.TensorSpec] = []
for _il in range(32):  # attn_q (4096 -> 4096) and attn_v (4096 -> 1024) of every Llama-3-8B block
    LORA_TENSORS += [(f"blk.{_il}.attn_q.weight.lora_a", [4096, LORA_RANK], "F16"),
                     (f"blk.{_il}.attn_q.weight.lora_b", [LORA_RANK, 4096], "F16"),
                     (f"blk.{_il}.attn_v.weight.lora_a", [4096, LORA_RANK], "F16"),
                     (f"blk.{_il}.attn_v.weight.lora_b", [LORA_RANK, 1024], "F16")]


def draft_layout():
    """A 4-block llama in F16 with Llama-3's vocabulary (a draft must share the tokenizer)."""
    return synth.llama_layout(n_layer=4, n_embd=512, n_head=8, n_head_kv=8, n_ff=1024, weight_type="F16",
                              ffn_down_type="F16", output_type="F16", embd_type="F16", file_type=1,
                              name="draft-4l", with_vocab=False)


@pytest.fixture(scope="session")
def mmproj_path(gguf_dir: Path) -> Path:
    path = gguf_dir / "mmproj-test-f16.gguf"
    synth.write_header_only(path, "clip", MMPROJ_META, MMPROJ_TENSORS)
    return path


@pytest.fixture(scope="session")
def lora_path(gguf_dir: Path) -> Path:
    path = gguf_dir / "lora-test-f16.gguf"
    synth.write_header_only(path, "llama", {"general.type": "adapter", "adapter.type": "lora",
                                            "adapter.lora.alpha": 16.0}, LORA_TENSORS)
    return path


@pytest.fixture(scope="session")
def draft_path(make_gguf) -> Path:
    meta, tensors = draft_layout()
    return make_gguf("draft", "llama", meta, tensors)
