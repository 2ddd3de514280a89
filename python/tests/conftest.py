"""Fixtures of the Python package's tests: the C++ API as operators (tests/python/cpp_api.cpp).

ctest sets PYRAMIDION_BUILD_DIR, PYRAMIDION_CPP_API and PYTHONPATH; by hand, from the repository:
    PYTHONPATH=python python -m pytest python/tests      (after scripts/build.sh)
"""
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "python"))


def _cpp_api_path() -> Path:
    explicit = os.environ.get("PYRAMIDION_CPP_API")
    if explicit:
        return Path(explicit)
    build = Path(os.environ.get("PYRAMIDION_BUILD_DIR", REPO / "build"))
    return build / "tests" / "libpyramidion_cpp_api.so"


@pytest.fixture(scope="session")
def cpp():
    """torch.ops.pyramidion_cpp: the library's C++ functions, forward and backward in C++."""
    import pyramidion.topk  # noqa: F401  (loads libpyramidion first, which the module links)
    path = _cpp_api_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not built (the test build makes it: scripts/build.sh)")
    torch.ops.load_library(str(path))
    return torch.ops.pyramidion_cpp
