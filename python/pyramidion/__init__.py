"""pyramidion from Python: the successive-halving soft top-k operator, the trainable pooler, and
checkpoints' weights.

    import pyramidion
    r = pyramidion.soft_topk(x, scores, k=512)        # x (b, n, d), scores (b, n) -> r.values (b, k, d)
    pool = pyramidion.TopKPooler(d_model=512, target_length=2048)
    ckpt = pyramidion.load_checkpoint("runs/small/latest")   # needs only torch

The operator and the pooler load the C++ library built by CMake on first use (pyramidion._library
says where it is looked for and how the torch version is checked); the checkpoint reader needs
only torch.
"""
from __future__ import annotations

from .checkpoint import Checkpoint, load_checkpoint, load_weights, pooler_state_dict

__all__ = ["soft_topk", "hard_topk", "TopKResult", "TopKPooler", "PoolerOutput", "Checkpoint",
           "load_checkpoint", "load_weights", "pooler_state_dict", "library_path"]
__version__ = "0.1.0"

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
