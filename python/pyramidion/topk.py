"""The successive-halving soft top-k from Python: torch.ops.pyramidion.successive_halving_topk.

Paper: Pietruszka, Borchmann, Garncarek, "Successive Halving Top-k Operator" (arXiv 2010.15552).
The rules of the tournament are in include/pyramidion/topk.h; this is the same operator the C++
API calls, with the same checks and messages (raised as RuntimeError, torch's type for errors from
C++ operators), autograd (the analytic backward) and a Meta kernel, so ``torch.compile`` traces it
(``fullgraph=True``).

Shapes: b batch, n inputs, k outputs, d representation size.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from . import _library

_library.load()
_op = torch.ops.pyramidion.successive_halving_topk.default  # the overload: no lookup per call


class TopKResult(NamedTuple):
    """What soft_topk and hard_topk return (the C++ ``TopKResult``)."""
    values: torch.Tensor   # (b, k, d) pooled representations; zero where mask is false
    scores: torch.Tensor   # (b, k) pooled scores; zero where mask is false
    mask: torch.Tensor     # (b, k) bool, true where the output holds at least one real input
    indices: torch.Tensor  # (b, k) int64, input position of each output's winner


def soft_topk(x: torch.Tensor, scores: torch.Tensor, k: int, *, mask: Optional[torch.Tensor] = None,
              base: float = 20.0, keep_order: bool = False, hard: bool = False) -> TopKResult:
    """Differentiable successive-halving top-k of ``x`` (b, n, d) by ``scores`` (b, n).

    ``x`` and ``scores`` float32, float64, bfloat16 or float16 of one dtype and device; 1 <= k <= n.
    ``mask`` (b, n) bool, true for real tokens (None: all real). ``base`` > 1: the pair weights are
    softmax([base^s_a, base^s_b]) (the paper's 20). ``keep_order`` orders the outputs by their
    winners' input positions. ``hard`` selects the exact top-k instead (inference; gradients flow
    through the gather). Gradients reach ``x`` and ``scores``.
    """
    values, out_scores, out_mask, indices = _op(x, scores, k, mask, base, keep_order, hard)
    return TopKResult(values, out_scores, out_mask, indices)


def hard_topk(x: torch.Tensor, scores: torch.Tensor, k: int, *, mask: Optional[torch.Tensor] = None,
              keep_order: bool = False) -> TopKResult:
    """The exact top-k: the k best-scored real tokens (a stable sort), values = x[indices]."""
    return soft_topk(x, scores, k, mask=mask, keep_order=keep_order, hard=True)
