"""Hub references against a real HTTP server on 127.0.0.1, through huggingface_hub's own client (HF_ENDPOINT)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fitcheck.errors import HubError, InputError
from fitcheck.sources import ranged
from fitcheck.sources.resolve import load_model, resolve
from fitcheck.sources.types import Model, QuantSet
from fitcheck.sources.url import shard_urls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_hub import TOKEN, FakeHub, build_files, populate, use_hub


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    return build_files(tmp_path_factory.mktemp("hubfiles"))


@pytest.fixture(scope="module")
def hub(files) -> FakeHub:
    with FakeHub() as h:
        populate(h, files)
        yield h


@pytest.fixture(autouse=True)
def env(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_hub(hub, tmp_path, monkeypatch)
    monkeypatch.setenv("FITCHECK_HTTP_TIMEOUT", "5")
    hub.redirect_lfs = hub.no_range = False
    hub.fail.clear()
    hub.fail_times.clear()
    hub.delay.clear()
    hub.reset_counters()
    return tmp_path


def test_quant_tag_reads_only_the_header(hub: FakeHub, files):
    stats: list[dict] = []
    model = resolve("hf:org/Qwen-GGUF:q4_k_m", stats=stats)
    assert isinstance(model, Model)
    assert model.model_arg == ["-hf", "org/Qwen-GGUF:Q4_K_M"]
    assert model.spec.architecture == "qwen2" and model.spec.n_vocab == 152064
    [s] = stats
    assert s["bytes_fetched"] <= 1.1 * s["header_bytes"]
    # the large read is streamed with a margin and closed once the header is in: what the server sent past
    # what was read is bounded by that margin (kernel buffers on an unlimited loopback link fill it at once)
    assert s["bytes_fetched"] <= hub.bytes_sent("Qwen-Q4_K_M.gguf") <= 1.3 * s["header_bytes"]
    assert s["requests"] == len([r for r in hub.file_requests("Qwen-Q4_K_M.gguf") if r.method == "GET"])
    # the 152064-entry scores and token_type arrays (numeric) are seeked over, never requested
    local = load_model(str(files["qwen"][0])).spec
    assert model.spec.parameters == local.parameters and model.spec.tensors == local.tensors


def test_damaged_cache_entry_is_a_miss(hub: FakeHub, env: Path, monkeypatch):
    import json

    first = load_model("hf:org/Tiny-GGUF:Q4_K_M").spec
    headers = [p for p in _cache_root().rglob("*.json") if p.parent.name == "gguf"]
    assert headers
    for path in headers:  # valid JSON, right key, but a value this version cannot read
        doc = json.loads(path.read_text())
        doc["value"] = {"version": 3, "metadata": [], "tensors": [[1]]}
        path.write_text(json.dumps(doc))
    hub.reset_counters()
    assert load_model("hf:org/Tiny-GGUF:Q4_K_M").spec.tensors == first.tensors  # read again
    assert any(r.path.endswith(".gguf") for r in hub.requests)
    for path in headers:
        doc = json.loads(path.read_text())
        doc["value"] = {"tensors": None}
        path.write_text(json.dumps(doc))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="not in fitcheck's cache"):
        load_model("hf:org/Tiny-GGUF:Q4_K_M")


def _cache_root() -> Path:
    from fitcheck.cachedir import cache_dir

    return cache_dir()


def test_second_run_uses_the_cache_and_offline_works(hub: FakeHub, monkeypatch):
    first = load_model("hf:org/Tiny-GGUF:Q4_K_M").spec
    hub.reset_counters()
    again = load_model("hf:org/Tiny-GGUF:Q4_K_M").spec
    assert [r.path.split("?")[0] for r in hub.requests] == ["/api/models/org/Tiny-GGUF"]  # listing only
    assert again.tensors == first.tensors and again.metadata == first.metadata
    hub.reset_counters()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_model("hf:org/Tiny-GGUF:Q4_K_M").spec.tensors == first.tensors
    assert hub.requests == []
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        load_model("hf:org/Tiny-GGUF:Q8_0")


def test_repo_gives_every_quant_and_split_shards(hub: FakeHub, files):
    found = resolve("hf:org/Tiny-GGUF")
    assert isinstance(found, QuantSet) and found.kind == "gguf"
    by_quant = {c.quant: c for c in found.choices}
    assert set(by_quant) == {"Q2_K", "Q4_K_M", "Q8_0", "BF16"}  # mmproj skipped, shards grouped
    bf16 = by_quant["BF16"]
    shards = [n for n in files if "-of-" in n]
    assert len(shards) > 1 and bf16.file == f"BF16/{sorted(shards)[0]}"
    assert bf16.size_bytes == sum(files[n][1] for n in shards)
    assert all(hub.file_requests(f"BF16/{n}") for n in shards)  # every shard's header was read
    assert by_quant["Q4_K_M"].model.model_arg == ["-hf", "org/Tiny-GGUF:Q4_K_M"]
    assert by_quant["Q8_0"].model.spec.file_type == "Q8_0"


def test_path_and_revision_references(hub: FakeHub):
    sha = hub.repos["org/Tiny-GGUF"].sha
    model = load_model(f"hf:org/Tiny-GGUF@{sha}/Tiny-Q2_K.gguf")
    assert model.spec.file_type == "Q2_K"
    assert any(sha[:12] in n for n in model.spec.notes)
    assert all(f"/resolve/{sha}/" in r.path for r in hub.requests if "/resolve/" in r.path)
    with pytest.raises(HubError, match="revision not found"):
        load_model("hf:org/Tiny-GGUF@nosuchbranch:Q2_K")
    with pytest.raises(HubError, match="no GGUF for the quant tag IQ1_S") as err:
        load_model("hf:org/Tiny-GGUF:IQ1_S")
    assert "Q4_K_M" in (err.value.hint or "")
    with pytest.raises(HubError, match="no file"):
        load_model("hf:org/Tiny-GGUF/missing.gguf")


def test_redirect_to_a_second_host_drops_the_token(hub: FakeHub, monkeypatch):
    hub.redirect_lfs = True
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    model = load_model("hf:org/gated:Q4_K_M")
    assert model.spec.file_type == "Q4_K_M"
    cdn = [r for r in hub.requests if r.path.startswith("/cdn/")]
    resolves = [r for r in hub.requests if "/resolve/" in r.path]
    assert cdn and all(r.host.startswith("localhost:") and r.authorization is None for r in cdn)
    assert len(resolves) == 1 and resolves[0].authorization == f"Bearer {TOKEN}"  # later ranges go direct


@pytest.mark.parametrize("ref, token, message", [
    ("hf:org/nope:Q4_K_M", None, "repository not found, or private"),
    ("hf:org/private:Q4_K_M", None, "repository not found, or private"),
    ("hf:org/gated:Q4_K_M", None, "gated repository"),
    ("hf:org/gated:Q4_K_M", "hf_validbutnoaccess", "gated repository"),
    ("hf:org/Tiny-GGUF:Q4_K_M", "hf_badtoken_secret", "token was rejected"),
    ("hf:org/empty", None, "no GGUF or safetensors"),
])
def test_hub_errors_are_one_line_without_the_token(hub: FakeHub, monkeypatch, ref, token, message):
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    if token == "hf_validbutnoaccess":
        hub.tokens[token] = set()
    with pytest.raises(HubError, match=message) as err:
        resolve(ref)
    text = f"{err.value} {err.value.hint}"
    assert "\n" not in text and (token is None or token not in text)
    assert err.value.exit_code == 3


def test_not_a_gguf_file(hub: FakeHub):
    with pytest.raises(InputError, match="not a GGUF file"):
        load_model("hf:org/notgguf:Q4_K_M")


def test_server_error_timeout_and_retry(hub: FakeHub, monkeypatch):
    hub.fail["/resolve/"] = 500
    with pytest.raises(HubError, match="server error \\(HTTP 500\\)"):
        load_model("hf:org/Tiny-GGUF:Q4_K_M")
    hub.fail.clear()
    hub.delay["/resolve/"] = 1.0
    monkeypatch.setenv("FITCHECK_HTTP_TIMEOUT", "0.3")
    with pytest.raises(HubError, match="timed out"):
        load_model("hf:org/Tiny-GGUF:Q4_K_M")
    hub.delay.clear()
    hub.fail["/api/models/"] = 503
    with pytest.raises(HubError, match="HTTP 503"):
        load_model("hf:org/Qwen-GGUF:Q4_K_M")  # never listed here: no cached listing to fall back on


def test_retry_recovers_from_one_server_error(hub: FakeHub, monkeypatch):
    monkeypatch.setenv("FITCHECK_HTTP_RETRIES", "1")
    hub.fail_times["/resolve/"] = (502, 1)
    assert load_model("hf:org/Tiny-GGUF:Q8_0").spec.file_type == "Q8_0"
    statuses = [r.status for r in hub.requests if "/resolve/" in r.path]
    assert statuses[0] == 502 and statuses[1] == 206


def test_no_range_server_reads_a_bounded_prefix(hub: FakeHub, files, monkeypatch):
    hub.no_range = True
    model = load_model("hf:org/Tiny-GGUF:Q4_K_M")
    assert model.spec.file_type == "Q4_K_M"
    gets = [r for r in hub.file_requests("Tiny-Q4_K_M.gguf") if r.method == "GET"]
    assert len(gets) == 1 and gets[0].status == 200
    monkeypatch.setattr(ranged, "NO_RANGE_PREFIX_CAP", 256 * 1024)
    with pytest.raises(HubError, match="does not support Range"):
        load_model("hf:org/Qwen-GGUF:Q4_K_M")
    sent = hub.bytes_sent("Qwen-Q4_K_M.gguf")
    assert sent < files["qwen"][1] // 2  # the transfer stopped; far from the whole file


def test_plain_url(hub: FakeHub, files, monkeypatch):
    sha = hub.repos["org/Tiny-GGUF"].sha
    url = f"http://localhost:{hub.port}/cdn/org/Tiny-GGUF/{sha}/Tiny-Q8_0.gguf"
    model = load_model(url)
    assert model.model_arg == ["-mu", url] and model.spec.file_type == "Q8_0"
    assert model.spec.file_size_bytes == files["Q8_0"][1]
    hub.reset_counters()
    assert load_model(url).spec.tensors == model.spec.tensors
    assert [r.method for r in hub.requests] == ["HEAD"]  # etag unchanged: from the cache
    hub_url = f"{hub.endpoint}/org/Tiny-GGUF/resolve/main/Tiny-Q2_K.gguf"
    assert load_model(hub_url).model_arg == ["-hf", "org/Tiny-GGUF:Q2_K"]


def test_a_changed_url_is_read_again(hub: FakeHub, files):
    url = f"http://localhost:{hub.port}/cdn/org/Changing/0/model.gguf"
    hub.add_file("org/Changing", "model.gguf", files["Q8_0"][0], size=files["Q8_0"][1])
    assert load_model(url).spec.file_type == "Q8_0"
    hub.add_file("org/Changing", "model.gguf", files["Q2_K"][0], size=files["Q2_K"][1])  # a new ETag
    hub.reset_counters()
    assert load_model(url).spec.file_type == "Q2_K"
    assert [r.method for r in hub.requests][:2] == ["HEAD", "GET"]


def test_signed_split_url_keeps_its_query_for_every_shard(hub: FakeHub, files):
    sha = hub.repos["org/Tiny-GGUF"].sha
    shards = sorted(n for n in files if "-of-" in n)
    folder = f"http://localhost:{hub.port}/cdn/org/Tiny-GGUF/{sha}/BF16"
    url = f"{folder}/{shards[0]}?X-Amz-Signature=secret123&Expires=1"
    assert shard_urls(url) == [f"{folder}/{n}?X-Amz-Signature=secret123&Expires=1" for n in shards]
    model = load_model(url)
    assert model.model_arg == ["-mu", url]
    for name in shards:
        gets = [r for r in hub.file_requests(f"BF16/{name}") if r.method == "GET"]
        assert gets and all(r.path.endswith("?X-Amz-Signature=secret123&Expires=1") for r in gets)
    hub.fail[shards[1]] = 404
    with pytest.raises(HubError, match="file not found") as err:
        load_model(url.replace("secret123", "other456"))  # not cached: another URL
    text = f"{err.value} {err.value.hint}"
    assert f"{folder}/{shards[1]}:" in text and "other456" not in text and "Expires" not in text


def test_retries_print_nothing(hub: FakeHub, monkeypatch, capfd):
    monkeypatch.setenv("FITCHECK_HTTP_RETRIES", "1")
    hub.redirect_lfs = True
    hub.fail_times["/cdn/"] = (503, 1)
    assert load_model("hf:org/Tiny-GGUF:Q2_K").spec.file_type == "Q2_K"
    assert [r.status for r in hub.requests if r.path.startswith("/cdn/")][:2] == [503, 206]
    assert capfd.readouterr().err == ""  # huggingface_hub's retry warnings name the signed URL


def test_a_later_shard_reads_the_whole_split_model(hub: FakeHub, files):
    shards = sorted(n for n in files if "-of-" in n)
    whole = load_model(f"hf:org/Tiny-GGUF/BF16/{shards[0]}").spec
    later = load_model(f"hf:org/Tiny-GGUF/BF16/{shards[-1]}")
    assert later.spec.tensors == whole.tensors
    assert later.model_arg == ["-hf", "org/Tiny-GGUF:BF16"]
    assert any("one shard of a split model" in n and shards[0] in n for n in later.spec.notes)


def test_a_tag_naming_two_files_says_which_was_read(hub: FakeHub, files):
    for name in ("Tiny-Q4_K_M.gguf", "Tiny-Q4_K_M-imat.gguf"):
        hub.add_file("org/TwoTags", name, files["Q4_K_M"][0], size=files["Q4_K_M"][1])
    model = load_model("hf:org/TwoTags:Q4_K_M")
    note = next(n for n in model.spec.notes if "names 2 files" in n)
    assert "read Tiny-Q4_K_M.gguf" in note and "Tiny-Q4_K_M-imat.gguf" in note


def test_a_repository_page_url_is_the_repo(hub: FakeHub):
    page = f"{hub.endpoint}/org/Tiny-GGUF"
    for url in (page, page + "/", page + "/tree/main"):
        found = resolve(url)
        assert isinstance(found, QuantSet) and {c.quant for c in found.choices} >= {"Q4_K_M", "Q8_0"}, url


def test_hub_down_with_a_warm_cache_answers_from_the_cache(hub: FakeHub):
    first = load_model("hf:org/Tiny-GGUF:Q8_0").spec
    hub.fail["/api/models/"] = 503  # the listing fails; the header is cached
    again = load_model("hf:org/Tiny-GGUF:Q8_0").spec
    assert again.tensors == first.tensors
    assert any("could not be reached" in n and "HF_HUB_OFFLINE=1" in n for n in again.notes)
    with pytest.raises(HubError, match="server error"):
        load_model("hf:org/Qwen-GGUF:Q4_K_M")  # never listed: nothing to fall back on
