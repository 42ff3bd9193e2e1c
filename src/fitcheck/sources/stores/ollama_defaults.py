"""How Ollama itself runs a model, as llama.cpp settings, and the OLLAMA_* / PARAMETER lines that reproduce a plan.

Ollama (github.com/ollama/ollama at fb30760, v0.15.5 and later) starts llama-server with
`-c num_ctx×N -np N` (llm/llama_server.go), N = OLLAMA_NUM_PARALLEL (default 1; envconfig/config.go), one KV
type for K and V from OLLAMA_KV_CACHE_TYPE (default f16), flash attention from OLLAMA_FLASH_ATTENTION (unset:
auto) and `-b B -ub B`. num_ctx is the model's own (its params layer, a Modelfile `PARAMETER num_ctx`), else
OLLAMA_CONTEXT_LENGTH, else chosen by total VRAM (server/routes.go: < 23 GiB 4096, < 47 GiB 32768, else 262144;
older versions: 4096 from v0.6.7, 2048 before), at most the training context (llm/server.go). B is the
params' num_batch, else chosen by context (server/sched.go generationBatchForContext: 512 up to 4096, 1024 up
to 32768, 2048 above; 512 on CUDA with flash attention off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ...model import FlashAttn, GiB, Hardware, OllamaSetup, Report, Settings, Verdict
from .ollama import OllamaModel

SOURCE = "ollama fb30760"
_DEFAULT = Settings()


@dataclass(frozen=True)
class OllamaEnv:
    """The server's environment as envconfig reads it (invalid numbers fall back to the default; an
    unparsable boolean reads as true, as Go's envconfig.BoolWithDefault does)."""

    context_length: int = 0
    num_parallel: int = 1
    kv_cache_type: str = ""
    flash_attention: bool | None = None
    gpu_overhead: int = 0


def read_env(environ: Mapping[str, str]) -> OllamaEnv:
    def var(key: str) -> str:
        return environ.get(key, "").strip().strip("\"'").strip()

    def uint(key: str, default: int) -> int:
        text = var(key)
        return int(text) if text.isdigit() else default

    fa_text = var("OLLAMA_FLASH_ATTENTION").lower()
    flash = None if not fa_text else fa_text not in ("0", "f", "false")
    return OllamaEnv(uint("OLLAMA_CONTEXT_LENGTH", 0), max(1, uint("OLLAMA_NUM_PARALLEL", 1)),
                     var("OLLAMA_KV_CACHE_TYPE").lower(), flash, uint("OLLAMA_GPU_OVERHEAD", 0))


def vram_context(hardware: Hardware, env: OllamaEnv) -> int:
    """server/routes.go: the default num_ctx by total VRAM less OLLAMA_GPU_OVERHEAD per GPU."""
    total = sum(max(0, g.total_bytes - env.gpu_overhead) for g in hardware.gpus if g.remote is None)
    return 262144 if total >= 47 * GiB else 32768 if total >= 23 * GiB else 4096


def auto_batch(ctx_total: int, hardware: Hardware, flash_off: bool) -> int:
    """server/sched.go automaticGenerationBatch, before its own VRAM-headroom step-down."""
    cuda = [g for g in hardware.gpus if (g.backend or "cuda") == "cuda" and g.remote is None]
    if flash_off and cuda:
        small = any(min(g.total_bytes, g.free_bytes or g.total_bytes) <= 8 * GiB for g in cuda)
        return 256 if ctx_total > 4096 and small else 512
    return 2048 if ctx_total > 32768 else 1024 if ctx_total > 4096 else 512


def _param_int(params: Mapping[str, object], key: str) -> int | None:
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def apply(settings: Settings, model: OllamaModel, n_ctx_train: int, hardware: Hardware,
          env: OllamaEnv, given: frozenset[str] | None = None) -> tuple[Settings, tuple[str, ...]]:
    """Ollama's defaults for every option not given, and a note saying which were used and why. `given`: the
    Settings fields the user set (the command line knows); None (a library caller): a value equal to
    llama.cpp's default counts as not given."""
    def free(*names: str) -> bool:
        if given is not None:
            return not given & set(names)
        return all(getattr(settings, n) == getattr(_DEFAULT, n) for n in names)

    said: list[str] = []
    parallel = settings.parallel
    if free("parallel") and env.num_parallel != 1:
        parallel = env.num_parallel
        said.append(f"{parallel} slots (OLLAMA_NUM_PARALLEL)")
    ctx = settings.ctx
    if ctx is None:
        num_ctx = _param_int(model.params, "num_ctx")
        why = "the model's PARAMETER num_ctx"
        if num_ctx is None and env.context_length:
            num_ctx, why = env.context_length, "OLLAMA_CONTEXT_LENGTH"
        if num_ctx is None:
            vram = sum(g.total_bytes for g in hardware.gpus if g.remote is None)
            num_ctx, why = vram_context(hardware, env), f"Ollama's default for {vram / GiB:.0f} GiB of VRAM"
        if n_ctx_train and num_ctx > n_ctx_train:
            num_ctx, why = n_ctx_train, why + ", cut to the training context"
        ctx = num_ctx * parallel
        said.append(f"num_ctx {num_ctx:,} ({why})" + (f" × {parallel} slots" if parallel > 1 else ""))
    kv = (settings.cache_type_k, settings.cache_type_v)
    if free("cache_type_k", "cache_type_v") and env.kv_cache_type not in ("", "f16"):
        kv = (env.kv_cache_type, env.kv_cache_type)
        said.append(f"KV cache {env.kv_cache_type} (OLLAMA_KV_CACHE_TYPE)")
    flash = settings.flash_attn
    if free("flash_attn") and env.flash_attention is not None:
        flash = FlashAttn.ON if env.flash_attention else FlashAttn.OFF
        said.append(f"flash attention {flash} (OLLAMA_FLASH_ATTENTION)")
    batch, ubatch = settings.batch, settings.ubatch
    if free("batch", "ubatch"):
        batch = _param_int(model.params, "num_batch") or auto_batch(ctx, hardware, flash is FlashAttn.OFF)
        ubatch = batch
        said.append(f"-b/-ub {batch} (one size for both, by context; Ollama steps it down when its own VRAM "
                    "prediction leaves little headroom)")
    out = replace(settings, ctx=ctx, parallel=parallel, kv_unified=False, cache_type_k=kv[0], cache_type_v=kv[1],
                  flash_attn=flash, batch=batch, ubatch=ubatch)
    note = (f"ollama:{model.name}: planned as Ollama runs it ({SOURCE}: llama-server -c num_ctx×slots -np slots): "
            + ", ".join(said or ["the options given"]) + "; options given on the command line override these")
    return out, (note,)


def setup(report: Report, model: OllamaModel, hardware: Hardware, env: OllamaEnv) -> OllamaSetup:
    """The OLLAMA_* environment and Modelfile PARAMETER lines under which Ollama runs this plan."""
    s, needs, plan = report.settings, report.needs, report.plan
    seqs = 1 if s.kv_unified else max(1, s.parallel)
    envs: list[tuple[str, str]] = []
    params: list[tuple[str, str]] = [("num_ctx", str(needs.ctx // seqs))]
    notes: list[str] = []
    if s.parallel != 1:
        envs.append(("OLLAMA_NUM_PARALLEL", str(s.parallel)))
    if s.kv_unified:
        notes.append("Ollama has no unified KV cache option (it runs -np without --kv-unified)")
    if s.cache_type_k != s.cache_type_v:
        notes.append(f"Ollama sets one KV cache type for K and V (OLLAMA_KV_CACHE_TYPE), not {s.cache_type_k}/"
                     f"{s.cache_type_v}")
    elif s.cache_type_k != "f16":
        envs.append(("OLLAMA_KV_CACHE_TYPE", s.cache_type_k))
    if s.flash_attn is not FlashAttn.AUTO:
        envs.append(("OLLAMA_FLASH_ATTENTION", "1" if s.flash_attn is FlashAttn.ON else "0"))
    if s.batch != s.ubatch:
        notes.append(f"Ollama passes one batch size for -b and -ub (num_batch), not {s.batch}/{s.ubatch}")
    if s.batch != auto_batch(needs.ctx, hardware, s.flash_attn is FlashAttn.OFF):
        params.append(("num_batch", str(s.batch)))
    if plan.verdict in (Verdict.OFFLOAD, Verdict.CPU):
        params.append(("num_gpu", str(plan.gpu_layers)))
    if plan.n_cpu_moe:
        notes.append("Ollama has no --n-cpu-moe option: num_gpu places whole layers, and llama-server's own fit "
                     "decides the rest")
    return OllamaSetup(str(model.name), tuple(envs), tuple(params), tuple(notes))


@dataclass(frozen=True)
class Run:
    """One `ollama:` check: the settings Ollama would use, then the lines that reproduce the plan."""

    model: OllamaModel
    env: OllamaEnv
    hardware: Hardware
    settings: Settings
    notes: tuple[str, ...]

    def finish(self, report: Report) -> Report:
        lines = setup(report, self.model, self.hardware, self.env)
        notes = tuple(dict.fromkeys(self.notes + report.notes + lines.notes))
        return replace(report, ollama=lines, notes=notes)


def start(model: OllamaModel, n_ctx_train: int, settings: Settings, hardware: Hardware,
          environ: Mapping[str, str], given: frozenset[str] | None = None) -> Run:
    env = read_env(environ)
    out, notes = apply(settings, model, n_ctx_train, hardware, env, given)
    return Run(model, env, hardware, out, notes)
