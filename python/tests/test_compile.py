"""torch.compile(fullgraph=True) of modules that use the operator: no graph break (the Meta
kernels give the shapes, the Autograd kernel's backward is traced into the joint graph), and the
compiled outputs and gradients equal eager mode's."""
import pytest
import torch
from torch import nn

import pyramidion


class Block(nn.Module):
    """Linear -> TopKPooler -> Linear, the shape of a pooling encoder's step."""

    def __init__(self, d=16, k=8, **kw):
        super().__init__()
        self.inp = nn.Linear(d, d)
        self.pool = pyramidion.TopKPooler(d, k, **kw)
        self.out = nn.Linear(d, 3)

    def forward(self, x, mask):
        p = self.pool(torch.relu(self.inp(x)), mask)
        return (self.out(p.values) * p.mask.unsqueeze(-1)).sum() + p.scores.sum()


def run(model, x, mask):
    model.zero_grad()
    xg = x.clone().requires_grad_(True)
    loss = model(xg, mask)
    loss.backward()
    return [loss.detach(), xg.grad] + [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_module_equals_eager_forward_and_backward(backend):
    torch.manual_seed(0)
    model = Block()
    x = torch.randn(3, 37, 16)
    mask = torch.rand(3, 37) < 0.8
    eager = run(model, x, mask)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    got = run(compiled, x, mask)
    tol = {} if backend == "aot_eager" else {"rtol": 1e-5, "atol": 1e-5}  # inductor fuses the Linears
    for a, c in zip(got, eager):
        if tol:
            torch.testing.assert_close(a, c, **tol)
        else:
            assert torch.equal(a, c)


def test_compiled_operator_with_keep_order_and_hard_selection():
    def f(x, s, mask):
        soft = pyramidion.soft_topk(x, s, 5, mask=mask, keep_order=True)
        hard = pyramidion.hard_topk(x, s, 5, mask=mask)
        return soft.values.sum(-1) + hard.values.sum(-1), soft.indices, hard.indices

    torch._dynamo.reset()
    g = torch.compile(f, fullgraph=True, backend="aot_eager")
    x, s = torch.randn(2, 23, 4, dtype=torch.float64), torch.rand(2, 23, dtype=torch.float64)
    mask = torch.rand(2, 23) < 0.7
    for a, c in zip(g(x, s, mask), f(x, s, mask)):
        assert torch.equal(a, c)


def test_dynamic_shapes_give_eagers_results_for_several_lengths():
    # The tree's depth depends on n / k, so the Meta kernels specialize each length (a graph per n);
    # what matters is that every compiled result equals eager mode's.
    torch.manual_seed(2)
    pool = pyramidion.TopKPooler(8, 4)

    def f(x, mask):
        p = pool(x, mask)
        return p.values.sum() + p.scores.sum()

    torch._dynamo.reset()
    g = torch.compile(f, fullgraph=True, dynamic=True, backend="aot_eager")
    for n in (17, 23, 40):
        x = torch.randn(2, n, 8, requires_grad=True)
        mask = torch.rand(2, n) < 0.8
        compiled = g(x, mask)
        compiled.backward()
        grad = x.grad.clone()
        x.grad = None
        eager = f(x, mask)
        eager.backward()
        assert torch.equal(compiled, eager) and torch.equal(grad, x.grad), n
