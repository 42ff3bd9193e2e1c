"""Reference parsing, quant labels in file names and llama.cpp-style tag matching (no network)."""

from __future__ import annotations

import pytest

from fitcheck.errors import HubError, InputError
from fitcheck.sources.hf import GGUFGroup, gguf_groups, match_tag, quant_label
from fitcheck.sources.hub_listing import HubRef, Listing, RepoFile, parse_ref


@pytest.mark.parametrize("text, ref", [
    ("org/repo", HubRef("org/repo")),
    ("org/repo:q4_k_m", HubRef("org/repo", tag="Q4_K_M")),
    ("org/repo:UD-Q4_K_XL", HubRef("org/repo", tag="UD-Q4_K_XL")),
    ("org/repo/sub/dir/file-Q8_0.gguf", HubRef("org/repo", path="sub/dir/file-Q8_0.gguf")),
    ("org/repo@v1.0", HubRef("org/repo", revision="v1.0")),
    ("org/repo@abc123:Q6_K", HubRef("org/repo", revision="abc123", tag="Q6_K")),
    ("org/repo@dev/x.gguf", HubRef("org/repo", revision="dev", path="x.gguf")),
])
def test_parse_ref(text, ref):
    assert parse_ref(text) == ref
    assert parse_ref(str(ref)[3:]) == ref  # str() round-trips


@pytest.mark.parametrize("text", ["", "org", "org/", "/repo", "org/re po", "org/repo:"])
def test_bad_refs(text):
    with pytest.raises(InputError):
        parse_ref(text)


@pytest.mark.parametrize("path, label", [
    ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
    ("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"),
    ("Llama-3.1-8B-Instruct-IQ4_XS.gguf", "IQ4_XS"),
    ("gemma-3-27b-it-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
    ("BF16/Model-BF16-00001-of-00003.gguf", "BF16"),
    ("Q8_0/Model-00001-of-00002.gguf", "Q8_0"),
    ("model.gguf", None),
    ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
])
def test_quant_label(path, label):
    assert quant_label(path) == label


def _listing(*paths: str) -> Listing:
    return Listing("org/r", None, "sha", tuple(RepoFile(p, 100, "e") for p in paths))


def test_groups_and_tags():
    groups = gguf_groups(_listing("M-Q4_K_M.gguf", "M-Q4_K_S.gguf", "mmproj-M-f16.gguf", "M-imatrix.gguf",
                                  "Q8_0/M-Q8_0-00001-of-00002.gguf", "Q8_0/M-Q8_0-00002-of-00002.gguf",
                                  "BF16/M-BF16-00001-of-00003.gguf", "README.md"))
    by_label = {g.label: g for g in groups}
    assert set(by_label) == {"Q4_K_M", "Q4_K_S", "Q8_0", "BF16"}
    assert len(by_label["Q8_0"].files) == 2 and by_label["Q8_0"].size == 200
    assert len(by_label["BF16"].missing) == 2
    assert match_tag(groups, "q4_k_m", "org/r").label == "Q4_K_M"
    assert match_tag(groups, "Q8_0", "org/r").path == "Q8_0/M-Q8_0-00001-of-00002.gguf"
    with pytest.raises(HubError, match="no GGUF for the quant tag Q5_K_M") as err:
        match_tag(groups, "Q5_K_M", "org/r")
    assert "Q4_K_S" in (err.value.hint or "")


def test_tag_falls_back_to_a_name_token():
    groups = [GGUFGroup((RepoFile("M-instruct.gguf", 1, None),), None),
              GGUFGroup((RepoFile("M-base.gguf", 1, None),), None)]
    assert match_tag(groups, "BASE", "org/r").path == "M-base.gguf"



@pytest.mark.parametrize(("name", "value"), [("FITCHECK_HTTP_TIMEOUT", "abc"), ("FITCHECK_HTTP_TIMEOUT", "0"),
                                             ("FITCHECK_HTTP_TIMEOUT", "nan"), ("FITCHECK_HTTP_RETRIES", "x"),
                                             ("FITCHECK_HTTP_RETRIES", "-1")])
def test_a_bad_network_setting_is_a_usage_error(monkeypatch, name, value):
    from fitcheck.errors import UsageError
    from fitcheck.sources import settings

    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError, match=name):
        settings.timeout_s() if name.endswith("TIMEOUT") else settings.retries()
