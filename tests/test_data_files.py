"""data/*.yaml is the source; its parsed value is kept as JSON in fitcheck's cache, keyed by the YAML text."""

from __future__ import annotations

import sys

import pytest
import yaml

from fitcheck import data

FILES = ("quant_types.yaml", "compute_model.yaml", "speed_model.yaml", "llama_cpp_builds.yaml", "hardware.yaml",
         "quant_quality.yaml")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path))
    return tmp_path / "data"


@pytest.mark.parametrize("name", FILES)
def test_cached_value_is_the_yaml_value(cache, name):
    parsed = yaml.safe_load(data.read_data(name))
    assert data.load_yaml(name) == parsed  # parsed, then stored
    assert len(list(cache.glob(f"{name[:-5]}-*.json"))) == 1  # every shipped file is plain JSON data
    assert data.load_yaml(name) == parsed  # read back


def test_a_warm_load_does_not_import_yaml(cache, monkeypatch):
    data.load_yaml("quant_types.yaml")
    monkeypatch.setitem(sys.modules, "yaml", None)  # an import would now fail
    assert data.load_yaml("quant_types.yaml")["tensor_types"]["Q4_K"]["block_size"] == 256


def test_edited_text_is_parsed_again(cache, monkeypatch):
    monkeypatch.setattr(data, "read_data", lambda name: "a: 1\n")
    assert data.load_yaml("x.yaml") == {"a": 1}
    monkeypatch.setattr(data, "read_data", lambda name: "a: 2\n")
    assert data.load_yaml("x.yaml") == {"a": 2}


def test_corrupt_or_unwritable_cache_costs_only_the_parse(cache, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "read_data", lambda name: "when: 2026-01-01\nkey: [1, 2]\n")
    assert data.load_yaml("d.yaml")["key"] == [1, 2]  # a date is not JSON: parsed every time, not stored
    assert not cache.exists() or not list(cache.iterdir())
    monkeypatch.setattr(data, "read_data", lambda name: "b: 3\n")
    data.load_yaml("b.yaml")
    (stored,) = cache.glob("b-*.json")
    stored.write_text("{not json")
    assert data.load_yaml("b.yaml") == {"b": 3}
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(blocker))  # a cache "folder" that is a file
    assert data.load_yaml("b.yaml") == {"b": 3}
