"""`fitcheck search QUERY`: the Hub is the catalogue. GGUF repos matching the query (HfApi.list_models), each
reduced to its best quant for this machine, side by side.

Per repo this is `fitcheck hf:org/repo`: the listing, every quant's header through the metadata-sharing reads
(sources/hf.py), then check.compare_quants, whose `best` (else `fallback`) is the repo's row. Quants larger than
all of this machine's memory cannot run and are not read. Repos are fetched a few at a time on threads; the
planning (pure, CPU-bound) runs on the calling thread as each repo arrives. A repo that cannot be read (gated,
gone, no GGUF, corrupt) is a row with a note, never the end of the search.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .errors import FitcheckError, HubUnavailable, UsageError
from .model import Hardware, QuantReport, QuantRow, Settings, Verdict
from .probe.overrides import HardwareOverrides
from .text import shown

if TYPE_CHECKING:
    from .check import MeasureRam
    from .sources.types import QuantSet

# --sort -> HfApi.list_models(sort=...) (its ModelSort_T); every order is "most first", as the Hub sorts
SORTS = {"downloads": "downloads", "likes": "likes", "trending": "trending_score", "modified": "last_modified",
         "created": "created_at"}
DEFAULT_LIMIT = 10
MAX_LIMIT = 50  # each repo costs a listing and its headers
REPO_WORKERS = 4  # repos fetched at once (each reads its quants' headers on up to 8 threads itself)
HEADER_SLACK = 256 * 1024**2  # a file larger than all memory by more than any header cannot fit
_VERDICT_ORDER = {Verdict.GPU: 0, Verdict.OFFLOAD: 1, Verdict.CPU: 2, Verdict.NONE: 3}

Progress = Callable[[int, int, str], None]  # (repos done, repos in all, the last one)


@dataclass(frozen=True)
class Hit:
    """One repo as the Hub's search returned it."""

    rank: int  # 1-based position in the Hub's order
    repo: str
    downloads: int | None
    likes: int | None


@dataclass(frozen=True)
class RepoResult:
    hit: Hit
    quants: QuantReport | None  # None: nothing planned (the note says why)
    note: str | None = None
    skipped: int = 0  # quants larger than this machine's memory, not read

    @property
    def row(self) -> QuantRow | None:
        """The repo's pick: the best quality on the GPU, else the best that runs, else the smallest quant."""
        q = self.quants
        if q is None or not q.rows:
            return None
        pick = q.best if q.best is not None else q.fallback
        return q.rows[pick if pick is not None else 0]

    @property
    def verdict(self) -> Verdict:
        row = self.row
        return row.report.plan.verdict if row is not None else Verdict.NONE


@dataclass(frozen=True)
class SearchReport:
    query: str
    sort: str
    limit: int
    settings: Settings
    hardware: Hardware
    results: tuple[RepoResult, ...]  # best runnable first (see `order`); hit.rank keeps the Hub's order
    notes: tuple[str, ...] = ()


def search(query: str, settings: Settings | None = None, hardware: HardwareOverrides | None = None, *,
           limit: int = DEFAULT_LIMIT, sort: str = "downloads", progress: Progress | None = None, nvml: Any = None,
           psutil_module: Any = None, measure_ram: MeasureRam | None = None) -> SearchReport:
    """The Hub's GGUF repos for `query`, each planned on this machine (or the overridden one)."""
    from .check import _measure_ram, _reads_ram, probe, validate, validate_machine

    settings = settings or Settings()
    overrides = hardware or HardwareOverrides()
    query = query.strip()
    if not query:
        raise UsageError("an empty search", hint="fitcheck search QUERY, e.g. fitcheck search qwen2.5-7b")
    if sort not in SORTS:
        raise UsageError(f"bad --sort value {sort!r}", hint=", ".join(SORTS))
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be 1 to {MAX_LIMIT}", hint="each repo costs a listing and its headers")
    validate(settings, overrides)
    machine = probe(overrides, nvml=nvml, psutil_module=psutil_module)
    validate_machine(settings, overrides, machine)
    measure = measure_ram or _measure_ram
    if not machine.gpus and machine.ram_bandwidth_gbps is None:  # CPU only: every plan reads RAM
        machine = _with_bandwidth(machine, measure())
    hits = find(query, limit, sort)
    results = _plan_all(hits, settings, machine, progress)
    if machine.ram_bandwidth_gbps is None and any(r.quants is not None and _reads_ram(r.quants)
                                                  for r in results):
        measured = _with_bandwidth(machine, measure())
        if measured is not machine:
            machine = measured
            results = [replace(r, quants=_respeed(r.quants, machine)) if r.quants else r for r in results]
    notes: list[str] = []
    if len(hits) == limit:
        notes.append(f"the first {limit} repos in the Hub's order; --limit shows more")
    return SearchReport(query, sort, limit, settings, machine, order(results), tuple(notes))


def _respeed(quants: QuantReport, machine: Hardware) -> QuantReport:
    from .check import _with_hardware

    result = _with_hardware(quants, machine)
    assert isinstance(result, QuantReport)  # a QuantReport in, a QuantReport out
    return result


def _with_bandwidth(machine: Hardware, measured: tuple[float, str] | None) -> Hardware:
    if measured is None:
        return machine
    return replace(machine, ram_bandwidth_gbps=measured[0], ram_bandwidth_source=measured[1])


def find(query: str, limit: int, sort: str) -> list[Hit]:
    """The Hub's search: model repos tagged gguf whose id contains `query`, in the Hub's order for `sort`."""
    from .sources import hf, transport
    from .sources import settings as net

    if net.offline():
        raise HubUnavailable("fitcheck search asks the Hub, and HF_HUB_OFFLINE is set",
                             hint="unset HF_HUB_OFFLINE, or check a cached repo: fitcheck hf:org/repo")
    models = transport.hub_call(f"the Hub's search for {shown(query)}", lambda: list(
        hf.api().list_models(search=query, filter="gguf", sort=SORTS[sort], limit=limit)))
    return [Hit(i + 1, m.id, m.downloads, m.likes) for i, m in enumerate(models[:limit])]


def _plan_all(hits: list[Hit], settings: Settings, machine: Hardware,
              progress: Progress | None) -> list[RepoResult]:
    """Fetch repos on threads; plan each on this thread as it arrives (the pure core stays single-threaded)."""
    from .check import compare_quants

    results: list[RepoResult] = []
    if progress:
        progress(0, len(hits), "")
    with ThreadPoolExecutor(max_workers=max(1, min(REPO_WORKERS, len(hits)))) as pool:
        pending: dict[Future[tuple[QuantSet | None, str | None, int]], Hit] = {
            pool.submit(_fetch, hit.repo, machine): hit for hit in hits}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                hit = pending.pop(fut)
                try:
                    quants, note, skipped = fut.result()
                    report = compare_quants(quants, settings, machine) if quants is not None else None
                    results.append(RepoResult(hit, report, note, skipped))
                except FitcheckError as exc:
                    hint = f" ({exc.hint})" if exc.hint else ""
                    results.append(RepoResult(hit, None, f"{exc}{hint}"))
                if progress:
                    progress(len(results), len(hits), hit.repo)
    return results


def _fetch(repo: str, machine: Hardware) -> tuple[QuantSet | None, str | None, int]:
    """The repo's quants that could fit (headers read), a note when none, and how many were too large to read."""
    from .sources import hf
    from .sources.hub_listing import list_repo
    from .sources.types import QuantSet

    listing = list_repo(repo, None)
    groups = hf.gguf_groups(listing)
    if not groups:
        return None, "no model GGUF in the repository (only projectors or imatrix files)", 0
    capacity = _capacity(machine)
    keep = [g for g in groups if capacity is None or g.size is None or g.size <= capacity + HEADER_SLACK]
    skipped = len(groups) - len(keep)
    if not keep:
        smallest = min(g.size or 0 for g in groups)
        return None, (f"does not fit: the smallest of its {len(groups)} GGUFs is {smallest / 1024**3:.1f} GiB, "
                      "more than all of this machine's memory"), skipped
    paths = {f.path for g in keep for f in g.files}
    sub = replace(listing, files=tuple(f for f in listing.files
                                       if f.path in paths or not f.path.lower().endswith(".gguf")))
    found = hf.load_gguf(hf.HubRef(repo), sub)
    if not isinstance(found, QuantSet):  # a reference without a tag or path is always a set (or nothing)
        return None, "no model GGUF in the repository", skipped
    return found, None, skipped


def _capacity(machine: Hardware) -> int | None:
    """All memory a plan could use (GPUs and RAM; unified memory counted twice, which only reads more), or None
    when RAM is unknown."""
    ram = machine.ram_available_bytes if machine.ram_available_bytes is not None else machine.ram_total_bytes
    if ram is None:
        return None
    return ram + sum(g.free_bytes if g.free_bytes is not None else g.total_bytes for g in machine.gpus)


def order(results: list[RepoResult]) -> tuple[RepoResult, ...]:
    """Best runnable first: on the GPU, then partial offload, CPU, nothing; within each a low-quality pick (Q3/Q2
    class) after the others; then the Hub's order. Repos that could not be read come last."""
    def key(r: RepoResult) -> tuple[int, bool, int]:
        row = r.row
        low = bool(row is not None and row.quality is not None and row.quality.low)
        return (_VERDICT_ORDER[r.verdict] if row is not None else 4), low, r.hit.rank

    return tuple(sorted(results, key=key))


def fits(report: SearchReport) -> bool:
    """At least one repo has a quant that fits under --require."""
    from .check import fits as quants_fit

    return any(r.quants is not None and quants_fit(r.quants) for r in report.results)
