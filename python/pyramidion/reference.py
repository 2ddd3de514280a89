"""The successive-halving top-k in pure, vectorised PyTorch: the rules of include/pyramidion/topk.h
written with batched torch ops (a stable sort and a few gathers per round, the representations
blended round by round) and differentiated by autograd. No pyramidion C++.

It is the obvious formulation that python/benchmarks/topk_bench.py times the operator against,
and an independent oracle in python/tests (its gradients come from autograd, not from the
operator's analytic backward). It blends x in every round (O(b * n * d) memory per round, all
saved for backward) where the operator plays the tournament on the scores and reads x once.
Exact for finite base^s (scores below ~ 88 / ln(base) in float32); the operator also handles
overflowing base^s (docs: topk.h).

Shapes: b batch, n inputs, m candidates this round, m2 next round, k outputs, d representation size.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch



def round_sizes(n: int, k: int) -> List[int]:
    """n, then max(k, ceil(m / 2)) until k, with at least one round."""
    sizes = [n]
    while True:
        sizes.append(max(k, (sizes[-1] + 1) // 2))
        if sizes[-1] <= k:
            return sizes


def successive_halving_topk(x: torch.Tensor, scores: torch.Tensor, k: int, mask: Optional[torch.Tensor] = None,
                            base: float = 20.0, keep_order: bool = False):
    """Returns (values (b, k, d), scores (b, k), mask (b, k), indices (b, k)), as the operator does."""
    b, n, d = x.shape
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=x.device)
    log_base = math.log(base)
    s = scores.masked_fill(~mask, 0)                  # (b, n) padding scores never read
    v = x.masked_fill(~mask.unsqueeze(-1), 0)         # (b, n, d) padding rows zero
    valid = mask                                      # (b, m)
    pos = torch.arange(n, device=x.device).expand(b, n)  # (b, m) each candidate's winner
    real = mask.sum(1, keepdim=True)                  # (b, 1) real candidates
    for m2 in round_sizes(n, k)[1:]:
        plays = real > k                                                          # (b, 1)
        key = torch.where(plays, s.detach(), torch.zeros_like(s)).masked_fill(~valid, -math.inf)
        perm = torch.sort(key, dim=1, descending=True, stable=True).indices      # (b, m)
        new_real = torch.where(plays, ((real + 1) // 2).clamp_min(k), real)      # (b, 1)
        byes = 2 * new_real - real                                               # (b, 1)
        slot = torch.arange(m2, device=x.device).unsqueeze(0)                    # (1, m2)
        paired = (slot >= byes) & (slot < new_real)                              # (b, m2)
        padding = slot >= new_real                                               # (b, m2)
        # Byes and pair heads stay at their sorted slot, head c + j meets the (real - 1 - j)-th,
        # padding slots take the padding after the real candidates.
        ia = perm.gather(1, torch.where(padding, real + slot - new_real, slot))  # (b, m2)
        ib = perm.gather(1, torch.where(paired, real - 1 - slot + byes, torch.zeros_like(slot)))  # (b, m2)
        va, vb = valid.gather(1, ia), valid.gather(1, ib) & paired                # (b, m2)
        sa = s.gather(1, ia).masked_fill(~va, 0)                                  # (b, m2)
        sb = s.gather(1, ib).masked_fill(~vb, 0)                                  # (b, m2)
        w = torch.sigmoid(torch.exp(sa * log_base) - torch.exp(sb * log_base))    # (b, m2) softmax of base^s
        w = torch.where(vb, torch.where(va, w, torch.zeros_like(w)), torch.ones_like(w))
        s = torch.where(va | vb, w * sa + (1 - w) * sb, torch.zeros_like(w))      # (b, m2)
        xa = v.gather(1, ia.unsqueeze(-1).expand(b, m2, d))                       # (b, m2, d)
        xb = v.gather(1, ib.unsqueeze(-1).expand(b, m2, d)).masked_fill(~vb.unsqueeze(-1), 0)  # (b, m2, d)
        v = w.unsqueeze(-1) * xa + (1 - w).unsqueeze(-1) * xb                     # (b, m2, d)
        pos = pos.gather(1, ia)                                                   # (b, m2)
        valid = va | vb
        real = new_real
    if keep_order:
        order = torch.sort(pos + (~valid).long() * n, dim=1, stable=True).indices  # (b, k) invalid last
        v = v.gather(1, order.unsqueeze(-1).expand(b, k, d))
        s, valid, pos = s.gather(1, order), valid.gather(1, order), pos.gather(1, order)
    return v, s, valid, pos
