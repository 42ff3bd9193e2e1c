"""Safetensors repos and their config.json get the GGUF headers' treatment: a header length of 2^63, unknown
dtypes, negative shapes, missing, zero or mistyped config fields are each named as what they are (exit 3),
never an internal error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fitcheck.errors import FitcheckError, InputError
from fitcheck.sources.resolve import resolve
from fitcheck.sources.safetensors import native_spec
from tests.fake_hub import FakeHub, safetensors_bytes, tiny_safetensors


def _config(**changes):
    config, tensors = tiny_safetensors()
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config, {name: [dtype, shape] for name, (dtype, shape) in tensors.items()}


@pytest.mark.parametrize(("key", "value", "says"), [
    ("num_hidden_layers", math.nan, r"num_hidden_layers is a float \(nan\), expected an integer"),
    ("num_hidden_layers", "4", r"num_hidden_layers is a string \('4'\)"),
    ("num_hidden_layers", 10**7, r"num_hidden_layers = 10000000 is out of range"),
    ("hidden_size", -512, r"hidden_size = -512 is out of range"),
    ("hidden_size", math.inf, r"hidden_size is a float \(inf\)"),
    ("num_key_value_heads", 0, r"num_key_value_heads = 0 is out of range"),
    ("num_key_value_heads", [2], r"num_key_value_heads is an array of 1 values"),
    ("vocab_size", 1.5, r"vocab_size is a float \(1\.5\)"),
    ("max_position_embeddings", True, r"max_position_embeddings is a boolean"),
    ("model_type", 7, r"model_type is 7, expected a string"),
    ("model_type", "llama\x1b[31m", r"model_type is a string \('llama\\x1b\[31m'\), not an architecture name"),
    ("num_hidden_layers", 8, r"num_hidden_layers is 8 but the safetensors files hold tensors for 4"),
])
def test_bad_config_fields_are_named(key, value, says):
    config, tensors = _config(**{key: value})
    with pytest.raises(InputError, match=says) as err:
        native_spec("hf:org/x", config, tensors)
    assert "\x1b" not in str(err.value)


@pytest.mark.parametrize("missing", ["num_hidden_layers", "hidden_size", "num_attention_heads"])
def test_missing_or_zero_essentials(missing):
    for value in (None, 0):
        config, tensors = _config(**{missing: value})
        with pytest.raises(InputError, match=r"config\.json lacks"):
            native_spec("hf:org/x", config, tensors)


def test_integral_floats_are_accepted():
    config, tensors = _config(hidden_size=512.0, num_hidden_layers=4.0)
    assert native_spec("hf:org/x", config, tensors).n_embd == 512


def test_text_config_of_the_wrong_type_is_ignored_not_trusted():
    config, tensors = _config(text_config="oops")
    assert native_spec("hf:org/x", config, tensors).n_layer == 4


@pytest.mark.parametrize(("entry", "says"), [
    (["Q4", [512]], r"unknown dtype 'Q4'"),
    (["F16", [-1, 512]], r"a dimension of -1"),
    (["F16", [2**64, 512]], r"a dimension of 18446744073709551616"),
    (["F16", ["512"]], r"a dimension of a string"),
    (["F16", [2**62, 2**62]], r"more than 2\^63 elements"),
    ([None, [512]], r"no dtype and shape"),
    (["F16", [1] * 20], r"20 dimensions"),
])
def test_bad_tensor_entries_are_named(entry, says):
    config, tensors = _config()
    tensors["model.layers.0.extra.weight"] = entry
    with pytest.raises(InputError, match=r"tensor 'model\.layers\.0\.extra\.weight'.*" + says):
        native_spec("hf:org/x", config, tensors)


def test_huge_layer_index_in_a_name_is_not_converted():
    config, tensors = _config()
    tensors["model.layers." + "9" * 5000 + ".mlp.weight"] = ["F16", [512]]
    spec = native_spec("hf:org/x", config, tensors)  # not a block index fitcheck knows: an extra tensor
    assert spec.n_layer == 4


def test_sub_byte_dtypes_are_sized():
    config, tensors = _config()
    tensors["model.layers.0.mlp.down_proj.weight"] = ["F4", [512, 1024]]
    spec = native_spec("hf:org/x", config, tensors)
    down = next(t for t in spec.tensors if t.name == "blk.0.mlp.down_proj.weight")
    assert down.size_bytes == 512 * 1024 // 2


# -- through the Hub -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hub():
    config, tensors = tiny_safetensors()
    data, size = safetensors_bytes(tensors)
    with FakeHub() as h:
        h.add_file("org/huge-header", "config.json", json.dumps(config))
        h.add_file("org/huge-header", "model.safetensors", (2**63).to_bytes(8, "little") + data[8:], size=size)
        h.add_file("org/bad-json", "config.json", "{not json")
        h.add_file("org/bad-json", "model.safetensors", data, size=size)
        h.add_file("org/list-json", "config.json", "[1, 2, 3]")
        h.add_file("org/list-json", "model.safetensors", data, size=size)
        h.add_file("org/deep-json", "config.json", "[" * 100_000 + "]" * 100_000)
        h.add_file("org/deep-json", "model.safetensors", data, size=size)
        h.add_file("org/bad-index", "config.json", json.dumps(config))
        h.add_file("org/bad-index", "model.safetensors.index.json", json.dumps({"weight_map": ["a"]}))
        bad = dict(tensors)
        bad["model.layers.0.mlp.up_proj.weight"] = ("BF16", [1024, 512])
        header, _ = safetensors_bytes(bad)
        raw = header.replace(b'"BF16", "shape": [1024, 512]', b'"XX16", "shape": [1024, 512]', 1)
        h.add_file("org/bad-dtype", "config.json", json.dumps(config))
        h.add_file("org/bad-dtype", "model.safetensors", raw, size=size)
        yield h


@pytest.fixture(autouse=True)
def _env(hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("FITCHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FITCHECK_HTTP_RETRIES", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.mark.parametrize(("repo", "says"), [
    ("org/huge-header", r"not a valid safetensors file"),
    ("org/bad-json", r"config\.json: not valid JSON"),
    ("org/list-json", r"config\.json: not a JSON object \(an array of 3 values\)"),
    ("org/deep-json", r"config\.json: not valid JSON"),
    ("org/bad-index", r"weight_map is an array of 1 values, expected an object of file names"),
    ("org/bad-dtype", r"unknown dtype 'XX16'"),
])
def test_hostile_repos(repo, says):
    with pytest.raises(FitcheckError, match=says) as err:
        resolve(f"hf:{repo}")
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
