"""A pasted llama.cpp command line (`llama-server -m model.gguf -c 32k -ngl 99 --mmproj mmproj.gguf`) turned
into fitcheck's own options, so that exactly that command is evaluated (pure: strings in, strings out).

fitcheck's options use llama.cpp's spellings, so most flags pass through as they are. What differs:
- the model: `-m/--model PATH`, `-hf/--hf-repo org/repo[:QUANT]` (with `-hff/--hf-file FILE`), `-mu/--model-url URL`
  become fitcheck's reference (`PATH`, `hf:org/repo:QUANT`, `hf:org/repo/FILE`, `URL`);
- llama-server's defaults, which are not fitcheck's: without `-c` the context is the training context
  (common/arg.cpp: "-c, --ctx-size N ... default: 0, 0 = loaded from model"); without `-np` llama-server
  runs 4 slots with a unified KV cache (tools/server: n_parallel auto = 4, kv_unified = true); llama-cli runs
  one sequence;
- the old flag form of `-fa` (no value) means on;
- flags that change no allocation (sampling, server, threads, chat templates) are accepted and ignored; any
  other flag is an error that names it whole.
"""

from __future__ import annotations

from .errors import UsageError

BINARIES = ("llama-server", "llama-cli", "llama-mtmd-cli", "main", "server")

# llama.cpp spellings fitcheck takes as they are: flag -> takes a value
PASS_THROUGH: dict[str, bool] = {
    **dict.fromkeys(("-c", "--ctx-size", "-b", "--batch-size", "-ub", "--ubatch-size", "-np", "--parallel",
                     "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-ngl", "--gpu-layers", "--n-gpu-layers",
                     "--n-cpu-moe", "-ncmoe", "-ot", "--override-tensor", "-ts", "--tensor-split", "--mmproj",
                     "-md", "--model-draft", "-ngld", "--gpu-layers-draft", "--n-gpu-layers-draft", "-cd",
                     "--ctx-size-draft", "-ctkd", "--cache-type-k-draft", "-ctvd", "--cache-type-v-draft",
                     "--lora", "-sm", "--split-mode", "-mg", "--main-gpu", "-dev", "--device"), True),
    **dict.fromkeys(("-kvu", "--kv-unified", "--swa-full", "--embedding", "--embeddings", "--cpu-moe", "-cmoe",
                     "--no-mmproj-offload", "-nkvo", "--no-kv-offload", "--no-mmap", "--mlock"), False),
}

# flags that change no allocation: flag -> takes a value
IGNORED: dict[str, bool] = {
    **dict.fromkeys((
        "--host", "--port", "-t", "--threads", "-tb", "--threads-batch", "-td", "--threads-draft", "-tbd",
        "--threads-batch-draft", "--temp", "--top-k", "--top-p", "--min-p", "--typical", "--repeat-penalty",
        "--repeat-last-n", "--presence-penalty", "--frequency-penalty", "-n", "--n-predict", "-s", "--seed", "-a",
        "--alias", "--api-key", "--api-key-file", "--chat-template", "--chat-template-file", "--reasoning-format",
        "--reasoning-budget", "--cache-reuse", "--log-file", "-to", "--timeout", "--threads-http",
        "--slot-save-path", "--path", "--draft", "--draft-n", "--draft-max", "--draft-min", "--draft-n-min",
        "--draft-p-min", "-p", "--prompt", "-f", "--file", "--keep", "--numa", "--prio", "--poll", "-C",
        "--cpu-mask", "-sys", "--system-prompt", "--ssl-key-file", "--ssl-cert-file", "--grammar",
        "--grammar-file", "-j", "--json-schema", "--rope-scaling", "--rope-scale", "--rope-freq-base",
        "--rope-freq-scale", "--yarn-orig-ctx", "--yarn-ext-factor", "--yarn-attn-factor", "-lv", "--verbosity",
        "--log-verbosity", "--media-path", "--sleep-idle-seconds", "-sps", "--slot-prompt-similarity",
        "--spec-type", "--api-prefix", "--image", "--audio", "-r", "--reverse-prompt", "--samplers",
        "--sampling-seq", "--mirostat", "--dry-multiplier", "--xtc-probability", "--xtc-threshold",
        "--top-nsigma", "--embd-normalize", "--pooling", "-dt", "--defrag-thold", "--fit", "-fitt",
        "--fit-target", "--fit-ctx", "-fitc", "-hft", "--hf-token", "--jinja-kwargs"), True),
    **dict.fromkeys((
        "--jinja", "--no-jinja", "--metrics", "--slots", "--no-slots", "--props", "-cb", "--cont-batching",
        "-nocb", "--no-cont-batching", "--no-webui", "--webui", "-v", "--verbose", "--log-disable",
        "--log-colors", "--log-prefix", "--log-timestamps", "--no-warmup", "--check-tensors",
        "--no-context-shift", "--context-shift", "-i", "--interactive", "-cnv", "--conversation", "-no-cnv",
        "--no-conversation", "-st", "--single-turn", "--simple-io", "--no-display-prompt", "-e", "--escape",
        "--no-escape", "--special", "-sp", "--offline", "--ignore-eos", "--no-perf", "--reranking", "--rerank",
        "--color", "-mli", "--multiline-input", "--no-op-offload", "--direct-io"), False),
}
MODEL_FLAGS = ("-m", "--model", "-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-mu", "--model-url")


def is_pasted(ref: str | None) -> bool:
    """Whether the reference is the name of a llama.cpp program (a pasted command line)."""
    return ref is not None and ref.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".exe") in BINARIES


def translate(program: str, argv: list[str]) -> tuple[str, list[str]]:
    """(fitcheck's model reference, fitcheck's options) for `program argv...` as llama.cpp would run it."""
    server = "server" in program.replace("\\", "/").rsplit("/", 1)[-1]
    out: list[str] = []
    model: dict[str, str] = {}
    seen: set[str] = set()
    i = 0
    while i < len(argv):
        token = argv[i]
        flag, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        cursor = _Cursor(argv, i, flag, inline if eq else None)
        value = cursor.value

        if not flag.startswith("-") or flag == "-":
            raise UsageError(f"unexpected {token!r} in the pasted command", hint="options only, after the program")
        if flag in ("-fa", "--flash-attn"):
            nxt = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")  # -fa on|off|auto, or bare
            if nxt.lower() in ("on", "off", "auto", "1", "0", "true", "false"):
                value()
                state = {"1": "on", "true": "on", "0": "off", "false": "off"}.get(nxt.lower(), nxt.lower())
            else:
                state = "on"  # the old flag form
            out += ["-fa", state]
            seen.add("-fa")
        elif flag in MODEL_FLAGS:
            key = {"-m": "m", "--model": "m", "-hf": "hf", "-hfr": "hf", "--hf-repo": "hf", "-hff": "hff",
                   "--hf-file": "hff", "-mu": "mu", "--model-url": "mu"}[flag]
            model[key] = value()
        elif flag in ("-hfd", "-hfrd", "--hf-repo-draft"):  # the draft from the Hub
            out += ["-md", f"hf:{value()}"]
        elif flag == "--lora-scaled":
            out += ["--lora", value()]
            value()  # the scale changes no allocation
        elif flag == "--rpc":
            raise UsageError("the pasted command uses --rpc: fitcheck needs each server's memory",
                             hint="give it before --: fitcheck --rpc HOST:PORT=24G -- llama-server ...")
        elif flag in PASS_THROUGH:
            name = "--embedding" if flag == "--embeddings" else flag
            out += [name, value()] if PASS_THROUGH[flag] else [name]
            seen.add(_canonical(flag))
        elif flag in IGNORED:
            if IGNORED[flag]:
                value()
        else:
            raise UsageError(f"the pasted command has an option fitcheck does not know: {flag}",
                             hint="fitcheck evaluates llama.cpp options that change memory; report this one")
        i = cursor.i + 1
    ref = _model_ref(model)
    if "-c" not in seen:
        out += ["-c", "0"]  # llama.cpp: 0 = the training context
    if server and "-np" not in seen:
        out += ["-np", "4"] + ([] if "-kvu" in seen else ["--kv-unified"])
    return ref, out


class _Cursor:
    """One option's position; value() takes its value (inline after `=`, else the next word)."""

    def __init__(self, argv: list[str], i: int, flag: str, inline: str | None) -> None:
        self.argv, self.i, self.flag, self.inline = argv, i, flag, inline

    def value(self) -> str:
        if self.inline is not None:
            value, self.inline = self.inline, None
            return value
        if self.i + 1 >= len(self.argv):
            raise UsageError(f"the pasted command's {self.flag} needs a value")
        self.i += 1
        return self.argv[self.i]


_CANONICAL = {"--ctx-size": "-c", "--parallel": "-np", "--kv-unified": "-kvu"}


def _canonical(flag: str) -> str:
    return _CANONICAL.get(flag, flag)


def _model_ref(model: dict[str, str]) -> str:
    if "m" in model:
        return model["m"]
    if "hf" in model:
        repo = model["hf"]
        if "hff" in model:
            return f"hf:{repo.split(':', 1)[0]}/{model['hff']}"
        return f"hf:{repo}"
    if "mu" in model:
        return model["mu"]
    raise UsageError("the pasted command names no model", hint="it needs -m PATH, -hf org/repo[:QUANT] or -mu URL")


def check_flags(args: list[str], known: dict[str, bool]) -> None:
    """Refuse an option fitcheck does not have, naming it whole (before click splits `-nkvo` into `-n`)."""
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return
        if token.startswith("-") and len(token) > 1 and not _is_number(token):
            name = token.split("=", 1)[0] if token.startswith("--") else token
            if name not in known:
                raise UsageError(f"unknown option {name}", hint="fitcheck --help lists them; a llama.cpp command "
                                                                "goes after --: fitcheck -- llama-server ...")
            if known[name] and "=" not in token:
                i += 1  # its value
        i += 1


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def expand_pasted(args: list[str], known: dict[str, bool]) -> list[str]:
    """`[fitcheck options] [--] llama-server ARGS...` -> fitcheck options for that command line (`known`:
    fitcheck's option names -> whether each takes a value)."""
    i = 0
    while i < len(args):
        token = args[i]
        start = None
        if token == "--" and i + 1 < len(args) and is_pasted(args[i + 1]):
            start = i + 1
        elif not token.startswith("-") and is_pasted(token):
            start = i
        elif token == "--":
            return args
        if start is not None:
            tail, mine = _own_options(args[start + 1:], known)
            ref, pasted = translate(args[start], tail)
            own = _names(args[:i] + mine, known)
            clash = sorted(own & _names(pasted, known))
            if clash:
                raise UsageError(f"{clash[0]} is given both to fitcheck and in the pasted command",
                                 hint="keep it in the pasted command only")
            return [*args[:i], *mine, *pasted, "--", ref]
        if token.startswith("-") and known.get(token.split("=", 1)[0]) and "=" not in token:
            i += 1
        i += 1
    return args


def _own_options(tail: list[str], known: dict[str, bool]) -> tuple[list[str], list[str]]:
    """Split a pasted command's words into llama.cpp's and fitcheck's own options (--json, --vram 8G, ...:
    options llama.cpp does not have), so `fitcheck llama-server -m x.gguf --json` works too."""
    llama = {*PASS_THROUGH, *IGNORED, *MODEL_FLAGS, "-fa", "--flash-attn", "--lora-scaled", "--rpc", "-hfd", "-hfrd",
             "--hf-repo-draft"}
    theirs: list[str] = []
    mine: list[str] = []
    i = 0
    while i < len(tail):
        name = tail[i].split("=", 1)[0] if tail[i].startswith("--") else tail[i]
        if name in known and name not in llama:
            takes = known[name] and "=" not in tail[i]
            mine += tail[i:i + 2] if takes else tail[i:i + 1]
            i += 2 if takes else 1
        else:
            theirs.append(tail[i])
            i += 1
    return theirs, mine


def _names(args: list[str], known: dict[str, bool]) -> set[str]:
    """The options among args, each by its parameter's first spelling (so -c and --ctx clash)."""
    return {_ALIASES.get(a, a) for a in args if a.startswith("-") and a in known}


_ALIASES = {"--ctx": "-c", "--ctx-size": "-c", "--parallel": "-np", "--gpu-layers": "-ngl", "--n-gpu-layers": "-ngl",
            "--batch-size": "-b", "--ubatch-size": "-ub", "--cache-type-k": "-ctk", "--cache-type-v": "-ctv",
            "--flash-attn": "-fa", "--kv-unified": "-kvu", "--model-draft": "-md", "--split-mode": "-sm",
            "--main-gpu": "-mg", "--device": "-dev", "--tensor-split": "-ts", "--override-tensor": "-ot"}
