"""Fixtures of the Python package's tests: the C++ API as operators (tests/python/cpp_api.cpp).

ctest sets PYRAMIDION_BUILD_DIR, PYRAMIDION_CPP_API and PYTHONPATH; by hand, from the repository:
    PYTHONPATH=python python -m pytest python/tests      (after scripts/build.sh)

With PYRAMIDION_TEST_INSTALLED=1 (scripts/test_pip_install.sh) the suite tests the package that pip
installed instead of the source tree: python/ is not put on sys.path, subprocesses get no
PYTHONPATH, and the tests that compare with the whole C++ library (the `cpp` fixture, which the
wheel does not contain) are deselected: they run in the source tree's pass (ctest python.*).
"""
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent.parent
INSTALLED = os.environ.get("PYRAMIDION_TEST_INSTALLED") == "1"
# PYTHONPATH for a subprocess that must import the package under test.
PACKAGE_PYTHONPATH = "" if INSTALLED else str(REPO / "python")
if not INSTALLED:
    sys.path.insert(0, str(REPO / "python"))


def pytest_collection_modifyitems(config, items):
    if not INSTALLED:
        return
    deselected = [item for item in items if "cpp" in getattr(item, "fixturenames", ())]
    if deselected:
        items[:] = [item for item in items if item not in deselected]
        config.hook.pytest_deselected(items=deselected)


def _cpp_api_path() -> Path:
    explicit = os.environ.get("PYRAMIDION_CPP_API")
    if explicit:
        return Path(explicit)
    build = Path(os.environ.get("PYRAMIDION_BUILD_DIR", REPO / "build"))
    return build / "tests" / "libpyramidion_cpp_api.so"


@pytest.fixture(scope="session")
def cpp():
    """torch.ops.pyramidion_cpp: the library's C++ functions, forward and backward in C++."""
    import pyramidion.topk  # noqa: F401  (loads libpyramidion_ops first: the module links libpyramidion, which links it)
    path = _cpp_api_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not built (the test build makes it: scripts/build.sh)")
    torch.ops.load_library(str(path))
    return torch.ops.pyramidion_cpp
