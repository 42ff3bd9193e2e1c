// fitcheck truth harness: load a (sparse, header-only) GGUF with llama.cpp and report, byte-exactly,
// what llama.cpp allocates for each requested context setting.
//
// usage: measure MODEL.gguf < settings.txt
//   each stdin line: ctx batch ubatch parallel kv_unified type_k type_v flash_attn(on|off|auto) swa_full embeddings
//                    [n_outputs_max n_outputs_max_per_seq]  (optional; llama-server's limits, 0 0 = the C API's)
// output (stdout): llama.cpp log lines, framed by "@@BEGIN <i>" / "@@END <i>", and one "@@JSON {...}" line per setting.
//
// Byte-exact figures come from llama.cpp itself: llama_get_memory_breakdown() (model / context / compute per
// buffer type) and the memory module's own tensors (K/V/R/S per cache), reached through the internal headers.
// The `#define private public` below only widens C++ access for reading; nothing in llama.cpp is patched.

#include <algorithm>
#include <array>
#include <atomic>
#include <bitset>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "ggml.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "llama.h"

#define private public
#define protected public
#include "llama-context.h"
#include "llama-kv-cache.h"
#include "llama-kv-cache-iswa.h"
#include "llama-memory-recurrent.h"
#include "llama-memory-hybrid.h"
#include "llama-memory-hybrid-iswa.h"
#include "llama-model.h"
#undef private
#undef protected
#include "llama-ext.h"
#include "../ggml/src/ggml-impl.h"  // struct ggml_cgraph, for the MEASURE_GRAPH dump of leafs

// keep INFO/WARN/ERROR lines (DEBUG is very chatty); CONT lines inherit the level of the line they continue
static void log_cb(ggml_log_level level, const char * text, void * /*user*/) {
    static ggml_log_level last = GGML_LOG_LEVEL_INFO;
    if (level != GGML_LOG_LEVEL_CONT) {
        last = level;
    }
    if (last == GGML_LOG_LEVEL_DEBUG && !getenv("MEASURE_DEBUG")) {
        return;
    }
    fputs(text, stdout);
}

static ggml_type parse_type(const std::string & s) {
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        const char * name = ggml_type_name((ggml_type) t);
        if (name && s == name) {
            return (ggml_type) t;
        }
    }
    throw std::runtime_error("unknown ggml type " + s);
}

static std::string kv_json(const char * tag, const llama_kv_cache * kv) {
    std::ostringstream o;
    size_t buf = 0;
    for (const auto & [buft, sz] : kv->memory_breakdown()) {
        buf += sz;
    }
    o << "{\"tag\":\"" << tag << "\",\"cells\":" << kv->get_size() << ",\"n_stream\":" << kv->get_n_stream()
      << ",\"n_swa\":" << kv->n_swa << ",\"swa_type\":" << (int) kv->swa_type << ",\"v_trans\":" << (kv->v_trans ? "true" : "false")
      << ",\"k_bytes\":" << kv->size_k_bytes() << ",\"v_bytes\":" << kv->size_v_bytes() << ",\"buffer_bytes\":" << buf
      << ",\"layers\":[";
    bool first = true;
    for (const auto & l : kv->layers) {
        if (!first) o << ",";
        first = false;
        o << "[" << l.il << "," << l.k->ne[0] << ",\"" << ggml_type_name(l.k->type) << "\",";
        if (l.v) {
            o << l.v->ne[0] << ",\"" << ggml_type_name(l.v->type) << "\"]";
        } else {
            o << "null,null]";
        }
    }
    o << "]}";
    return o.str();
}

static std::string rs_json(const llama_memory_recurrent * rs) {
    std::ostringstream o;
    size_t buf = 0;
    for (const auto & [buft, sz] : rs->memory_breakdown()) {
        buf += sz;
    }
    o << "{\"cells\":" << rs->size << ",\"r_bytes\":" << rs->size_r_bytes() << ",\"s_bytes\":" << rs->size_s_bytes()
      << ",\"p_bytes\":" << rs->size_p_bytes() << ",\"buffer_bytes\":" << buf << ",\"layers\":[";
    bool first = true;
    for (size_t il = 0; il < rs->r_l.size(); ++il) {
        if (!rs->r_l[il]) continue;
        if (!first) o << ",";
        first = false;
        o << "[" << il << "," << rs->r_l[il]->ne[0] << "," << rs->s_l[il]->ne[0] << "," << rs->r_l[il]->ne[1] << "]";
    }
    o << "]}";
    return o.str();
}

static std::string memory_json(llama_memory_i * mem) {
    if (!mem) {
        return "{\"type\":\"none\"}";
    }
    if (auto * m = dynamic_cast<llama_kv_cache_iswa *>(mem)) {
        return std::string("{\"type\":\"kv_iswa\",\"caches\":[") + kv_json("base", m->get_base()) + "," + kv_json("swa", m->get_swa()) + "]}";
    }
    if (auto * m = dynamic_cast<llama_kv_cache *>(mem)) {
        return std::string("{\"type\":\"kv\",\"caches\":[") + kv_json("base", m) + "]}";
    }
    if (auto * m = dynamic_cast<llama_memory_hybrid_iswa *>(mem)) {
        auto * a = m->get_mem_attn();
        return std::string("{\"type\":\"hybrid_iswa\",\"caches\":[") + kv_json("base", a->get_base()) + "," + kv_json("swa", a->get_swa()) +
               "],\"recurrent\":" + rs_json(m->get_mem_recr()) + "}";
    }
    if (auto * m = dynamic_cast<llama_memory_hybrid *>(mem)) {
        return std::string("{\"type\":\"hybrid\",\"caches\":[") + kv_json("base", m->get_mem_attn()) + "],\"recurrent\":" + rs_json(m->get_mem_recr()) + "}";
    }
    if (auto * m = dynamic_cast<llama_memory_recurrent *>(mem)) {
        return std::string("{\"type\":\"recurrent\",\"caches\":[],\"recurrent\":") + rs_json(m) + "}";
    }
    return "{\"type\":\"unknown\"}";
}

// MEASURE_GRAPH=1: re-reserve the worst-case prompt graph, let the scheduler place it, and print every tensor
// of the compute buffer (op, name, shape, bytes, offset) in graph order, so the peak can be traced to the
// tensors that make it up. Diagnostic only; the JSON figures above do not depend on it.
static void dump_graph(llama_context * ctx) {
    const uint32_t n_seqs   = ctx->cparams.n_seq_max;
    const uint32_t n_tokens = std::min(ctx->cparams.n_ctx, ctx->cparams.n_ubatch);
    auto mctx = ctx->memory ? ctx->memory->init_full() : nullptr;
    ggml_cgraph * gf = ctx->graph_reserve(n_tokens, n_seqs, std::min(n_tokens, ctx->cparams.n_outputs_max), mctx.get());
    if (!gf || !ggml_backend_sched_alloc_graph(ctx->sched.get(), gf)) {
        printf("@@GRAPH error\n");
        return;
    }
    // every tensor the graph touches: own = placed in the compute buffer (else weights, KV cache: external)
    auto show = [](const char * kind, int i, const ggml_tensor * t) {
        const bool own = t->buffer && ggml_backend_buffer_get_usage(t->buffer) == GGML_BACKEND_BUFFER_USAGE_COMPUTE;
        const char * base = own ? (const char *) ggml_backend_buffer_get_base(t->buffer) : (const char *) t->data;
        printf("@@T\t%s\t%d\t%s\t%s\t[%lld,%lld,%lld,%lld]\t%zu\t%zu\t%p\t%p\t%s\t%d\t%s\t[%zu,%zu,%zu,%zu]",
               kind, i, ggml_op_desc(t), t->name, (long long) t->ne[0], (long long) t->ne[1], (long long) t->ne[2],
               (long long) t->ne[3], ggml_nbytes(t), own ? (size_t) ((const char *) t->data - base) : 0,
               (const void *) t, (const void *) t->view_src, own ? "own" : "ext", (int) t->flags, ggml_type_name(t->type),
               t->nb[0], t->nb[1], t->nb[2], t->nb[3]);
        for (int s = 0; s < GGML_MAX_SRC; ++s) {
            if (t->src[s]) printf("\t%p", (const void *) t->src[s]);
        }
        printf("\n");
    };
    for (int i = 0; i < gf->n_leafs; ++i) show("leaf", i, gf->leafs[i]);
    for (int i = 0; i < ggml_graph_n_nodes(gf); ++i) show("node", i, ggml_graph_node(gf, i));
    printf("@@SIZE\t%zu\n", ggml_backend_sched_get_buffer_size(ctx->sched.get(), ctx->backends[0].get()));
    printf("@@GRAPH end\n");
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf < settings\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    llama_log_set(log_cb, nullptr);
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers    = 0;
    mp.load_mode       = LLAMA_LOAD_MODE_MMAP;
    mp.use_extra_bufts = false;  // no CPU weight repacking: the model buffer is the mmapped file range
    printf("@@BEGIN model\n");
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    printf("@@END model\n");
    if (!model) {
        printf("@@JSON {\"error\":\"model load failed\"}\n");
        return 1;
    }

    std::string line;
    int idx = 0;
    while (std::getline(std::cin, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream is(line);
        uint32_t n_ctx, n_batch, n_ubatch, n_par;
        int unified, swa_full, embd;
        std::string tk, tv, fa;
        is >> n_ctx >> n_batch >> n_ubatch >> n_par >> unified >> tk >> tv >> fa >> swa_full >> embd;
        uint32_t out_max = 0, out_per_seq = 0;
        if (!(is >> out_max >> out_per_seq)) {
            out_max = out_per_seq = 0;
        }

        llama_context_params cp = llama_context_default_params();
        cp.n_ctx      = n_ctx;
        cp.n_batch    = n_batch;
        cp.n_ubatch   = n_ubatch;
        cp.n_seq_max  = n_par;
        cp.kv_unified = unified != 0;
        cp.type_k     = parse_type(tk);
        cp.type_v     = parse_type(tv);
        cp.flash_attn_type = fa == "on" ? LLAMA_FLASH_ATTN_TYPE_ENABLED : fa == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED : LLAMA_FLASH_ATTN_TYPE_AUTO;
        cp.swa_full   = swa_full != 0;
        cp.embeddings = embd != 0;
        if (out_max > 0) {  // as tools/server/server-context.cpp sets them (server_output_limits)
            cp.n_outputs_max         = out_max;
            cp.n_outputs_max_per_seq = out_per_seq;
        }
        cp.n_threads = cp.n_threads_batch = 2;

        printf("@@BEGIN %d\n", idx);
        llama_context * ctx = llama_init_from_model(model, cp);
        printf("@@END %d\n", idx);
        if (!ctx) {
            printf("@@JSON {\"index\":%d,\"error\":\"context creation failed\"}\n", idx);
            ++idx;
            continue;
        }

        std::ostringstream o;
        size_t m_model = 0, m_ctx = 0, m_compute = 0;
        std::ostringstream bufts;
        bool first = true;
        for (const auto & [buft, d] : llama_get_memory_breakdown(ctx)) {
            m_model += d.model;
            m_ctx += d.context;
            m_compute += d.compute;
            if (!first) bufts << ",";
            first = false;
            bufts << "\"" << ggml_backend_buft_name(buft) << "\":{\"model\":" << d.model << ",\"context\":" << d.context
                  << ",\"compute\":" << d.compute << "}";
        }
        const size_t out_bytes = ctx->buf_output ? ggml_backend_buffer_get_size(ctx->buf_output.get()) : 0;
        o << "{\"index\":" << idx << ",\"n_ctx\":" << llama_n_ctx(ctx) << ",\"n_ctx_seq\":" << llama_n_ctx_seq(ctx)
          << ",\"n_batch\":" << llama_n_batch(ctx) << ",\"n_ubatch\":" << llama_n_ubatch(ctx) << ",\"n_seq_max\":" << llama_n_seq_max(ctx)
          << ",\"flash_attn\":" << (ctx->cparams.flash_attn ? "true" : "false")
          << ",\"n_outputs_max\":" << ctx->cparams.n_outputs_max << ",\"n_outputs_max_per_seq\":" << ctx->cparams.n_outputs_max_per_seq
          << ",\"n_vocab\":" << llama_vocab_n_tokens(llama_model_get_vocab(model))
          << ",\"model_bytes\":" << m_model << ",\"context_bytes\":" << m_ctx << ",\"compute_bytes\":" << m_compute
          << ",\"output_bytes\":" << out_bytes << ",\"by_buffer_type\":{" << bufts.str() << "}"
          << ",\"memory\":" << memory_json(ctx->memory.get()) << "}";
        printf("@@JSON %s\n", o.str().c_str());
        if (getenv("MEASURE_GRAPH")) {
            dump_graph(ctx);
        }
        llama_free(ctx);
        ++idx;
    }

    llama_model_free(model);
    llama_backend_free();
    return 0;
}
