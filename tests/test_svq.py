"""SVQ plug-in: the associated/blocked forward equals the naive W @ M, in value and gradient."""
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from pipeline.core.errors import ConfigError
from pipeline.svq import INITS, SVQ

torch.set_num_threads(1)


def naive_product(svq: SVQ, z: torch.Tensor) -> torch.Tensor:
    """Reference written out by hand: W = Linear2(ReLU(Linear1(x))) (or one layer), Q = W @ M."""
    b, c, h, w = z.shape
    x = z.permute(0, 2, 3, 1).reshape(b, h * w, c)
    if svq.nonlinear:
        hid = torch.relu(x @ svq.linear1.weight.t() + svq.linear1.bias)
        weights = hid @ svq.linear2.weight.t() + svq.linear2.bias
    else:
        weights = x @ svq.linear1.weight.t() + svq.linear1.bias
    if svq.out_relu:
        weights = torch.relu(weights)
    q = weights @ svq.codebook
    return q.reshape(b, h, w, c).permute(0, 3, 1, 2)


def trainable(svq: SVQ):
    return {name: p for name, p in svq.named_parameters() if p.requires_grad}


class MaxResult(TorchFunctionMode):
    """Records the largest tensor any torch function returns inside the block."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("shape,n,hidden", [((2, 8, 4, 6), 50, 16), ((1, 3, 5, 2), 300, 128), ((3, 16, 2, 2), 7, 128)])
def test_forward_equals_weights_times_codebook(init, shape, n, hidden):
    torch.manual_seed(0)
    svq = SVQ(shape[1], n, hidden=hidden, init=init).double()
    z = torch.randn(*shape, dtype=torch.float64)
    out = svq(z)
    assert out.shape == z.shape
    b, c, h, w = shape
    via_weights = (svq.regression_weights(z) @ svq.codebook).reshape(b, h, w, c).permute(0, 3, 1, 2)
    torch.testing.assert_close(out, via_weights, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out, naive_product(svq, z), rtol=1e-10, atol=1e-10)


def test_float32_forward_matches_to_float_tolerance():
    torch.manual_seed(1)
    svq = SVQ(32, 2000, init="normal")
    z = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(svq(z), naive_product(svq, z), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("variant", [{}, {"out_relu": True, "block_size": 8}, {"nonlinear": False},
                                     {"freeze_codebook": True}])
def test_gradients_equal_naive_product(variant):
    torch.manual_seed(2)
    svq = SVQ(6, 37, hidden=12, **variant).double()
    z = torch.randn(2, 6, 3, 5, dtype=torch.float64)
    target = torch.randn_like(z)

    grads = []
    for fn in (svq, lambda t: naive_product(svq, t)):
        zz = z.clone().requires_grad_(True)
        params = trainable(svq)
        loss = F.l1_loss(fn(zz), target) + (fn(zz) * target).sum()
        values = torch.autograd.grad(loss, [zz, *params.values()])
        grads.append(dict(zip(["input", *params], values)))
    assert set(grads[0]) >= {"input", "linear1.weight", "linear1.bias"}
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-9, atol=1e-10, msg=name)


def test_associated_forward_never_builds_tokens_by_codes():
    torch.manual_seed(3)
    tokens, n = 2 * 8 * 8, 500
    svq = SVQ(16, n, hidden=32)  # parameters (n x 32) and activations (tokens x 32) stay below tokens x n / 2
    z = torch.randn(2, 16, 8, 8, requires_grad=True)
    with MaxResult() as mode:
        svq(z).sum().backward()
    assert mode.largest < tokens * n // 2
    with MaxResult() as mode:
        svq.regression_weights(z)
    assert mode.largest == tokens * n  # the probe does see a full W when one is built


def test_out_relu_holds_one_block_of_weights_at_a_time():
    torch.manual_seed(4)
    tokens, n, block = 2 * 16 * 16, 300, 64
    svq = SVQ(8, n, hidden=16, out_relu=True, block_size=block)
    z = torch.randn(2, 8, 16, 16, requires_grad=True)
    with MaxResult() as mode:
        svq(z)
    assert mode.largest <= tokens * block
    # Backward recomputes each block (checkpointing) instead of keeping every block's W:
    # what autograd keeps is far below one full W, while the naive product keeps more than W.
    kept = {}
    for name, fn in (("blocked", svq), ("naive", lambda t: naive_product(svq, t))):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            out = fn(z)
        kept[name] = sum(sizes)
        out.sum().backward()
    assert kept["blocked"] < tokens * n // 2 < tokens * n <= kept["naive"]
    assert torch.isfinite(z.grad).all()


def test_out_relu_weights_non_negative_and_blocked_equals_naive():
    torch.manual_seed(5)
    svq = SVQ(5, 37, hidden=16, out_relu=True, block_size=10).double()  # 37 = 3 blocks of 10 + 7
    z = torch.randn(3, 5, 4, 2, dtype=torch.float64)
    weights = svq.regression_weights(z)
    assert weights.shape == (3, 8, 37)
    assert (weights >= 0).all() and (weights == 0).any()
    torch.testing.assert_close(svq(z), naive_product(svq, z), rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(svq(z), naive_product(svq, z), rtol=1e-10, atol=1e-10)


def test_frozen_codebook_gets_no_gradient_and_stays():
    torch.manual_seed(6)
    svq = SVQ(8, 40, freeze_codebook=True)
    before = svq.codebook.detach().clone()
    w1 = svq.linear1.weight.detach().clone()
    opt = torch.optim.Adam(svq.parameters(), lr=0.1)
    svq(torch.randn(2, 8, 4, 4)).abs().mean().backward()
    assert not svq.codebook.requires_grad and svq.codebook.grad is None
    opt.step()
    assert torch.equal(svq.codebook, before)
    assert not torch.equal(svq.linear1.weight, w1)


def test_frozen_projection_gets_no_gradient_and_stays():
    torch.manual_seed(7)
    svq = SVQ(8, 40, freeze_projection=True)
    mlp_before = [p.detach().clone() for p in svq.projection_parameters()]
    codebook_before = svq.codebook.detach().clone()
    opt = torch.optim.Adam(svq.parameters(), lr=0.1)
    svq(torch.randn(2, 8, 4, 4)).abs().mean().backward()
    assert all(p.grad is None and not p.requires_grad for p in svq.projection_parameters())
    opt.step()
    assert all(torch.equal(p, b) for p, b in zip(svq.projection_parameters(), mlp_before))
    assert not torch.equal(svq.codebook, codebook_before)


def test_hidden_becomes_codebook_size_when_smaller():
    svq = SVQ(4, 10, hidden=128)
    assert svq.hidden == 10
    assert svq.linear1.out_features == 10 and svq.linear2.in_features == 10 and svq.linear2.out_features == 10
    assert SVQ(4, 1000, hidden=128).linear1.out_features == 128


def test_one_layer_variant_is_single_linear():
    torch.manual_seed(8)
    svq = SVQ(6, 30, nonlinear=False).double()
    assert svq.linear2 is None
    assert (svq.linear1.in_features, svq.linear1.out_features) == (6, 30)
    z = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    x = z.permute(0, 2, 3, 1).reshape(2, 9, 6)
    expected = (svq.linear1(x) @ svq.codebook).reshape(2, 3, 3, 6).permute(0, 3, 1, 2)
    torch.testing.assert_close(svq(z), expected, rtol=1e-10, atol=1e-10)


def test_codebook_inits_differ_as_documented():
    torch.manual_seed(9)
    sparse = SVQ(16, 200, init="sparse").codebook
    assert ((sparse == 0).float().mean(dim=0) >= 0.89).all()  # 90% of each column zeroed
    ortho = SVQ(16, 200, init="orthogonal").codebook.detach()
    torch.testing.assert_close(ortho.t() @ ortho, torch.eye(16), atol=1e-4, rtol=0)
    kaiming = SVQ(16, 200, init="kaiming").codebook
    assert kaiming.abs().max() <= (6 / 16) ** 0.5
    assert SVQ(16, 200, init="trunc_normal").codebook.abs().max() <= 2


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"\(B, 8, H, W\)"):
        SVQ(8, 10)(torch.randn(2, 4, 3, 3))


@pytest.mark.parametrize("kwargs,names", [
    ({"init": "glorot"}, ["init", "glorot"]),
    ({"codebook_size": 0}, ["codebook_size", "0"]),
    ({"codebook_size": -5}, ["codebook_size", "-5"]),
    ({"hidden": 0}, ["hidden", "0"]),
    ({"dim": 0}, ["dim", "0"]),
    ({"dim": 2.5}, ["dim", "2.5"]),
    ({"block_size": 0}, ["block_size", "0"]),
])
def test_bad_arguments_raise_config_error(kwargs, names):
    args = {"dim": 8, "codebook_size": 10, **kwargs}
    with pytest.raises(ConfigError) as info:
        SVQ(**args)
    for name in names:
        assert name in str(info.value)
