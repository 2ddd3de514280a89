"""pyramidion from Python: the successive-halving soft top-k operator, the trainable pooler, and
checkpoints' weights.

    import pyramidion
    r = pyramidion.soft_topk(x, scores, k=512)        # x (b, n, d), scores (b, n) -> r.values (b, k, d)
    pool = pyramidion.TopKPooler(d_model=512, target_length=2048)
    ckpt = pyramidion.load_checkpoint("runs/small/latest")   # needs only torch

The operator and the pooler load the operator's C++ library (libpyramidion_ops.so: inside this
package after `pip install --no-build-isolation .`, or a CMake build's) on first use;
pyramidion._library says where it is looked for and how the torch version is checked. The
checkpoint reader needs only torch.
"""
from __future__ import annotations

from ._library import check_package_library as _check_package_library
from ._version import __version__
from .checkpoint import Checkpoint, load_checkpoint, load_weights, pooler_state_dict

__all__ = ["soft_topk", "hard_topk", "TopKResult", "TopKPooler", "PoolerOutput", "Checkpoint",
           "load_checkpoint", "load_weights", "pooler_state_dict", "library_path"]

_check_package_library()

_LAZY = {"soft_topk": "topk", "hard_topk": "topk", "TopKResult": "topk", "TopKPooler": "pooling",
         "PoolerOutput": "pooling"}


def __getattr__(name):  # PEP 562: the C++ library is loaded only when its operator is first needed
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name == "library_path":
        from ._library import library_path
        return library_path
    raise AttributeError(f"module 'pyramidion' has no attribute {name!r}")
