"""Checkpoints from Python (python/pyramidion/checkpoint.py): a model saved by the C++
Seq2Seq::save reads back, with only torch, as the tensors the C++ Seq2Seq::load holds; damaged
or foreign directories are refused naming the file; the example script runs."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pyramidion
from conftest import REPO

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
    with pytest.raises(FileNotFoundError, match="no config.json"):
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
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    out = subprocess.run([sys.executable, str(REPO / "python" / "examples" / "load_checkpoint.py"), str(d)],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "pooling layer 0: (2, " in out and "encoder_poolers" not in out.splitlines()[0]
    # Without any library: the weights still read, the pooling is skipped with the reason.
    env["PYRAMIDION_LIBRARY"] = "/nonexistent/libpyramidion.so"
    out = subprocess.run([sys.executable, str(REPO / "python" / "examples" / "load_checkpoint.py"), str(d)],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert "tensors" in out and "pooling skipped: pyramidion: no library at /nonexistent/libpyramidion.so" in out
