"""Checkpoints from Python (python/pyramidion/checkpoint.py): a model saved by the C++
Seq2Seq::save reads back, with only torch, as the tensors the C++ Seq2Seq::load holds; damaged
or foreign directories are refused naming the file (FileNotFoundError or ValueError, nothing else);
a pickle that would run code is refused before it runs; the example script runs.

The damaged-directory tests write their directories in plain Python (torch.save, json), so they run
where the C++ library is not built."""
import io
import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pyramidion
from conftest import PACKAGE_PYTHONPATH, REPO

CONFIG = REPO / "configs" / "tiny-deep-pyramidion.json"


@pytest.fixture(scope="module")
def saved(cpp, tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt") / "model"
    names, values = cpp.save_model(CONFIG.read_text(), str(d), 7)
    return d, dict(zip(names, values))


def test_weights_read_without_the_library_equal_the_cpp_models(saved):
    d, cpp_weights = saved
    config, weights = pyramidion.load_checkpoint(d)
    assert sorted(weights) == sorted(cpp_weights)
    for name, t in cpp_weights.items():
        assert weights[name].dtype == t.dtype and torch.equal(weights[name], t), name
    assert any(n.startswith("encoder_poolers.0.scorer.") for n in weights)
    assert config["pooled_lengths"] == json.loads(CONFIG.read_text())["pooled_lengths"]


def test_a_pooling_layer_loads_into_the_python_pooler(saved):
    d, cpp_weights = saved
    config, weights = pyramidion.load_checkpoint(d)
    pool = pyramidion.TopKPooler(config["d_model"], config["pooled_lengths"][0])
    pool.load_state_dict(pyramidion.pooler_state_dict(weights, 0))  # strict: names and shapes match
    assert torch.equal(pool.scorer.weight, cpp_weights["encoder_poolers.0.scorer.weight"])
    with pytest.raises(KeyError, match="no pooling layer 9"):
        pyramidion.pooler_state_dict(weights, 9)


def test_damaged_or_foreign_directories_are_refused_naming_the_file(saved, tmp_path):
    d, _ = saved
    truncated = tmp_path / "truncated"
    shutil.copytree(d, truncated)
    w = truncated / "weights.pt"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"weights.pt: \d+ bytes, but checksums.json records \d+"):
        pyramidion.load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="config.json: no such file"):
        pyramidion.load_checkpoint(tmp_path)
    future = tmp_path / "future"
    shutil.copytree(d, future)
    (future / "checksums.json").unlink()
    cfg = json.loads((future / "config.json").read_text())
    cfg["format_version"] = 99
    (future / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format_version 99"):
        pyramidion.load_checkpoint(future)


def test_the_example_runs_and_the_reader_needs_no_library(saved):
    d, _ = saved
    env = dict(os.environ, PYTHONPATH=PACKAGE_PYTHONPATH)
    out = subprocess.run([sys.executable, str(REPO / "python" / "examples" / "load_checkpoint.py"), str(d)],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "pooling layer 0: (2, " in out and "encoder_poolers" not in out.splitlines()[0]
    # Without any library: the weights still read, the pooling is skipped with the reason.
    env["PYRAMIDION_LIBRARY"] = "/nonexistent/libpyramidion_ops.so"
    out = subprocess.run([sys.executable, str(REPO / "python" / "examples" / "load_checkpoint.py"), str(d)],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "tensors" in out and "pooling skipped: pyramidion: no library at /nonexistent/libpyramidion_ops.so" in out


# A model directory in plain Python, as Seq2Seq::save lays it out: config.json, weights.pt (torch.save of a
# dict of name -> tensor, the format LibTorch's pickle_save writes) and checksums.json recording each file's
# bytes (its 64-bit hash is the C++ loader's to check; this reader checks the sizes).
WEIGHTS = {"encoder_poolers.0.scorer.weight": torch.arange(32.0).reshape(1, 32),
           "encoder_poolers.0.scorer.bias": torch.zeros(1)}


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _record_checksums(d: Path) -> None:
    files = {f.name: {"bytes": f.stat().st_size, "checksum": "0" * 16}
             for f in sorted(d.iterdir()) if f.is_file() and f.name != "checksums.json"}
    (d / "checksums.json").write_text(json.dumps({"format": 1, "files": files}, indent=2) + "\n")


def _write_model(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_bytes(CONFIG.read_bytes())
    (d / "weights.pt").write_bytes(_torch_bytes(WEIGHTS))
    _record_checksums(d)
    return d


def _replace(name, data):
    """Damage: `name` holds `data` (bytes, or a function of the file's JSON giving the new JSON); the sizes
    checksums.json records follow, so that only this damage shows."""
    def damage(d: Path) -> Path:
        f = d / name
        if callable(data):
            value = data(json.loads(f.read_text()))
            f.write_text(json.dumps(value))
        else:
            f.write_bytes(data)
        if name != "checksums.json":
            _record_checksums(d)
        return f
    return damage


def _config(**changes):
    return _replace("config.json", lambda c: {**c, **changes})


def _checksums(change):
    return _replace("checksums.json", change)


def _remove(name):
    def damage(d: Path) -> Path:
        (d / name).unlink()
        _record_checksums(d)
        return d / name
    return damage


def _make_directory(name):
    def damage(d: Path) -> Path:
        (d / name).unlink()
        (d / name).mkdir()
        return d / name
    return damage


def _cut(name, keep):
    def damage(d: Path) -> Path:
        f = d / name
        f.write_bytes(f.read_bytes()[:keep])
        return f
    return damage


def _missing_directory(d: Path) -> Path:
    shutil.rmtree(d)
    return d


# (id, damage -> the file the message must name, the error, a phrase of its reason, the chained cause or None).
# Every ValueError is exactly ValueError: json.JSONDecodeError and UnicodeDecodeError are ValueErrors too,
# but they do not name the file.
DAMAGED = [
    ("no directory", _missing_directory, FileNotFoundError, "no such directory", None),
    ("no weights.pt", _remove("weights.pt"), FileNotFoundError, "no such file", None),
    ("weights.pt a directory", _make_directory("weights.pt"), ValueError, "not a regular file", None),
    ("weights.pt empty", _replace("weights.pt", b""), ValueError, "empty file", None),
    ("weights.pt cut short", _replace("weights.pt", _torch_bytes(WEIGHTS)[:-100]), ValueError,
     "not a weights file", RuntimeError),
    ("weights.pt garbled", _replace("weights.pt", b"\x80\x02not a pickle"), ValueError, "not a weights file",
     pickle.UnpicklingError),
    ("weights.pt a plain pickle", _replace("weights.pt", pickle.dumps({"a": [1, 2]}, protocol=2)), ValueError,
     "not a weights file", RuntimeError),  # torch.load reads a bare pickle as its legacy format: "Invalid magic number"
    ("weights.pt a tensor", _replace("weights.pt", _torch_bytes(torch.ones(2))), ValueError, "got Tensor", None),
    ("weights.pt a number in the dict", _replace("weights.pt", _torch_bytes({"scale": 2})), ValueError,
     "entry 'scale' is a str -> int", None),
    ("weights.pt shorter than recorded", _cut("weights.pt", 200), ValueError, "but checksums.json records", None),
    ("config.json empty", _replace("config.json", b""), ValueError, "empty", json.JSONDecodeError),
    ("config.json not JSON", _replace("config.json", b'{"format_version": 1,'), ValueError, "not JSON",
     json.JSONDecodeError),
    ("config.json not UTF-8", _replace("config.json", b'{"d_model": "\xff"}'), ValueError, "not UTF-8",
     UnicodeDecodeError),
    ("config.json nested too deeply", _replace("config.json", b"[" * 100000), ValueError, "nested too deeply",
     RecursionError),
    ("config.json a list", _replace("config.json", b"[1, 2]"), ValueError, "expected a JSON object, got list", None),
    ("config.json no format_version", _replace("config.json", lambda c: {k: v for k, v in c.items()
                                                                          if k != "format_version"}),
     ValueError, "no format_version", None),
    ("config.json format_version a string", _config(format_version="1"), ValueError,
     'format_version "1" must be an integer', None),
    ("config.json format_version newer", _config(format_version=99), ValueError,
     "format_version 99 is newer than this version reads", None),
    ("config.json d_model a string", _config(d_model="32"), ValueError,
     'd_model is "32", expected a positive integer', None),
    ("config.json pooled_lengths a string", _config(pooled_lengths="32,16"), ValueError,
     'pooled_lengths is "32,16", expected a list of integers >= 0', None),
    ("config.json pooler.keep_order a string", _config(pooler={"base": 20.0, "keep_order": "yes"}), ValueError,
     'pooler.keep_order is "yes", expected true or false', None),
    ("checksums.json not JSON", _replace("checksums.json", b'{"format": 1, "files": {'), ValueError, "not JSON",
     json.JSONDecodeError),
    ("checksums.json a list", _replace("checksums.json", b"[]"), ValueError, "expected a JSON object, got list",
     None),
    ("checksums.json no format", _checksums(lambda s: {"files": s["files"]}), ValueError, 'no "format"', None),
    ("checksums.json format a string", _checksums(lambda s: {**s, "format": "1"}), ValueError,
     'format "1" is not a format version', None),
    ("checksums.json format newer", _checksums(lambda s: {**s, "format": 2}), ValueError,
     "format 2 is newer than this version reads", None),
    ("checksums.json files a list", _checksums(lambda s: {**s, "files": ["weights.pt"]}), ValueError,
     '"files" is ["weights.pt"]', None),
    ("checksums.json entry a number", _checksums(lambda s: {**s, "files": {"weights.pt": 5}}), ValueError,
     "the entry of weights.pt is 5", None),
    ("checksums.json bytes a string", _checksums(lambda s: {**s, "files": {"weights.pt": {"bytes": "12",
                                                                                           "checksum": "0"}}}),
     ValueError, 'the entry of weights.pt is {"bytes": "12"', None),
    ("checksums.json a path outside", _checksums(lambda s: {**s, "files": {"../config.json": {"bytes": 1,
                                                                                               "checksum": "0"}}}),
     ValueError, '"../config.json" is not a file name in the directory', None),
]


def test_a_directory_written_in_python_loads(tmp_path):
    config, weights = pyramidion.load_checkpoint(_write_model(tmp_path / "model"))
    assert config == json.loads(CONFIG.read_text())
    assert sorted(weights) == sorted(WEIGHTS) and all(torch.equal(weights[n], t) for n, t in WEIGHTS.items())
    # 0 in pooled_lengths is "no pooling after that layer", not damage.
    _config(pooled_lengths=[32, 0])(tmp_path / "model")
    assert pyramidion.load_checkpoint(tmp_path / "model").config["pooled_lengths"] == [32, 0]


@pytest.mark.parametrize("damage, error, reason, cause", [c[1:] for c in DAMAGED], ids=[c[0] for c in DAMAGED])
def test_each_damage_is_refused_with_the_documented_error_naming_the_file(tmp_path, damage, error, reason, cause):
    path = damage(_write_model(tmp_path / "model"))
    with pytest.raises(error) as refused:
        pyramidion.load_checkpoint(tmp_path / "model")
    message = str(refused.value)
    assert type(refused.value) is error, f"{type(refused.value).__name__}: {message}"
    assert str(path) in message and reason in message, message
    if cause is not None:
        assert isinstance(refused.value.__cause__, cause), repr(refused.value.__cause__)


class _RunsCode:
    """Unpickles by calling os.system: what a hostile weights.pt would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo ran > {shlex.quote(str(self.marker))}",)


def test_a_weights_file_that_would_run_code_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    d = _replace("weights.pt", _torch_bytes({**WEIGHTS, "evil": _RunsCode(marker)}))(_write_model(tmp_path / "m"))
    torch.load(d, weights_only=False)  # the payload is real: an unguarded load runs it
    assert marker.is_file()
    marker.unlink()
    for load in (pyramidion.load_checkpoint, lambda _: pyramidion.load_weights(d)):
        with pytest.raises(ValueError, match=r"weights\.pt: not a weights file") as refused:
            load(tmp_path / "m")
        assert isinstance(refused.value.__cause__, pickle.UnpicklingError)
        assert not marker.exists(), "the pickle's payload ran"
