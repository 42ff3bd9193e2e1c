"""A fake Hugging Face Hub: a real HTTP server on 127.0.0.1 that huggingface_hub's own client talks to.

It implements the parts of the Hub that fitcheck uses, with the Hub's status codes and headers:
- `GET /api/models/{repo}[/revision/{rev}]` (model_info, `?blobs=True` for sizes and LFS hashes),
- `GET /api/models?search=&filter=&sort=&limit=` (list_models: the search, newest-first or most-first as the Hub
  sorts, paginated with a `Link: <...>; rel="next"` header every `page_size` repos; private repos only with access),
- `HEAD|GET /{repo}/resolve/{rev}/{path}` with ETag / X-Linked-Etag / X-Linked-Size / X-Repo-Commit, Range (206,
  416) or, in no-Range mode, the whole file (200); LFS files can redirect to a second host name (`localhost`,
  like the Hub's CDN) that must not receive the Authorization header,
- auth: unknown tokens get 401 "Invalid credentials", private repos 401 RepoNotFound, gated repos 401/403
  GatedRepo without access; injected 500s and slow responses per path,
- a wide-area link (`rtt_s`, `bandwidth_bps`, `handshake_rtts`): every answer waits one round trip, every new
  connection `handshake_rtts` more (TCP, and TLS where the stand-in should count it), and all bodies share one
  link of `bandwidth_bps` (bits per second), as a user's downlink does.
Files are header-only GGUFs served as their complete size: the bytes past the stored header read as zeros.
Every request is logged, and body bytes sent are counted per file, for tests and the benchmark.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

CHUNK = 1 << 16
TOKEN = "hf_goodtoken123456"  # the one token the demo hub accepts for org/gated and org/private
TINY_QUANTS = {"Q2_K": ("Q2_K", "Q3_K", 10), "Q4_K_M": ("Q4_K", "Q6_K", 15), "Q8_0": ("Q8_0", "Q8_0", 7)}


@dataclass
class HubFile:
    data: bytes  # the stored bytes (a header-only GGUF, a JSON file, ...)
    size: int  # the size the file has on the Hub (>= len(data); the rest reads as zeros)
    lfs: bool = True

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data + self.size.to_bytes(8, "little")).hexdigest()

    @cached_property
    def blob_id(self) -> str:
        return hashlib.sha1(self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    def chunk(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the virtual file."""
        stored = self.data[start:min(end, len(self.data))]
        return stored + b"\0" * (end - start - len(stored))


@dataclass
class HubRepo:
    files: dict[str, HubFile] = field(default_factory=dict)
    private: bool = False
    gated: bool = False
    revisions: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit sha
    downloads: int = 0  # what the search endpoint reports and sorts by
    likes: int = 0
    trending_score: int = 0
    created_at: str = "2025-01-01T00:00:00.000Z"
    last_modified: str = "2025-01-01T00:00:00.000Z"
    tags: list[str] = field(default_factory=list)  # besides "gguf", which a repo with a .gguf file gets

    def all_tags(self) -> list[str]:
        has_gguf = any(p.lower().endswith(".gguf") for p in self.files)
        return self.tags + (["gguf"] if has_gguf and "gguf" not in self.tags else [])

    @property
    def sha(self) -> str:
        digest = hashlib.sha1()
        for path in sorted(self.files):
            digest.update(path.encode() + self.files[path].etag.encode())
        return digest.hexdigest()


@dataclass
class Request:
    method: str
    host: str
    path: str
    range: str | None
    authorization: str | None
    status: int = 0
    body_bytes: int = 0
    started: float = 0.0  # time.perf_counter() when the request arrived, and when its answer was sent
    finished: float = 0.0


class FakeHub:
    """`with FakeHub() as hub: hub.add_file("org/repo", "x.gguf", path_or_bytes, size=...)`; hub.endpoint."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.tokens: dict[str, set[str]] = {}  # token -> gated repos it has access to (private: same set)
        self.redirect_lfs = False  # LFS files: 302 to http://localhost:{port}/cdn/...
        self.no_range = False  # ignore Range headers (200 + whole file)
        self.fail: dict[str, int] = {}  # path substring -> status to answer with
        self.fail_times: dict[str, tuple[int, int]] = {}  # path substring -> (status, how many times)
        self.delay: dict[str, float] = {}  # path substring -> seconds to wait before answering
        self.rtt_s = 0.0  # round-trip time added to every answer
        self.bandwidth_bps: float | None = None  # the shared downlink, bits per second (None: unlimited)
        self.handshake_rtts = 1  # round trips to open a connection (1: TCP; 2: TCP + TLS 1.3)
        self.page_size = 1000  # repos per page of the search endpoint (the Hub pages with a Link header)
        self.connections = 0  # connections accepted
        self._link_free = 0.0  # when the emulated link has sent everything queued so far
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- content -----------------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, *, private: bool = False, gated: bool = False) -> HubRepo:
        repo = self.repos.setdefault(repo_id, HubRepo())
        repo.private, repo.gated = private, gated
        return repo

    def add_file(self, repo_id: str, path: str, content: bytes | str | Path, *, size: int | None = None,
                 lfs: bool | None = None) -> HubFile:
        if isinstance(content, Path):
            content = content.read_bytes()
        elif isinstance(content, str):
            content = content.encode()
        entry = HubFile(content, max(size or 0, len(content)),
                        lfs if lfs is not None else not path.endswith((".json", ".md", ".txt")))
        self.repos.setdefault(repo_id, HubRepo()).files[path] = entry
        return entry

    # -- counters ----------------------------------------------------------------------------------------
    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.connections = 0

    def set_link(self, rtt_s: float = 0.0, bandwidth_bps: float | None = None, handshake_rtts: int = 1) -> None:
        """Emulate a wide-area link: `set_link(0.05, 100e6)` is 50 ms and 100 Mbit/s; `set_link()` is loopback."""
        self.rtt_s, self.bandwidth_bps, self.handshake_rtts = rtt_s, bandwidth_bps, handshake_rtts

    def _transmit(self, n: int) -> None:
        """Wait until `n` more body bytes have crossed the shared link."""
        if not self.bandwidth_bps or n <= 0:
            return
        with self._lock:
            now = time.perf_counter()
            start = max(now, self._link_free)
            self._link_free = start + n * 8 / self.bandwidth_bps
            done = self._link_free
        time.sleep(max(0.0, done - time.perf_counter()))

    def file_requests(self, path: str) -> list[Request]:
        """Requests whose URL ends with this repo path (resolve and CDN), HEAD included."""
        return [r for r in self.requests if r.path.split("?")[0].endswith("/" + path)]

    def bytes_sent(self, path: str | None = None) -> int:
        reqs = self.requests if path is None else self.file_requests(path)
        return sum(r.body_bytes for r in reqs)

    # -- server ------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_SEARCH = re.compile(r"^/api/models/?$")
# the Hub's sort keys (as list_models sends them) -> HubRepo fields
_SORT_KEYS = {"downloads": "downloads", "likes": "likes", "trendingScore": "trending_score",
              "lastModified": "last_modified", "createdAt": "created_at"}
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?/?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<sha>[0-9a-f]+)/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"  # keep-alive, as the real Hub
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def handle(self) -> None:  # one call per connection: the emulated handshake
        with self.hub._lock:
            self.hub.connections += 1
        if self.hub.rtt_s:
            time.sleep(self.hub.rtt_s * self.hub.handshake_rtts)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that ended a streamed read
            super().handle()

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    # -- plumbing ----------------------------------------------------------------------------------------
    def _handle(self, head: bool) -> None:
        hub = self.hub
        rec = Request(self.command, self.headers.get("Host", ""), self.path, self.headers.get("Range"),
                      self.headers.get("Authorization"), started=time.perf_counter())
        with hub._lock:
            hub.requests.append(rec)
        self._rec, self._head = rec, head
        if hub.rtt_s:
            time.sleep(hub.rtt_s)  # the request's way there and the answer's first byte back
        for key, seconds in list(hub.delay.items()):
            if key in self.path:
                time.sleep(seconds)
        with hub._lock:
            status = next((s for k, s in hub.fail.items() if k in self.path), None)
            if status is None:
                key = next((k for k in hub.fail_times if k in self.path and hub.fail_times[k][1] > 0), None)
                if key is not None:
                    status, left = hub.fail_times[key]
                    hub.fail_times[key] = (status, left - 1)
        if status is not None:
            return self._error(status, "Internal Error" if status >= 500 else "Error")
        url = urlparse(self.path)
        path = unquote(url.path)
        try:
            if _SEARCH.match(path):
                return self._search(parse_qs(url.query))
            if m := _API.match(path):
                return self._model_info(m["repo"], m["rev"], parse_qs(url.query))
            if m := _RESOLVE.match(path):
                return self._resolve(m["repo"], m["rev"], m["path"])
            if m := _CDN.match(path):
                return self._cdn(m["repo"], m["sha"], m["path"])
            return self._error(404, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            rec.finished = time.perf_counter()

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self._rec.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not self._head and body:
            self._rec.body_bytes += len(body)
            self.hub._transmit(len(body))
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, headers, json.dumps({"error": message}).encode())

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    def _authorize(self, repo_id: str, *, content: bool) -> HubRepo | None:
        """The repo if this request may see it, else answers the error (as the Hub does) and returns None."""
        hub, token = self.hub, self._token()
        if token is not None and token not in hub.tokens:
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repo = hub.repos.get(repo_id)
        access = token is not None and repo_id in hub.tokens.get(token, set())
        if repo is None or (repo.private and not access):
            self._error(401, "Repository not found", "RepoNotFound")
            return None
        if repo.gated and content and not access:
            self._error(401 if token is None else 403,
                        f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                        "to access it. Please log in.", "GatedRepo")
            return None
        return repo

    def _commit(self, repo: HubRepo, rev: str | None) -> str | None:
        rev = unquote(rev or "main")
        if rev == "main" or rev == repo.sha:
            return repo.sha
        return repo.revisions.get(rev)

    # -- endpoints ---------------------------------------------------------------------------------------
    def _model_info(self, repo_id: str, rev: str | None, query: dict[str, list[str]]) -> None:
        repo = self._authorize(repo_id, content=False)
        if repo is None:
            return
        sha = self._commit(repo, rev)
        if sha is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path, f in sorted(repo.files.items()):
            entry: dict[str, Any] = {"rfilename": path}
            if blobs:
                entry.update(size=f.size, blobId=f.blob_id)
                if f.lfs:
                    entry["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 134}
            siblings.append(entry)
        body = {"_id": sha[:24], "id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                "gated": "manual" if repo.gated else False, "disabled": False, "siblings": siblings, "tags": []}
        self._send(200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _search(self, query: dict[str, list[str]]) -> None:
        """list_models: ids containing `search` (case-insensitive), carrying every `filter` tag, sorted most
        first, `limit` at most, a page of `page_size` with a Link to the next (`cursor` = offset)."""
        hub, token = self.hub, self._token()
        if token is not None and token not in hub.tokens:
            return self._error(401, "Invalid credentials in Authorization header")
        text = query.get("search", [""])[0].lower()
        wanted = set(query.get("filter", []))
        sort = query.get("sort", [None])[0]
        if sort is not None and sort not in _SORT_KEYS:
            return self._error(400, f"Invalid sort parameter: {sort}")
        found = [(rid, r) for rid, r in sorted(hub.repos.items())
                 if text in rid.lower() and wanted <= set(r.all_tags())
                 and (not r.private or (token is not None and rid in hub.tokens.get(token, set())))]
        if sort is not None:
            found.sort(key=lambda item: getattr(item[1], _SORT_KEYS[sort]), reverse=True)
        limit = int(query.get("limit", ["0"])[0] or 0)
        if limit:
            found = found[:limit]
        start = int(query.get("cursor", ["0"])[0])
        page = found[start:start + hub.page_size]
        body = [{"_id": r.sha[:24], "id": rid, "modelId": rid, "likes": r.likes, "trendingScore": r.trending_score,
                 "private": r.private, "downloads": r.downloads, "tags": r.all_tags(), "library_name": "gguf"
                 if "gguf" in r.all_tags() else None, "createdAt": r.created_at} for rid, r in page]
        headers = {"Content-Type": "application/json"}
        if start + hub.page_size < len(found):
            params = {k: v for k, v in query.items() if k != "cursor"}
            rest = "&".join(f"{k}={quote(x)}" for k, vs in params.items() for x in vs)
            headers["Link"] = f'<{hub.endpoint}/api/models?{rest}&cursor={start + hub.page_size}>; rel="next"'
        self._send(200, headers, json.dumps(body).encode())

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        repo = self._authorize(repo_id, content=True)
        if repo is None:
            return
        sha = self._commit(repo, rev)
        if sha is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        f = repo.files.get(path)
        if f is None:
            return self._error(404, "Entry not found", "EntryNotFound")
        common = {"X-Repo-Commit": sha, "ETag": f'"{f.etag}"'}
        if f.lfs and self.hub.redirect_lfs:
            location = f"http://localhost:{self.hub.port}/cdn/{repo_id}/{sha}/{path}?X-Amz-Signature=abc"
            return self._send(302, {**common, "Location": location, "X-Linked-Etag": f'"{f.etag}"',
                                    "X-Linked-Size": str(f.size)}, b"Found. Redirecting")
        self._file(f, common)

    def _cdn(self, repo_id: str, sha: str, path: str) -> None:
        repo = self.hub.repos.get(repo_id)
        f = repo.files.get(path) if repo else None
        if f is None or self.headers.get("Authorization"):  # a CDN rejects foreign credentials
            return self._error(403 if f else 404, "Forbidden" if f else "Not Found")
        self._file(f, {"ETag": f'"{f.etag}"'})

    def _file(self, f: HubFile, headers: dict[str, str]) -> None:
        headers = {**headers, "Content-Type": "application/octet-stream"}
        wanted = self.headers.get("Range")
        if self.hub.no_range or not wanted:
            return self._stream(f, 0, f.size, 200, headers)
        m = _RANGE.match(wanted.strip())
        if not m or (not m[1] and not m[2]):
            return self._send(416, {"Content-Range": f"bytes */{f.size}"})
        if m[1]:
            start, end = int(m[1]), min(int(m[2]) + 1 if m[2] else f.size, f.size)
        else:
            start, end = max(0, f.size - int(m[2])), f.size
        if start >= f.size:
            return self._send(416, {"Content-Range": f"bytes */{f.size}"})
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        self._stream(f, start, end, 206, headers)

    def _stream(self, f: HubFile, start: int, end: int, status: int, headers: dict[str, str]) -> None:
        self._rec.status = status
        self.send_response(status)
        for key, value in {**headers, "Accept-Ranges": "none" if self.hub.no_range else "bytes",
                           "Content-Length": str(end - start)}.items():
            self.send_header(key, value)
        self.end_headers()
        if self._head:
            return
        pos = start
        try:
            while pos < end:  # chunked, so a client that stops reading stops the transfer
                piece = f.chunk(pos, min(end, pos + CHUNK))
                self._rec.body_bytes += len(piece)  # counted before the write: the client may act on it at once
                self.hub._transmit(len(piece))
                self.wfile.write(piece)
                pos += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            # The client closed early. On a real link the sender is a round trip of bytes ahead of what the
            # client has read when its close arrives: those bytes crossed the link too, so they are counted.
            if self.hub.bandwidth_bps and self.hub.rtt_s:
                self._rec.body_bytes += min(end - pos, int(self.hub.bandwidth_bps / 8 * self.hub.rtt_s))
            raise


# -- demo content shared by the tests --------------------------------------------------------------------------

def use_hub(hub: FakeHub, tmp_path: Path, monkeypatch: Any) -> None:
    """Point huggingface_hub and fitcheck at this hub, with their caches in tmp_path and no token, offline mode
    or retries from the environment: what every Hub test starts from."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FITCHECK_HTTP_RETRIES", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def tiny_layout(file_type: str, name: str = "Tiny") -> tuple[dict[str, Any], list[Any]]:
    from tests import gguf_builder as synth

    weight, down, ftype = TINY_QUANTS[file_type]
    return synth.llama_layout(n_layer=4, n_embd=512, n_head=8, n_head_kv=2, n_ff=1024, n_vocab=2048,
                              n_ctx_train=8192, weight_type=weight, ffn_down_type=down, output_type=down,
                              embd_type=weight, file_type=ftype, name=name)


def tiny_file(folder: Path, file_type: str = "Q4_K_M") -> tuple[Path, int]:
    """A tiny llama header-only GGUF named like a Hub quant, and the full size it declares."""
    from tests import gguf_builder as synth

    meta, tensors = tiny_layout(file_type)
    path = folder / f"Tiny-{file_type}.gguf"
    return path, synth.write_header_only(path, "llama", meta, tensors)


def qwen7b_layout() -> tuple[dict[str, Any], list[Any]]:
    """Qwen2.5-7B's shapes with its 152064-token vocabulary (the benchmark's header)."""
    from tests import gguf_builder as synth

    return synth.llama_layout(arch="qwen2", n_layer=28, n_embd=3584, n_head=28, n_head_kv=4, n_ff=18944,
                              n_vocab=152064, n_ctx_train=32768, attn_bias=True, name="Qwen2.5-7B-shaped")


def qwen7b_bpe_layout(name: str = "Qwen2.5-7B-shaped") -> tuple[dict[str, Any], list[Any]]:
    """Qwen2.5-7B as its GGUFs are: a BPE tokenizer, so 151,387 merges after the 152,064 tokens (~6 MiB)."""
    meta, tensors = qwen7b_layout()
    meta["general.name"] = name
    del meta["tokenizer.ggml.scores"]  # BPE vocabularies carry no scores
    meta["tokenizer.ggml.model"] = "gpt2"
    meta["tokenizer.ggml.merges"] = [f"t{i} t{i + 1}" for i in range(151387)]
    meta["tokenizer.chat_template"] = "{% for message in messages %}<|im_start|>{{ message['content'] }}" * 60
    return meta, tensors


def build_files(folder: Path) -> dict[str, tuple[Path, int]]:
    """Header-only GGUFs: tiny quants, a split BF16-named tiny model, a Qwen2.5-7B-shaped Q4_K_M."""
    from tests import gguf_builder as synth

    out = {}
    for q in TINY_QUANTS:
        meta, tensors = tiny_layout(q)
        path = folder / f"Tiny-{q}.gguf"
        out[q] = (path, synth.write_header_only(path, "llama", meta, tensors))
    meta, tensors = tiny_layout("Q8_0")
    split_dir = folder / "split"
    split_dir.mkdir()
    synth.write_header_only(split_dir / "Tiny-BF16.gguf", "llama", meta, tensors, split_max_tensors=20)
    for shard in sorted(split_dir.glob("*.gguf")):
        out[shard.name] = (shard, shard.stat().st_size + 10_000_000)
    meta, tensors = qwen7b_layout()
    path = folder / "Qwen-Q4_K_M.gguf"
    out["qwen"] = (path, synth.write_header_only(path, "qwen2", meta, tensors))
    return out


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> tuple[bytes, int]:
    """A safetensors header (8-byte length + JSON) and the size the whole file would have."""
    width = {"BF16": 2, "F16": 2, "F32": 4}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * width[dtype]]}
        offset += n * width[dtype]
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw, 8 + len(raw) + offset


def tiny_safetensors(vision: bool = False) -> tuple[dict[str, Any], dict[str, tuple[str, list[int]]]]:
    """config.json and tensors of a 4-layer llama in BF16 (optionally wrapped with a vision tower)."""
    text = {"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8,
            "num_key_value_heads": 2, "intermediate_size": 1024, "vocab_size": 2048,
            "max_position_embeddings": 8192}
    prefix = "language_model.model." if vision else "model."
    tensors: dict[str, tuple[str, list[int]]] = {f"{prefix}embed_tokens.weight": ("BF16", [2048, 512])}
    for il in range(4):
        p = f"{prefix}layers.{il}."
        tensors.update({
            p + "input_layernorm.weight": ("BF16", [512]), p + "post_attention_layernorm.weight": ("BF16", [512]),
            p + "self_attn.q_proj.weight": ("BF16", [512, 512]), p + "self_attn.k_proj.weight": ("BF16", [128, 512]),
            p + "self_attn.v_proj.weight": ("BF16", [128, 512]), p + "self_attn.o_proj.weight": ("BF16", [512, 512]),
            p + "mlp.gate_proj.weight": ("BF16", [1024, 512]), p + "mlp.up_proj.weight": ("BF16", [1024, 512]),
            p + "mlp.down_proj.weight": ("BF16", [512, 1024])})
    tensors[f"{prefix}norm.weight"] = ("BF16", [512])
    tensors["lm_head.weight" if not vision else "language_model.lm_head.weight"] = ("BF16", [2048, 512])
    if vision:
        tensors["vision_tower.encoder.layers.0.mlp.fc1.weight"] = ("F32", [1024, 256])
        return {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"],
                "text_config": text}, tensors
    return {**text, "architectures": ["LlamaForCausalLM"]}, tensors


def populate(hub: FakeHub, files: dict[str, tuple[Path, int]]) -> None:
    """The repos the tests use: a quant repo, a 7B repo, gated/private/broken/empty repos, safetensors repos."""
    for q in TINY_QUANTS:
        path, size = files[q]
        hub.add_file("org/Tiny-GGUF", path.name, path, size=size)
    for name, (path, size) in files.items():
        if "-of-" in name:
            hub.add_file("org/Tiny-GGUF", f"BF16/{name}", path, size=size)
    hub.add_file("org/Tiny-GGUF", "mmproj-Tiny-F16.gguf", b"GGUF" + b"\0" * 100)
    hub.add_file("org/Tiny-GGUF", "README.md", "# tiny")
    hub.add_file("org/Qwen-GGUF", "Qwen-Q4_K_M.gguf", files["qwen"][0], size=files["qwen"][1])
    hub.add_file("org/gated", "Tiny-Q4_K_M.gguf", files["Q4_K_M"][0], size=files["Q4_K_M"][1])
    hub.add_repo("org/gated", gated=True)
    hub.add_file("org/private", "Tiny-Q4_K_M.gguf", files["Q4_K_M"][0], size=files["Q4_K_M"][1])
    hub.add_repo("org/private", private=True)
    hub.add_file("org/notgguf", "model-Q4_K_M.gguf", b"PK\x03\x04 this is a zip, not a gguf" * 100)
    hub.add_file("org/empty", "README.md", "nothing here")
    hub.tokens[TOKEN] = {"org/gated", "org/private"}
    config, tensors = tiny_safetensors()
    data, size = safetensors_bytes(tensors)
    hub.add_file("org/Tiny-ST", "config.json", json.dumps(config))
    hub.add_file("org/Tiny-ST", "model.safetensors", data, size=size)
    config, tensors = tiny_safetensors(vision=True)
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    hub.add_file("org/Tiny-VL", "config.json", json.dumps(config))
    weight_map = {n: shard for shard, ns in halves.items() for n in ns}
    hub.add_file("org/Tiny-VL", "model.safetensors.index.json", json.dumps({"metadata": {}, "weight_map": weight_map}))
    for shard, ns in halves.items():
        data, size = safetensors_bytes({n: tensors[n] for n in ns})
        hub.add_file("org/Tiny-VL", shard, data, size=size)


def populate_search(hub: FakeHub, files: dict[str, tuple[Path, int]]) -> None:
    """Repos for `fitcheck search` (ids end in -GGUF-S so the other tests' repos stay out of it): a tiny quant repo
    (fits), a 7B repo (offload on a small GPU), a gated, a broken, a projector-only and a private repo, with
    download and like counts; a safetensors repo that the gguf filter leaves out."""
    def repo(repo_id: str, downloads: int, likes: int, **flags: bool) -> HubRepo:
        r = hub.add_repo(repo_id, **flags)
        r.downloads, r.likes, r.trending_score = downloads, likes, downloads // 10 + likes
        return r

    for q in TINY_QUANTS:
        path, size = files[q]
        hub.add_file("acme/Tiny-GGUF-S", path.name, path, size=size)
    repo("acme/Tiny-GGUF-S", 500, 40)
    hub.add_file("acme/Qwen-7B-GGUF-S", "Qwen-Q4_K_M.gguf", files["qwen"][0], size=files["qwen"][1])
    repo("acme/Qwen-7B-GGUF-S", 900, 5)
    hub.add_file("acme/Gated-GGUF-S", "Tiny-Q4_K_M.gguf", files["Q4_K_M"][0], size=files["Q4_K_M"][1])
    repo("acme/Gated-GGUF-S", 700, 30, gated=True)
    hub.add_file("acme/Broken-GGUF-S", "model-Q4_K_M.gguf", b"PK\x03\x04 this is a zip, not a gguf" * 100)
    repo("acme/Broken-GGUF-S", 300, 1)
    hub.add_file("acme/Projector-GGUF-S", "mmproj-model-f16.gguf", b"GGUF" + b"\0" * 100)
    repo("acme/Projector-GGUF-S", 200, 2)
    hub.add_file("acme/Private-GGUF-S", "Tiny-Q4_K_M.gguf", files["Q4_K_M"][0], size=files["Q4_K_M"][1])
    repo("acme/Private-GGUF-S", 10_000, 100, private=True)
    config, tensors = tiny_safetensors()
    data, size = safetensors_bytes(tensors)
    hub.add_file("acme/Tiny-ST-GGUF-S-source", "config.json", json.dumps(config))
    hub.add_file("acme/Tiny-ST-GGUF-S-source", "model.safetensors", data, size=size)
    repo("acme/Tiny-ST-GGUF-S-source", 5_000, 50)
