"""How llama_context sizes itself for a requested context: cells, sequences, streams, batches (pure).

Rules from llama.cpp's src/llama-context.cpp (n_ctx padded to 256 cells, n_batch = min(n_ctx, b),
n_ubatch = min(n_batch, ub), one KV stream per sequence unless unified) and src/llama-kv-cache-iswa.cpp
(the sliding-window cache's size).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ModelSpec, Settings

CTX_PAD = 256  # llama_context pads n_ctx (and n_ctx_seq) to 256 cells
DEFAULT_CTX = 8192


def pad(value: int, to: int = CTX_PAD) -> int:
    return (value + to - 1) // to * to


def default_ctx(spec: ModelSpec) -> int:
    """fitcheck's context when none is given: 8192, or the training context if smaller."""
    return min(DEFAULT_CTX, spec.n_ctx_train) if spec.n_ctx_train > 0 else DEFAULT_CTX


@dataclass(frozen=True)
class Context:
    ctx: int
    n_ctx: int
    n_ctx_seq: int
    n_seq: int
    n_stream: int  # KV streams: 1 when unified, else one per sequence
    n_batch: int
    n_ubatch: int

    @property
    def reserved_tokens(self) -> int:
        """llama.cpp rounds the reserved micro-batch up to a multiple of the sequences (graph_reserve)."""
        seqs = max(1, self.n_seq)
        return -(-self.n_ubatch // seqs) * seqs


def resolve_context(spec: ModelSpec, settings: Settings) -> Context:
    ctx = settings.ctx if settings.ctx else default_ctx(spec)
    n_seq = settings.parallel
    n_ctx = pad(ctx)
    if settings.kv_unified or n_seq == 1:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq, n_stream = pad(n_ctx // n_seq), n_seq
        n_ctx = n_ctx_seq * n_seq
    n_batch = min(n_ctx, settings.batch)
    return Context(ctx, n_ctx, n_ctx_seq, n_seq, n_stream, n_batch, min(n_batch, settings.ubatch))


def kv_cells(sliding: bool, c: Context, window: int, swa_full: bool) -> int:
    """Cells per stream for one layer's cache (llama_kv_cache_iswa sizes the sliding cache separately)."""
    if sliding and not swa_full:
        per_stream_window = window * (c.n_seq if c.n_stream == 1 else 1)
        return min(c.n_ctx_seq, pad(per_stream_window + c.n_ubatch))
    return c.n_ctx_seq
