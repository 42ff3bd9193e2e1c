"""Reading a remote model while the rest of fitcheck starts: the command line's Hub (or URL) reference is
resolved on a thread that starts before the option parser and the estimator are imported.

Why: a first `fitcheck hf:org/repo:Q4_K_M` spends ~0.2 s of CPU importing huggingface_hub and its HTTP
client before the first request can leave, and as much again importing the command line and the estimator,
probing the machine and checking options. Started first, the requests' round trips and the header's bytes
overlap that second half instead of following it. The thread is a daemon, so a run that ends early (a usage
error, --help) never waits for it; its answer, or its error, is handed to the one resolve of the same
reference (`take`), exactly as a resolve in the main thread would have returned or raised it.

A run that asks llama.cpp (--exact) or names a subcommand is not prefetched: those refuse some references
before any request, and their own work dwarfs the network.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .types import Model, Progress, QuantSet

READY_WAIT_S = 5.0  # the main thread waits this long at most for the first request to be on its way
NOT_PREFETCHED = ("--exact", "--help", "-h", "--version", "--")


class Pending:
    """One reference being resolved on its thread."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.ready = threading.Event()  # the first request is ready to leave (or the work ended)
        self._done = threading.Event()
        self._result: Model | QuantSet | None = None
        self._error: BaseException | None = None
        self._progress: Progress | None = None
        self._thread = threading.Thread(target=self._run, name="fitcheck-prefetch", daemon=True)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def start(self) -> Pending:
        self._thread.start()
        return self

    def result(self, progress: Progress | None) -> Model | QuantSet:
        """The resolved reference (waiting for it), or the error resolving it raised."""
        self._progress = progress
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _relay(self, done: int, total: int, what: str) -> None:
        if self._progress is not None:  # events before the command line asked for progress are dropped
            self._progress(done, total, what)

    def _run(self) -> None:
        try:
            self._result = _resolve(self.ref, self._relay, self.ready)
        except BaseException as exc:  # handed to the main thread, which raises it as its own resolve would
            self._error = exc
        finally:
            self.ready.set()
            self._done.set()


_pending: Pending | None = None
_lock = threading.Lock()


def start_from_argv(argv: list[str], subcommands: tuple[str, ...]) -> None:
    """Start resolving the one remote reference of a plain `fitcheck ...` command line, if it has one, and
    return once its first request is ready to leave (so the thread is not slowed by the caller's imports)."""
    if not argv or argv[0] in subcommands or any(a in NOT_PREFETCHED for a in argv):
        return
    remote = [a for a in argv if a.startswith(("hf:", "http://", "https://"))]
    if len(remote) != 1:  # none, or a model and a remote -md/--mmproj: which one is the model is typer's call
        return
    pending = start(remote[0])
    pending.ready.wait(READY_WAIT_S)
    # The modules the thread needs once the listing is back: imported here during that round trip.
    from . import hf, resolve  # noqa: F401


def start(ref: str) -> Pending:
    global _pending
    with _lock:
        _pending = Pending(ref).start()
        return _pending


def in_flight(ref: str) -> bool:
    """Whether `ref` is being read by a prefetch that has not finished."""
    pending = _pending
    return pending is not None and pending.ref == ref and not pending.finished


def take(ref: str) -> Pending | None:
    """The prefetch of `ref`, once (a second resolve of the same reference reads it again)."""
    global _pending
    with _lock:
        pending, _pending = (_pending, None) if _pending is not None and _pending.ref == ref else (None, _pending)
    return pending


def _resolve(ref: str, progress: Progress, ready: threading.Event) -> Model | QuantSet:
    if not ref.startswith("hf:"):
        _warm_hub(ref)
        ready.set()
        from .resolve import resolve_direct

        return resolve_direct(ref, progress=progress)
    # The light path to the listing: parse, the local Hugging Face cache, the listing request; the header
    # reading's modules are imported meanwhile (start_from_argv).
    from . import settings
    from .hub_listing import list_repo, parse_ref

    hub_ref = parse_ref(ref[3:])
    if (hub_ref.path or hub_ref.tag) and os.path.isdir(settings.hub_cache_folder(hub_ref.repo)):
        ready.set()
        from .resolve import resolve_direct

        return resolve_direct(ref, progress=progress)  # maybe downloaded: that cache is read first, with no request
    _warm_hub(ref)
    ready.set()
    listing = list_repo(hub_ref.repo, hub_ref.revision)
    from .resolve import resolve_listed

    return resolve_listed(hub_ref, listing, progress, None)


def _warm_hub(what: str) -> None:
    """huggingface_hub's headers and HTTP session, built before the first request (most of its CPU)."""
    from huggingface_hub import get_session

    from . import settings, transport

    if not settings.offline():
        # bounded like a request: a day's first headers may fetch huggingface_hub's agent registry
        transport.hub_call(what, lambda: settings.request_headers(True))
        get_session()
