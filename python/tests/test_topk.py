"""torch.ops.pyramidion.successive_halving_topk from Python (python/pyramidion/topk.py): float64
gradient checks, equality with the C++ API on the same inputs, with the independent pure-PyTorch
formulation (pyramidion/reference.py, differentiated by autograd), inference mode, torch's op
checks, and the C++ messages for bad inputs."""
import math

import pytest
import torch
from torch.library import opcheck

import pyramidion
from pyramidion import reference

# (b, n, k): powers of two, byes (n/k not a power of two), k = 1, k = n, one example.
SHAPES = [(2, 16, 4), (3, 37, 5), (2, 9, 1), (3, 12, 12), (1, 50, 7), (4, 33, 16)]


def inputs(b, n, d, dtype, seed, masked):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, d, generator=g, dtype=torch.float64).to(dtype)
    s = torch.rand(b, n, generator=g, dtype=torch.float64).to(dtype)
    mask = None
    if masked:
        mask = torch.rand(b, n, generator=g) < 0.7
        mask[0, :] = True           # one example without padding
        if b > 1:
            mask[-1, 1:] = False    # one with a single real token
    return x, s, mask


@pytest.mark.parametrize("b,n,k", SHAPES)
@pytest.mark.parametrize("keep_order", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_float64_x_and_scores(b, n, k, keep_order, masked):
    x, s, mask = inputs(b, n, 3, torch.float64, seed=n * 7 + k, masked=masked)
    x.requires_grad_(True)
    s.requires_grad_(True)

    def f(x, s):
        r = pyramidion.soft_topk(x, s, k, mask=mask, keep_order=keep_order)
        return r.values, r.scores

    assert torch.autograd.gradcheck(f, (x, s), eps=1e-6, atol=1e-7)


def test_gradcheck_of_the_hard_selection():
    x, s, mask = inputs(3, 20, 4, torch.float64, seed=3, masked=True)
    x.requires_grad_(True)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, s: pyramidion.hard_topk(x, s, 6, mask=mask, keep_order=True)[:2], (x, s))


def python_forward_backward(x, s, k, mask, base, keep_order, hard, gv, gs):
    x = x.detach().requires_grad_(True)
    s = s.detach().requires_grad_(True)
    r = pyramidion.soft_topk(x, s, k, mask=mask, base=base, keep_order=keep_order, hard=hard)
    torch.autograd.backward([r.values, r.scores], [gv, gs])
    return (r.values.detach(), r.scores.detach(), r.mask, r.indices, x.grad, s.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("b,n,k", SHAPES)
@pytest.mark.parametrize("hard", [False, True])
def test_equals_the_cpp_api_bit_for_bit(cpp, dtype, b, n, k, hard):
    for keep_order in (False, True):
        for masked in (False, True):
            x, s, mask = inputs(b, n, 8, dtype, seed=b * 100 + n + k, masked=masked)
            g = torch.Generator().manual_seed(5)
            gv = torch.randn(b, k, 8, generator=g, dtype=torch.float64).to(dtype)
            gs = torch.randn(b, k, generator=g, dtype=torch.float64).to(dtype)
            base = 20.0 if not masked else 7.5
            want = cpp.topk(x, s, k, mask, base, keep_order, hard, gv, gs)
            got = python_forward_backward(x, s, k, mask, base, keep_order, hard, gv, gs)
            for name, a, c in zip(["values", "scores", "mask", "indices", "grad_x", "grad_scores"], got, want):
                assert a.dtype == c.dtype and a.shape == c.shape, name
                assert torch.equal(a, c), f"{name} differs (keep_order={keep_order}, masked={masked})"


@pytest.mark.parametrize("keep_order", [False, True])
def test_hard_equals_the_cpp_hard_topk(cpp, keep_order):
    x, s, mask = inputs(3, 40, 5, torch.float32, seed=11, masked=True)
    gv, gs = torch.randn(3, 9, 5), torch.randn(3, 9)
    want = cpp.hard_topk(x, s, 9, mask, keep_order, gv, gs)
    got = python_forward_backward(x, s, 9, mask, 20.0, keep_order, True, gv, gs)
    for a, c in zip(got, want):
        assert torch.equal(a, c)


@pytest.mark.parametrize("b,n,k", SHAPES + [(2, 200, 9), (2, 128, 8)])
@pytest.mark.parametrize("keep_order", [False, True])
def test_equals_the_pure_pytorch_formulation_and_its_autograd(b, n, k, keep_order):
    for masked in (False, True):
        x, s, mask = inputs(b, n, 5, torch.float64, seed=n + 3 * k, masked=masked)
        gv = torch.randn(b, k, 5, dtype=torch.float64)
        gs = torch.randn(b, k, dtype=torch.float64)
        got = python_forward_backward(x, s, k, mask, 20.0, keep_order, False, gv, gs)
        xr, sr = x.clone().requires_grad_(True), s.clone().requires_grad_(True)
        rv, rs, rm, ri = reference.successive_halving_topk(xr, sr, k, mask, 20.0, keep_order)
        torch.autograd.backward([rv, rs], [gv, gs])
        assert torch.equal(got[2], rm) and torch.equal(got[3], ri)
        for a, c in [(got[0], rv), (got[1], rs), (got[4], xr.grad), (got[5], sr.grad)]:
            torch.testing.assert_close(a, c.detach(), rtol=1e-10, atol=1e-12)


def test_inference_mode_runs_the_backend_kernel_with_the_same_outputs():
    x, s, mask = inputs(3, 37, 6, torch.float32, seed=2, masked=True)
    with_grad = pyramidion.soft_topk(x.requires_grad_(True), s, 5, mask=mask, keep_order=True)
    with torch.inference_mode():
        inference = pyramidion.soft_topk(x.detach(), s, 5, mask=mask, keep_order=True)
    for a, c in zip(with_grad, inference):
        assert torch.equal(a.detach(), c)


def test_non_contiguous_inputs_equal_their_contiguous_copies():
    base = torch.randn(2, 6, 30, dtype=torch.float64)
    x = base.transpose(1, 2)  # (b, n, d) view
    s = torch.rand(30, 2, dtype=torch.float64).t()
    assert not x.is_contiguous() and not s.is_contiguous()
    a = pyramidion.soft_topk(x, s, 4)
    c = pyramidion.soft_topk(x.contiguous(), s.contiguous(), 4)
    for p, q in zip(a, c):
        assert torch.equal(p, q)


def test_the_result_is_a_named_tuple_like_the_cpp_result():
    x, s, _ = inputs(2, 10, 3, torch.float32, seed=0, masked=False)
    r = pyramidion.soft_topk(x, s, 4)
    assert isinstance(r, pyramidion.TopKResult)
    assert r._fields == ("values", "scores", "mask", "indices")
    assert r.values.shape == (2, 4, 3) and r.scores.shape == (2, 4)
    assert r.mask.dtype == torch.bool and r.indices.dtype == torch.int64


@pytest.mark.parametrize("kwargs", [{}, {"keep_order": True}, {"hard": True}, {"base": 3.0}])
def test_torch_library_opcheck(kwargs):
    x, s, mask = inputs(2, 19, 4, torch.float64, seed=9, masked=True)
    x.requires_grad_(True)
    s.requires_grad_(True)
    opcheck(torch.ops.pyramidion.successive_halving_topk, (x, s, 5), {"mask": mask, **kwargs})


def bad_cases():
    x = torch.zeros(2, 4, 3)
    s = torch.zeros(2, 4)
    nan = s.clone()
    nan[1, 2] = math.nan
    inf = s.clone()
    inf[0, 3] = -math.inf
    ones = torch.ones(2, 4, dtype=torch.bool)
    return {
        "x not 3-d": (torch.zeros(3, 4), s, 2, None, 20.0),
        "x 4-d": (torch.zeros(1, 2, 4, 3), s, 2, None, 20.0),
        "scores too long": (x, torch.zeros(2, 5), 2, None, 20.0),
        "scores 3-d": (x, torch.zeros(2, 4, 1), 2, None, 20.0),
        "int dtype": (x.int(), s.int(), 2, None, 20.0),
        "dtypes differ": (x, s.double(), 2, None, 20.0),
        "k = 0": (x, s, 0, None, 20.0),
        "k > n": (x, s, 5, None, 20.0),
        "mask shape": (x, s, 2, torch.ones(2, 3, dtype=torch.bool), 20.0),
        "mask dtype": (x, s, 2, torch.ones(2, 4, dtype=torch.long), 20.0),
        "base 1": (x, s, 2, None, 1.0),
        "base nan": (x, s, 2, None, math.nan),
        "nan score": (x, nan, 2, None, 20.0),
        "-inf score": (x, inf, 2, ones, 20.0),
    }


@pytest.mark.parametrize("case", list(bad_cases()))
@pytest.mark.parametrize("hard", [False, True])
def test_bad_inputs_raise_the_cpp_message(cpp, case, hard):
    x, s, k, mask, base = bad_cases()[case]
    want = cpp.topk_error(x, s, k, mask, base, False, hard)
    assert want.startswith("pyramidion::successive_halving_topk: "), want
    with pytest.raises(RuntimeError) as e:
        pyramidion.soft_topk(x, s, k, mask=mask, base=base, hard=hard)
    assert str(e.value) == want


def test_a_nan_score_at_a_padding_position_is_accepted():
    x, s = torch.zeros(2, 4, 3), torch.zeros(2, 4)
    s[1, 2] = math.nan
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1, 2] = False
    r = pyramidion.soft_topk(x, s, 2, mask=mask)
    assert torch.isfinite(r.scores).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_cuda_kernels_equal_the_cpu_ones(dtype):
    # The tournament is the same bit for bit (topk.h); values and x's gradient differ only by the
    # rounding of another summation order.
    x, s, mask = inputs(4, 300, 16, dtype, seed=1, masked=True)
    gv, gs = torch.randn(4, 20, 16, dtype=dtype), torch.randn(4, 20, dtype=dtype)
    cpu = python_forward_backward(x, s, 20, mask, 20.0, True, False, gv, gs)
    gpu = python_forward_backward(x.cuda(), s.cuda(), 20, mask.cuda(), 20.0, True, False, gv.cuda(), gs.cuda())
    assert torch.equal(cpu[2], gpu[2].cpu()) and torch.equal(cpu[3], gpu[3].cpu())
    tol = {"rtol": 1e-2, "atol": 1e-2} if dtype == torch.bfloat16 else {}
    for a, c in zip(cpu, gpu):
        torch.testing.assert_close(a, c.cpu(), **tol)
