"""Child process of `fitcheck --exact` with the llama_cpp module: one memory-fit pass, its log as JSON.

    python -m fitcheck.exact.worker REQUEST_JSON OUT_JSON

Run apart from fitcheck so that a llama.cpp abort (GGML_ASSERT) or hang is the child's, bounded by the parent's
timeout. Like llama.cpp's own --fit (common/fit.cpp), the model is loaded with no_alloc and no load mode: every
buffer is sized, none allocated, no weight read; `use_extra_bufts = false` keeps CPU repacking out of the
model figure. The log (every level) is captured through llama_log_set and read by the parent (exact/logread.py).
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any


def fit_pass(request: dict[str, Any]) -> dict[str, Any]:
    from llama_cpp import __version__ as module_version
    from llama_cpp import llama_cpp as lib

    lines: list[str] = []
    letters = {1: "D ", 2: "I ", 3: "W ", 4: "E "}  # ggml_log_level; CONT (5) continues the line before

    @lib.llama_log_callback
    def on_log(level: int, text: bytes, user: Any) -> None:
        lines.append(letters.get(level, "") + (text.decode("utf-8", errors="replace") if text else ""))

    lib.llama_log_set(on_log, ctypes.c_void_p(0))
    lib.llama_backend_init()
    build = (lib.llama_version() or b"").decode(errors="replace") if hasattr(lib, "llama_version") else ""
    version = f"llama-cpp-python {module_version}" + (f" (llama.cpp {build})" if build else "")
    result: dict[str, Any] = {"version": version, "gpu_offload": bool(lib.llama_supports_gpu_offload())}

    fields = {name for name, *_ in lib.llama_model_params._fields_}
    if not {"no_alloc", "use_extra_bufts", "load_mode"} <= fields:  # without them llama.cpp would allocate for real
        return {**result, "error": f"llama-cpp-python {module_version} has no memory-fit pass (no_alloc): "
                                   "fitcheck[exact] needs 0.3.36 or later", "log": ""}
    mp = lib.llama_model_default_params()
    mp.n_gpu_layers = int(request["n_gpu_layers"])
    mp.main_gpu = int(request["main_gpu"])
    mp.no_alloc = True
    mp.use_extra_bufts = False
    mp.load_mode = lib.LLAMA_LOAD_MODE_NONE
    model = lib.llama_model_load_from_file(request["model"].encode(), mp)
    if not model:
        return {**result, "error": "the model did not load", "log": "".join(lines)}
    try:
        cp = lib.llama_context_default_params()
        cp.n_ctx = int(request["n_ctx"])
        cp.n_batch = int(request["n_batch"])
        cp.n_ubatch = int(request["n_ubatch"])
        cp.n_seq_max = int(request["n_seq_max"])
        cp.kv_unified = bool(request["kv_unified"])
        cp.type_k = getattr(lib, "GGML_TYPE_" + request["type_k"].upper())
        cp.type_v = getattr(lib, "GGML_TYPE_" + request["type_v"].upper())
        cp.flash_attn_type = {"on": lib.LLAMA_FLASH_ATTN_TYPE_ENABLED, "off": lib.LLAMA_FLASH_ATTN_TYPE_DISABLED,
                              "auto": lib.LLAMA_FLASH_ATTN_TYPE_AUTO}[request["flash_attn"]]
        cp.swa_full = bool(request["swa_full"])
        cp.embeddings = bool(request["embeddings"])
        cp.offload_kqv = bool(request["offload_kqv"])
        cp.no_perf = True
        if request.get("n_outputs"):  # llama-server's output limits, where the module's struct has them
            cp.n_outputs_max, cp.n_outputs_max_per_seq = (int(x) for x in request["n_outputs"])
        ctx = lib.llama_init_from_model(model, cp)
        if not ctx:
            return {**result, "error": "llama.cpp could not create the context", "log": "".join(lines)}
        lib.llama_free(ctx)
        result["model_bytes"] = int(lib.llama_model_size(model))
    finally:
        lib.llama_model_free(model)
    return {**result, "log": "".join(lines)}


def main(argv: list[str]) -> int:
    request, out = json.loads(argv[1]), argv[2]
    try:
        answer = fit_pass(request)
    except Exception as exc:  # reported to the parent as data, not as a traceback
        answer = {"error": f"{type(exc).__name__}: {exc}", "log": "", "version": "llama_cpp"}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(answer, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
