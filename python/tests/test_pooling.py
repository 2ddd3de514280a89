"""pyramidion.TopKPooler (python/pyramidion/pooling.py) against the C++ pyramidion::TopKPooler with
the same weights: outputs and gradients (x, scorer weight and bias), in training mode (the soft
tournament) and in eval mode with hard_at_inference (the exact selection), with masks, and the
pass-through when n <= k."""
import pytest
import torch

import pyramidion


def pooler_case(b, n, d, k, dtype, seed, masked, **kw):
    g = torch.Generator().manual_seed(seed)
    pool = pyramidion.TopKPooler(d, k, **kw).to(dtype)
    with torch.no_grad():
        pool.scorer.weight.copy_(torch.randn(1, d, generator=g, dtype=torch.float64))
        pool.scorer.bias.copy_(torch.randn(1, generator=g, dtype=torch.float64))
    x = torch.randn(b, n, d, generator=g, dtype=torch.float64).to(dtype)
    mask = None
    if masked:
        mask = torch.rand(b, n, generator=g) < 0.75
        mask[:, 0] = True
    return pool, x, mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("b,n,d,k", [(2, 40, 6, 8), (3, 17, 4, 5), (2, 8, 3, 8), (1, 5, 3, 9)])
@pytest.mark.parametrize("training,hard_at_inference", [(True, False), (False, False), (False, True), (True, True)])
@pytest.mark.parametrize("keep_order", [True, False])
def test_outputs_and_gradients_equal_the_cpp_pooler(cpp, dtype, b, n, d, k, training, hard_at_inference, keep_order):
    for masked in (False, True):
        pool, x, mask = pooler_case(b, n, d, k, dtype, seed=n + d + k, masked=masked, base=15.0,
                                    keep_order=keep_order, hard_at_inference=hard_at_inference, score_epsilon=1e-4)
        pool.train(training)
        kept = min(n, k)
        gv = torch.randn(b, kept, d, dtype=dtype)
        gs = torch.randn(b, kept, dtype=dtype)
        want = cpp.pooler(x, mask, pool.scorer.weight.detach(), pool.scorer.bias.detach(), k, 15.0, keep_order,
                          hard_at_inference, 1e-4, training, gv, gs)
        xg = x.clone().requires_grad_(True)
        out = pool(xg, mask)
        torch.autograd.backward([out.values, out.scores], [gv, gs])
        got = [out.values.detach(), out.mask, out.indices, out.scores.detach(), xg.grad, pool.scorer.weight.grad,
               pool.scorer.bias.grad]
        names = ["values", "mask", "indices", "scores", "grad_x", "grad_weight", "grad_bias"]
        for name, a, c in zip(names, got, want):
            assert a.shape == c.shape and a.dtype == c.dtype, name
            torch.testing.assert_close(a, c, rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
        pool.zero_grad()


def test_parameter_names_are_the_cpp_modules():
    assert list(pyramidion.TopKPooler(8, 2).state_dict()) == ["scorer.weight", "scorer.bias"]


def test_bad_settings_and_inputs_are_refused_naming_the_value():
    with pytest.raises(ValueError, match="target_length must be >= 1, got 0"):
        pyramidion.TopKPooler(4, 0)
    with pytest.raises(ValueError, match="base = 1.0 must be finite and > 1"):
        pyramidion.TopKPooler(4, 2, base=1.0)
    pool = pyramidion.TopKPooler(4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(b, n, d_model = 4\), got \[2, 5, 3\]"):
        pool(torch.zeros(2, 5, 3))
    with pytest.raises(RuntimeError, match=r"mask must have shape \(b, n\) = \[2, 5\], got \[2, 4\]"):
        pool(torch.zeros(2, 5, 4), torch.ones(2, 4, dtype=torch.bool))
