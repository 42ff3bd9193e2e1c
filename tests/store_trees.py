"""Fake model stores with real GGUF headers (written by tests.gguf_builder): an Ollama models folder, an LM Studio
models folder, a Hugging Face cache and llama.cpp's flat cache, laid out as those programs lay them out."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from tests import gguf_builder as synth


def small_model(path: Path, *, n_layer: int = 4, n_embd: int = 512, name: str = "tiny-llama",
                n_vocab: int = 2048, n_ctx_train: int = 32768, weight_type: str = "Q4_K",
                file_type: int = 15) -> Path:
    """A small llama-shaped header-only GGUF (fast to write, realistic structure)."""
    meta, tensors = synth.llama_layout(n_layer=n_layer, n_embd=n_embd, n_head=8, n_head_kv=4, n_ff=1024,
                                       n_vocab=n_vocab, n_ctx_train=n_ctx_train, name=name,
                                       weight_type=weight_type, embd_type=weight_type, file_type=file_type)
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_header_only(path, "llama", meta, tensors)
    return path


def projector(path: Path) -> Path:
    """A small clip projector header (general.architecture = clip)."""
    meta = {"general.name": "tiny-mmproj", "clip.has_vision_encoder": True, "clip.vision.embedding_length": 64,
            "clip.vision.block_count": 2, "clip.vision.image_size": 224, "clip.vision.patch_size": 14,
            "clip.vision.feed_forward_length": 128, "clip.vision.attention.head_count": 2,
            "clip.vision.projection_dim": 512}
    tensors = [("v.patch_embd.weight", [14, 14, 3, 64], "F16"), ("mm.0.weight", [64, 512], "F16")]
    path.parent.mkdir(parents=True, exist_ok=True)
    synth.write_header_only(path, "clip", meta, tensors)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ollama_blob(root: Path, source: Path | bytes) -> str:
    """Copy a file (or bytes) into Ollama's blobs as sha256-HEX; return the digest `sha256:HEX`."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    hexd = hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / f"sha256-{hexd}").write_bytes(data)
    return f"sha256:{hexd}"


def ollama_model(root: Path, name: str, tag: str, gguf: Path, *, params: dict[str, Any] | None = None,
                 projector_path: Path | None = None, host: str = "registry.ollama.ai",
                 namespace: str = "library", copy_blob: bool = True) -> Path:
    """A manifest (and its blobs) the way `ollama pull` leaves it; returns the manifest's path."""
    digest = ollama_blob(root, gguf) if copy_blob else f"sha256:{_digest(gguf)}"
    layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": gguf.stat().st_size}]
    if projector_path is not None:
        layers.append({"mediaType": "application/vnd.ollama.image.projector",
                       "digest": ollama_blob(root, projector_path), "size": projector_path.stat().st_size})
    layers.append({"mediaType": "application/vnd.ollama.image.template",
                   "digest": ollama_blob(root, b"{{ .Prompt }}"), "size": 13})
    if params is not None:
        body = json.dumps(params).encode()
        layers.append({"mediaType": "application/vnd.ollama.image.params", "digest": ollama_blob(root, body),
                       "size": len(body)})
    config = json.dumps({"model_format": "gguf"}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": ollama_blob(root, config), "size": len(config)},
                "layers": layers}
    path = root / "manifests" / host / namespace / name / tag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return path


def hf_cache_repo(cache: Path, repo: str, files: dict[str, Path], *, commit: str = "a" * 40,
                  ref: str | None = "main") -> Path:
    """models--org--repo with blobs/, snapshots/COMMIT/ symlinks into them and refs/main, as
    huggingface_hub (and llama.cpp's -hf) write them; returns the snapshot folder."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / commit
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    for rel, source in files.items():
        blob = folder / "blobs" / _digest(source)
        if not blob.exists():
            shutil.copyfile(source, blob)
        target = snapshot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, target.parent), target)
    if ref is not None:
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    return snapshot


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under root (links not followed): (size, mtime_ns, link target or content digest); a scan
    must leave it exactly as it was."""
    state: dict[str, tuple[int, int, str]] = {}
    for base, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(base, n)
            st = os.lstat(p)
            if os.path.islink(p):
                what = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                what = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            else:
                what = "dir"
            state[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, what)
    return state


def isolate(tmp_path: Path, monkeypatch: Any) -> Path:
    """Every store's environment variable (and HOME) under tmp_path, none of the user's; the Hub unreachable."""
    for var, sub in (("OLLAMA_MODELS", "ollama"), ("LMSTUDIO_MODELS", "lms"), ("HF_HUB_CACHE", "hf"),
                     ("LLAMA_CACHE", "llama.cpp"), ("HOME", "home")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    for var in ("OLLAMA_CONTEXT_LENGTH", "OLLAMA_NUM_PARALLEL", "OLLAMA_KV_CACHE_TYPE", "OLLAMA_FLASH_ATTENTION",
                "HF_HOME", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any request would fail
    return tmp_path


def model_files(src: Path) -> dict[str, Path]:
    return {"tiny": small_model(src / "tiny.gguf"),
            "tiny_q8": small_model(src / "tiny-q8.gguf", weight_type="Q8_0", file_type=7, name="tiny-q8"),
            "mmproj": projector(src / "mmproj.gguf")}
