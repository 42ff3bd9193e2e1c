"""`fitcheck search` against the loopback Hub (tests/fake_hub.py, its /api/models search endpoint included),
through huggingface_hub's own HfApi.list_models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from fitcheck.errors import HubError, HubUnavailable, UsageError
from fitcheck.model import Settings, Verdict
from fitcheck.probe.overrides import HardwareOverrides
from fitcheck.render.search import render_search_json, render_search_table
from fitcheck.search import fits, search

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import TOKEN, FakeHub, build_files, populate, populate_search, use_hub

GiB = 1024**3
MACHINE = HardwareOverrides(vram=(4 * GiB,), ram=16 * GiB, ram_bandwidth_gbps=40.0)
QUERY = "gguf-s"  # the ids populate_search adds


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> FakeHub:
    with FakeHub() as h:
        files = build_files(tmp_path_factory.mktemp("search"))
        populate(h, files)
        populate_search(h, files)
        yield h


@pytest.fixture(autouse=True)
def env(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_hub(hub, tmp_path, monkeypatch)
    hub.page_size = 1000
    hub.fail.clear()
    hub.reset_counters()
    return tmp_path


def searches(hub: FakeHub) -> list[dict[str, list[str]]]:
    return [parse_qs(urlparse(r.path).query) for r in hub.requests if urlparse(r.path).path == "/api/models"]


def run(query: str = QUERY, **kw: object):
    return search(query, Settings(ctx=4096), kw.pop("machine", MACHINE), measure_ram=lambda: None, **kw)  # type: ignore[arg-type]


def test_each_repo_reduced_to_its_best_quant_best_runnable_first(hub):
    report = run()
    assert searches(hub) == [{"search": [QUERY], "filter": ["gguf"], "sort": ["downloads"], "limit": ["10"]}]
    by_repo = {r.hit.repo: r for r in report.results}
    # the gguf filter leaves the safetensors repo out; the private one is not listed without access
    assert set(by_repo) == {"acme/Qwen-7B-GGUF-S", "acme/Gated-GGUF-S", "acme/Tiny-GGUF-S", "acme/Broken-GGUF-S",
                            "acme/Projector-GGUF-S"}
    assert [r.hit.rank for r in sorted(report.results, key=lambda r: -(r.hit.downloads or 0))] == [1, 2, 3, 4, 5]
    # on the GPU first, then partial offload, then the repos that could not be read, each in the Hub's order
    assert [r.hit.repo for r in report.results] == ["acme/Tiny-GGUF-S", "acme/Qwen-7B-GGUF-S", "acme/Gated-GGUF-S",
                                                    "acme/Broken-GGUF-S", "acme/Projector-GGUF-S"]
    tiny = by_repo["acme/Tiny-GGUF-S"]
    assert tiny.verdict is Verdict.GPU and tiny.row is not None and tiny.row.quant == "Q8_0"
    assert tiny.row.quality is not None and tiny.row.quality.tier == "lossless"
    assert len(tiny.quants.rows) == 3 if tiny.quants else False  # every quant compared, the best one shown
    assert by_repo["acme/Qwen-7B-GGUF-S"].verdict is Verdict.OFFLOAD
    assert "gated" in (by_repo["acme/Gated-GGUF-S"].note or "")
    assert "not a GGUF" in (by_repo["acme/Broken-GGUF-S"].note or "")
    assert "no model GGUF" in (by_repo["acme/Projector-GGUF-S"].note or "")
    assert fits(report)


def test_text_table_keeps_the_hub_order_visible(hub):
    text = render_search_table(run(), width=200, color=False)
    lines = text.splitlines()
    header = next(line for line in lines if "repo" in line and "quality" in line)
    assert header.split()[:5] == ["#", "repo", "quant", "bpw", "quality"]
    tiny = next(line for line in lines if "acme/Tiny-GGUF-S" in line and "Q8_0" in line)
    assert tiny.split()[0] == "3" and "lossless" in tiny and "fits on the GPU" in tiny
    assert "recommend  acme/Tiny-GGUF-S Q8_0 (lossless quality) fits fully on the GPU: llama-server -hf " \
           "acme/Tiny-GGUF-S:Q8_0" in text
    assert "acme/Projector-GGUF-S: no model GGUF" in text


def test_json_repos(hub):
    doc = json.loads(render_search_json(run()))
    assert doc["schema_version"] == 1 and doc["query"] == QUERY and doc["sort"] == "downloads"
    assert doc["hardware"]["source"] == "override" and doc["settings"]["ctx"] == 4096
    first = doc["repos"][0]
    assert first["repo"] == "acme/Tiny-GGUF-S" and first["rank"] == 3 and first["downloads"] == 500
    assert first["verdict"] == "gpu" and first["quant"] == "Q8_0" and first["quality"]["tier"] == "lossless"
    assert isinstance(first["size_bytes"], int) and first["max_ctx"] == 8192 and first["quants_read"] == 3
    assert first["command"].startswith("llama-server -hf acme/Tiny-GGUF-S:Q8_0")
    unread = [r for r in doc["repos"] if r["verdict"] is None]
    assert len(unread) == 3 and all(r["note"] and r["command"] is None for r in unread)


def test_sort_limit_and_pagination(hub):
    hub.page_size = 2  # the Hub pages with a Link header; huggingface_hub follows it
    report = run(sort="likes", limit=3)
    assert [r.hit.repo for r in sorted(report.results, key=lambda r: r.hit.rank)] == [
        "acme/Tiny-GGUF-S", "acme/Gated-GGUF-S", "acme/Qwen-7B-GGUF-S"]
    pages = searches(hub)
    assert len(pages) == 2 and pages[0]["sort"] == ["likes"] and pages[1]["cursor"] == ["2"]
    assert any("--limit" in n for n in report.notes)
    assert [r.hit.rank for r in run(sort="trending", limit=1).results] == [1]


def test_a_token_lists_private_repos(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.tokens[TOKEN] |= {"acme/Private-GGUF-S", "acme/Gated-GGUF-S"}
    try:
        report = run()
    finally:
        hub.tokens[TOKEN] -= {"acme/Private-GGUF-S", "acme/Gated-GGUF-S"}
    by_repo = {r.hit.repo: r for r in report.results}
    assert by_repo["acme/Private-GGUF-S"].hit.rank == 1 and by_repo["acme/Private-GGUF-S"].verdict is Verdict.GPU
    assert by_repo["acme/Gated-GGUF-S"].note is None and by_repo["acme/Gated-GGUF-S"].verdict is Verdict.GPU


def test_quants_larger_than_the_machine_are_not_read(hub):
    small = HardwareOverrides(vram=(2 * GiB,), ram=2 * GiB, ram_bandwidth_gbps=40.0)
    report = run(machine=small)
    qwen = next(r for r in report.results if r.hit.repo == "acme/Qwen-7B-GGUF-S")
    assert qwen.quants is None and qwen.skipped == 1 and "more than all of this machine's memory" in (qwen.note or "")
    assert hub.file_requests("Qwen-Q4_K_M.gguf") == []  # its 4.6 GiB could never fit in 4 GiB: no header read
    assert next(r for r in report.results if r.hit.repo == "acme/Tiny-GGUF-S").verdict is Verdict.GPU


def test_no_match_is_an_empty_report(hub):
    report = run("no-such-model-anywhere")
    assert report.results == () and not fits(report)
    assert "no GGUF repositories on the Hub match" in render_search_table(report, 120, False)


def test_bad_options_fail_before_any_request(hub):
    for kw, message in (({"sort": "stars"}, "--sort"), ({"limit": 0}, "--limit"), ({"query": " "}, "empty")):
        query = str(kw.pop("query", QUERY))
        with pytest.raises(UsageError, match=message):
            run(query, **kw)
    with pytest.raises(UsageError):
        search(QUERY, Settings(cache_type_k="q9_9"), MACHINE)
    assert hub.requests == []


def test_search_failures_are_hub_errors(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_rejected_token_0000")
    with pytest.raises(HubError, match=r"401|credentials|token"):
        run()
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailable, match="HF_HUB_OFFLINE"):
        run()


def fitcheck(hub: FakeHub, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    base.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(cache / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
                FITCHECK_CACHE_DIR=str(cache / "fitcheck"), FITCHECK_HTTP_RETRIES="0", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "fitcheck", "search", *args], capture_output=True, text=True,
                          env=base, timeout=60)


def test_cli_exit_codes_and_output(hub, env):
    hw = ["--vram", "4G", "--ram", "16G", "--ram-bandwidth", "40"]
    out = fitcheck(hub, env, QUERY, *hw, "-c", "4k", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["repos"][0]["repo"] == "acme/Tiny-GGUF-S" and doc["settings"]["ctx"] == 4096
    out = fitcheck(hub, env, QUERY, "--vram", "256M", "--ram", "1G", "--require", "gpu")
    assert out.returncode == 1, out.stderr  # nothing on a 256 MiB GPU
    assert "Best quant per repo" in out.stdout and out.stderr == ""
    out = fitcheck(hub, env, QUERY, "--sort", "stars")
    assert out.returncode == 2 and out.stderr.startswith("error: bad --sort value 'stars'")
    out = fitcheck(hub, env, QUERY, "-ngl", "5")  # named whole, not click's `-n gl`
    assert out.returncode == 2 and out.stderr.startswith("error: unknown option -ngl")
    hub.fail["/api/models?"] = 404
    try:
        out = fitcheck(hub, env, QUERY, *hw)
    finally:
        hub.fail.clear()
    assert out.returncode == 3 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
