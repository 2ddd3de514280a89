"""Finds and loads the operator's C++ library (``libpyramidion_ops.so``, CMake's target
``pyramidion::ops``), once.

The library is built by CMake, never at import time (no ``torch.utils.cpp_extension``): either by
``pip install --no-build-isolation .`` (scikit-build-core, against the torch already installed),
which puts it inside this package, or by ``scripts/build.sh`` with the whole C++ library. Beside
the library CMake writes ``pyramidion_build.json`` (the LibTorch it was built against, with or
without CUDA, the C++ ABI); the Python ``torch`` must match it, which is checked *before* the
library is loaded, so that a mismatch is one clear ImportError instead of an undefined symbol or a
crash. A package installed with its library checks at ``import pyramidion``
(:func:`check_package_library`); otherwise the check comes with the first use of the operator.

Where the library is looked for, first match wins:
  1. ``$PYRAMIDION_LIBRARY``: the path of the library;
  2. ``$PYRAMIDION_BUILD_DIR/libpyramidion_ops.so`` (a relative path is relative to the repository);
  3. inside this package (``pip install``);
  4. installed by ``cmake --install`` (this package at ``<prefix>/share/pyramidion/python``): the
     library in ``<prefix>/lib*/``;
  5. ``build/libpyramidion_ops.so`` of the repository this package sits in (``python/..``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent.parent
_LIBRARY_NAME = "libpyramidion_ops.so"
_BUILD_INFO = "pyramidion_build.json"
_loaded: Path | None = None


def library_path() -> Path:
    """The ``libpyramidion_ops.so`` that :func:`load` would load (it need not exist)."""
    explicit = os.environ.get("PYRAMIDION_LIBRARY")
    if explicit:
        return Path(explicit)
    build = os.environ.get("PYRAMIDION_BUILD_DIR")
    if build is None:
        if (_PACKAGE / _LIBRARY_NAME).is_file():
            return _PACKAGE / _LIBRARY_NAME
        if _PACKAGE.parent.name == "python" and _PACKAGE.parents[1].name == "pyramidion" and \
                _PACKAGE.parents[2].name == "share":
            prefix = _PACKAGE.parents[3]
            installed = sorted(prefix.glob(f"lib*/{_LIBRARY_NAME}")) + sorted(prefix.glob(f"lib*/*/{_LIBRARY_NAME}"))
            if installed:
                return installed[0]
    path = Path(build or "build")
    if not path.is_absolute():
        path = _REPO / path
    return path / _LIBRARY_NAME


def _torch_release(version: str) -> str:
    """'2.15.0+cu132' -> '2.15.0' (LibTorch's CMake version has no local part)."""
    return version.split("+", 1)[0]


def check_build_info(info: dict, where: Path) -> None:
    """Raises ImportError when the library described by ``info`` cannot run with this torch."""
    built = str(info.get("torch_version", ""))
    have = _torch_release(torch.__version__)
    if built != have:
        raise ImportError(
            f"pyramidion: the library at {where} was built against LibTorch {built}, but this Python "
            f"has torch {torch.__version__}; rebuild it against this torch (pip install --no-build-isolation "
            f"--force-reinstall <pyramidion source>, or scripts/build.sh with PYRAMIDION_VENV pointing at this "
            f"environment) or use the Python it was built for")
    if bool(info.get("cuda")) and torch.version.cuda is None:
        raise ImportError(
            f"pyramidion: the library at {where} was built with CUDA, but this torch {torch.__version__} "
            f"has none; install a CUDA build of torch {built} or rebuild with -DPYRAMIDION_WITH_CUDA=OFF")
    abi = info.get("cxx11_abi")
    if abi is not None and bool(abi) != bool(torch._C._GLIBCXX_USE_CXX11_ABI):
        raise ImportError(
            f"pyramidion: the library at {where} uses _GLIBCXX_USE_CXX11_ABI={int(bool(abi))}, this torch "
            f"uses {int(torch._C._GLIBCXX_USE_CXX11_ABI)}; rebuild against this torch")


def load() -> Path:
    """Loads the library into this process (registering torch.ops.pyramidion.*) and returns its path."""
    global _loaded
    if _loaded is not None:
        return _loaded
    path = library_path()
    if not path.is_file():
        raise ImportError(
            f"pyramidion: no library at {path}; install the package with its library (pip install "
            f"--no-build-isolation <pyramidion source>) or build it with scripts/build.sh, or set "
            f"PYRAMIDION_LIBRARY to the path of {_LIBRARY_NAME} (or PYRAMIDION_BUILD_DIR to its build directory)")
    _check_record(path)
    torch.ops.load_library(str(path))
    _loaded = path
    return path


def check_package_library() -> None:
    """At ``import pyramidion``: a package installed with its own library (``pip install``) refuses
    a torch that the library was not built for, before anything else runs. Nothing to check when
    the package has no library inside (a source tree, ``cmake --install``) or when
    ``PYRAMIDION_LIBRARY`` or ``PYRAMIDION_BUILD_DIR`` names another one: then :func:`load` checks."""
    path = library_path()
    if path.parent == _PACKAGE and (_PACKAGE / _BUILD_INFO).is_file():
        _check_record(path)


def _check_record(path: Path) -> None:
    """Checks the build record beside the library at ``path`` against this torch (ImportError)."""
    info_path = path.resolve().parent / _BUILD_INFO
    if not info_path.is_file():
        raise ImportError(f"pyramidion: {info_path} is missing: the library at {path} was not built by this "
                          f"project's CMake (which writes it beside the library); rebuild")
    check_build_info(json.loads(info_path.read_text()), path)
