"""A misbehaving HTTP server on 127.0.0.1 for the remote sources' failure paths (tests/test_hub_faults.py).

Each path answers with one fault: a connection reset in the middle of the body, a 200 whose body is shorter
than its Content-Length, a Range request answered with the whole (huge) file, a redirect loop, 429 with a
Retry-After of an hour, and a body dripped a byte at a time. Everything else is a small valid GGUF served
with Range support. Every request's headers are recorded (so a test can see where a token went).
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("reset", "short", "whole", "loop", "ratelimit", "drip", "ok")  # "late-X": X after the first read
WHOLE_SIZE = 8 << 30  # the "whole file" a server that ignores Range would send: header, then zeros


def free_port() -> int:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FaultServer:
    def __init__(self, gguf: bytes) -> None:
        self.gguf = gguf
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.body_bytes = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, fault: str, name: str = "model.gguf") -> str:
        return f"http://127.0.0.1:{self.port}/{fault}/{name}"

    def __enter__(self) -> FaultServer:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_owner: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    def _count(self, n: int) -> None:
        with self.server_owner._lock:
            self.server_owner.body_bytes += n

    def _handle(self, head: bool) -> None:
        owner = self.server_owner
        with owner._lock:
            owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        fault = self.path.strip("/").split("/", 1)[0]
        data = owner.gguf
        if fault == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "ratelimit":
            self.send_response(429)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = 0, len(data) - 1
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if fault == "whole":  # Range ignored: 200 and 8 GiB
            self.send_response(200)
            self.send_header("Content-Length", str(WHOLE_SIZE))
            self.end_headers()
            if not head:
                self._send_whole(data)
            return
        if m:
            start = int(m[1])
            end = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
        if fault.startswith("late-"):  # the first read is answered well, the later ones (a streamed read) not
            fault = fault[5:] if start > 0 else "ok"
        body = data[start:end + 1]
        self.send_response(206 if m else 200)
        if m:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"fault-etag"')
        self.end_headers()
        if head:
            return
        if fault == "reset":  # half the body, then a TCP reset
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault == "short":  # a third of the body, then a clean close: shorter than Content-Length
            self.wfile.write(body[:len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "drip":  # a byte every 50 ms: no single read ever times out
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    self._count(1)
                    time.sleep(0.05)
            except OSError:
                pass
            return
        self.wfile.write(body)
        self._count(len(body))

    def _send_whole(self, data: bytes) -> None:
        chunk = b"\0" * (1 << 16)
        try:
            self.wfile.write(data)
            sent = len(data)
            while sent < WHOLE_SIZE:
                self.wfile.write(chunk)
                sent += len(chunk)
                self._count(len(chunk))
        except OSError:  # the client hung up: what a well-behaved reader does
            pass
