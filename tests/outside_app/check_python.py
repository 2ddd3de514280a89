"""The installed Python package (cmake --install: <prefix>/share/pyramidion/python) finds the
installed library beside it, with no PYRAMIDION_* variable set, and runs the operator."""
import os
import sys

prefix = os.path.realpath(sys.argv[1])
for v in ("PYRAMIDION_LIBRARY", "PYRAMIDION_BUILD_DIR"):
    os.environ.pop(v, None)
sys.path.insert(0, os.path.join(prefix, "share", "pyramidion", "python"))

import torch  # noqa: E402
import pyramidion  # noqa: E402

assert os.path.realpath(pyramidion.__file__).startswith(prefix + os.sep), pyramidion.__file__
r = pyramidion.soft_topk(torch.randn(2, 9, 3), torch.rand(2, 9), 4)
assert r.values.shape == (2, 4, 3), r.values.shape
lib = os.path.realpath(pyramidion.library_path())
assert lib.startswith(prefix + os.sep), lib
print(f"installed python package: ok ({lib})")
