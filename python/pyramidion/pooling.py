"""TopKPooler: the paper's trainable representation pooling (arXiv 2009.05169, Section 3), the
Python twin of the C++ ``pyramidion::TopKPooler`` (include/pyramidion/pooling.h): a scorer
Linear(d, 1) with scores sigmoid(logit) + score_epsilon, then the successive-halving soft top-k
down to ``target_length``. Its parameters have the C++ module's names (``scorer.weight``,
``scorer.bias``), so a checkpoint's ``encoder_poolers.<i>.scorer.*`` load into it as they are.

Shapes: b batch, n input tokens, k kept tokens (target_length), d model size.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn

from .topk import soft_topk


class PoolerOutput(NamedTuple):
    values: torch.Tensor   # (b, k, d) pooled representations (zero where mask is false)
    mask: torch.Tensor     # (b, k) bool, true where the output holds a real input
    indices: torch.Tensor  # (b, k) int64 input position of each output's winner
    scores: torch.Tensor   # (b, k) pooled scores


def _sizes(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


class TopKPooler(nn.Module):
    """``TopKPooler(d_model, target_length, base=20.0, keep_order=True, hard_at_inference=False,
    score_epsilon=1e-5)``; the defaults are the C++ PoolerConfig's."""

    def __init__(self, d_model: int, target_length: int, *, base: float = 20.0, keep_order: bool = True,
                 hard_at_inference: bool = False, score_epsilon: float = 1e-5):
        super().__init__()
        if d_model < 1:
            raise ValueError(f"TopKPooler: d_model must be >= 1, got {d_model}")
        if target_length < 1:
            raise ValueError(f"TopKPooler: target_length must be >= 1, got {target_length}")
        if not (base > 1.0) or math.isinf(base):
            raise ValueError(f"TopKPooler: base = {base} must be finite and > 1")
        if not (score_epsilon >= 0.0) or math.isinf(score_epsilon):
            raise ValueError(f"TopKPooler: score_epsilon = {score_epsilon} must be finite and >= 0")
        self.d_model = d_model
        self.target_length = target_length
        self.base = base
        self.keep_order = keep_order
        self.hard_at_inference = hard_at_inference
        self.score_epsilon = score_epsilon
        self.scorer = nn.Linear(d_model, 1)  # the C++ Linear's initialisation is torch.nn.Linear's

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, target_length={self.target_length}, base={self.base}, "
                f"keep_order={self.keep_order}, hard_at_inference={self.hard_at_inference}")

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """sigmoid(scorer(x)) + score_epsilon: (b, n, d) -> (b, n), in x's dtype."""
        if x.dim() != 3 or x.size(2) != self.d_model:
            raise ValueError(f"TopKPooler: x must have shape (b, n, d_model = {self.d_model}), got {_sizes(x)}")
        return (torch.sigmoid(self.scorer(x).squeeze(-1)) + self.score_epsilon).to(x.dtype)  # (b, n)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> PoolerOutput:
        s = self.score(x)  # (b, n)
        b, n, _ = x.shape
        k = self.target_length
        if n <= k:
            # Nothing to pool: pass through, as the C++ pooler does.
            m = mask if mask is not None else torch.ones(b, n, dtype=torch.bool, device=x.device)
            if m.dim() != 2 or m.size(0) != b or m.size(1) != n:
                raise ValueError(f"TopKPooler: mask must have shape (b, n) = [{b}, {n}], got {_sizes(m)}")
            return PoolerOutput(x, m, torch.arange(n, device=x.device).expand(b, n), s)
        r = soft_topk(x, s, k, mask=mask, base=self.base, keep_order=self.keep_order,
                      hard=self.hard_at_inference and not self.training)
        return PoolerOutput(r.values, r.mask, r.indices, r.scores)
