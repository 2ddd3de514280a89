"""Loading the C++ library from Python (python/pyramidion/_library.py): the build's record matches
this torch; a mismatched torch, CUDA or ABI, a missing library or a missing record each give one
clear ImportError before anything is loaded."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import INSTALLED, PACKAGE_PYTHONPATH, REPO
from pyramidion import _library


def test_the_build_record_matches_this_torch_and_the_operator_loads():
    path = _library.library_path()
    info = json.loads((path.resolve().parent / "pyramidion_build.json").read_text())
    assert info["torch_version"] == torch.__version__.split("+")[0]
    _library.check_build_info(info, path)  # no exception
    _library.load()
    assert hasattr(torch.ops.pyramidion, "successive_halving_topk")


def test_another_torch_version_is_refused_naming_both():
    with pytest.raises(ImportError, match=r"built against LibTorch 1\.13\.1, but this Python has torch " +
                       torch.__version__.replace("+", r"\+")):
        _library.check_build_info({"torch_version": "1.13.1", "cuda": False}, _library.library_path())


def test_a_cuda_build_without_cuda_in_torch_is_refused(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ImportError, match="built with CUDA, but this torch"):
        _library.check_build_info({"torch_version": torch.__version__.split("+")[0], "cuda": True}, "lib")


def test_another_cxx_abi_is_refused():
    other = not torch._C._GLIBCXX_USE_CXX11_ABI
    with pytest.raises(ImportError, match="_GLIBCXX_USE_CXX11_ABI"):
        _library.check_build_info({"torch_version": torch.__version__.split("+")[0], "cuda": False,
                                   "cxx11_abi": other}, "lib")


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=PACKAGE_PYTHONPATH, **env),
                          capture_output=True, text=True)


def test_a_missing_library_or_record_is_one_clear_import_error(tmp_path):
    r = run_python("import pyramidion; pyramidion.soft_topk", PYRAMIDION_LIBRARY=str(tmp_path / "libpyramidion_ops.so"))
    assert r.returncode != 0 and f"ImportError: pyramidion: no library at {tmp_path}/libpyramidion_ops.so" in r.stderr
    (tmp_path / "libpyramidion_ops.so").write_bytes(b"")  # a library without its build record
    r = run_python("import pyramidion; pyramidion.soft_topk", PYRAMIDION_LIBRARY=str(tmp_path / "libpyramidion_ops.so"))
    assert r.returncode != 0 and "pyramidion_build.json is missing" in r.stderr
    # A record of another torch: refused before the (here empty, unloadable) library is opened.
    (tmp_path / "pyramidion_build.json").write_text(json.dumps({"torch_version": "0.1.0", "cuda": False}))
    r = run_python("import pyramidion; pyramidion.soft_topk", PYRAMIDION_LIBRARY=str(tmp_path / "libpyramidion_ops.so"))
    assert r.returncode != 0 and "built against LibTorch 0.1.0" in r.stderr, r.stderr


def test_importing_the_package_loads_no_library():
    r = run_python("import torch, pyramidion; pyramidion.load_checkpoint; "
                   "print(hasattr(torch.ops.pyramidion, 'successive_halving_topk'))",
                   PYRAMIDION_LIBRARY="/nonexistent/libpyramidion_ops.so")
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_the_package_under_test_is_the_one_intended():
    import pyramidion
    package = os.path.realpath(os.path.dirname(pyramidion.__file__))
    if INSTALLED:  # pip's copy in site-packages, with its own library inside it
        assert package.endswith(os.path.join("site-packages", "pyramidion")), package
        assert os.path.realpath(_library.library_path()) == os.path.join(package, "libpyramidion_ops.so")
    else:
        assert package == str(REPO / "python" / "pyramidion"), package


def test_one_version_everywhere():
    import pyramidion
    info = json.loads((_library.library_path().resolve().parent / "pyramidion_build.json").read_text())
    assert info["pyramidion_version"] == pyramidion.__version__
    if INSTALLED:
        from importlib.metadata import version
        assert version("pyramidion") == pyramidion.__version__


def test_a_package_with_its_library_refuses_another_torch_at_import(tmp_path):
    # The layout pip installs: the package with libpyramidion_ops.so and its record inside it.
    import shutil
    import pyramidion
    package = tmp_path / "pyramidion"
    shutil.copytree(os.path.dirname(pyramidion.__file__), package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "pyramidion_build.json"))
    (package / "libpyramidion_ops.so").write_bytes(b"")  # never opened: the record is refused first
    (package / "pyramidion_build.json").write_text(json.dumps({"torch_version": "1.13.1", "cuda": False}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYRAMIDION_LIBRARY", "PYRAMIDION_BUILD_DIR")}
    r = subprocess.run([sys.executable, "-c", "import pyramidion"], env=dict(env, PYTHONPATH=str(tmp_path)),
                       capture_output=True, text=True)
    assert r.returncode != 0, r.stdout
    assert "ImportError: pyramidion: the library at" in r.stderr and "built against LibTorch 1.13.1" in r.stderr, r.stderr
    # The same package with this torch's record imports, and names its own library.
    info = {"torch_version": torch.__version__.split("+")[0], "cuda": False}
    (package / "pyramidion_build.json").write_text(json.dumps(info))
    r = subprocess.run([sys.executable, "-c", "import pyramidion; print(pyramidion.library_path())"],
                       env=dict(env, PYTHONPATH=str(tmp_path)), capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == str(package / "libpyramidion_ops.so"), r.stderr
