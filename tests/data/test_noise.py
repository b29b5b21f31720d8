import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.core.errors import ConfigError, DataError
from pipeline.data.noise import NoisyInputs, inject_noise

torch.set_num_threads(1)


@pytest.mark.parametrize("eta", [0.0, 0.01, 0.1, 0.25, 0.5, 0.999])
def test_exact_count_and_factor_range(eta):
    x = torch.ones(3, 4, 5, 6)
    g = torch.Generator().manual_seed(0)
    noisy, mask = inject_noise(x, eta, generator=g, return_mask=True)
    assert mask.shape == x.shape and mask.dtype == torch.bool
    assert int(mask.sum()) == round(eta * x.numel())
    assert torch.equal(noisy[~mask], x[~mask])
    factors = noisy[mask]  # input is all ones, so the noisy values are the factors
    assert bool(((factors >= -2) & (factors < 2)).all())
    assert torch.equal(x, torch.ones(3, 4, 5, 6))  # input untouched


def test_factors_spread_over_uniform_range():
    x = torch.ones(100_000)
    noisy, mask = inject_noise(x, 0.5, generator=torch.Generator().manual_seed(1), return_mask=True)
    f = noisy[mask]
    assert f.min() < -1.95 and f.max() > 1.95
    assert abs(float(f.mean())) < 0.05  # U[-2, 2) has mean 0, sd 1.15; n = 50,000


def test_scales_values_not_replaces():
    x = torch.arange(1.0, 201.0).reshape(10, 20)
    noisy, mask = inject_noise(x, 0.3, generator=torch.Generator().manual_seed(2), return_mask=True)
    ratio = noisy[mask] / x[mask]
    assert bool(((ratio >= -2 - 1e-5) & (ratio < 2 + 1e-5)).all())
    assert torch.equal(noisy[~mask], x[~mask])


def test_zero_proportion_is_identity_copy():
    x = torch.randn(2, 3, 4)
    out = inject_noise(x, 0.0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_reproducible_with_generator():
    x = torch.randn(50, 50)
    a = inject_noise(x, 0.2, generator=torch.Generator().manual_seed(7))
    b = inject_noise(x, 0.2, generator=torch.Generator().manual_seed(7))
    c = inject_noise(x, 0.2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_non_contiguous_input():
    x = torch.ones(6, 8).t()
    noisy, mask = inject_noise(x, 0.5, generator=torch.Generator().manual_seed(3), return_mask=True)
    assert noisy.shape == x.shape and int(mask.sum()) == 24
    assert torch.equal(noisy[~mask], x[~mask])


@pytest.mark.parametrize("eta", [1.0, -0.1, 1.5, float("nan"), True, "0.1", None])
def test_bad_proportion(eta):
    with pytest.raises(ConfigError, match="eta"):
        inject_noise(torch.ones(4), eta)
    with pytest.raises(ConfigError, match="eta"):
        NoisyInputs([(torch.ones(4), torch.ones(4))], eta, seed=0)


def test_integer_input_rejected():
    with pytest.raises(DataError, match="floating"):
        inject_noise(torch.ones(4, dtype=torch.uint8), 0.5)


def _pairs(n=4):
    return [(torch.ones(2, 1, 8, 8), torch.full((2, 1, 8, 8), float(i))) for i in range(n)]


def test_wrapper_noisy_inputs_clean_targets():
    base = _pairs()
    ds = NoisyInputs(base, 0.25, seed=0)
    assert len(ds) == len(base)
    x0, y0 = ds[0]
    assert y0 is base[0][1] and torch.equal(y0, torch.zeros(2, 1, 8, 8))
    assert torch.equal(base[0][0], torch.ones(2, 1, 8, 8))  # underlying input untouched
    # 32 of 128 elements chosen; allow a factor that happens to round to exactly 1
    assert 30 <= int((x0 != 1).sum()) <= 32
    x0_again, _ = ds[0]
    assert not torch.equal(x0, x0_again)  # fresh noise per access
    again = NoisyInputs(base, 0.25, seed=0)
    assert torch.equal(again[0][0], x0)  # same seed, same stream
    with pytest.raises(ConfigError, match="seed"):
        NoisyInputs(base, 0.1, seed=1.5)


def test_wrapper_workers_draw_different_noise():
    torch.manual_seed(0)
    ds = NoisyInputs(_pairs(4), 0.5, seed=0)
    batches = list(DataLoader(ds, batch_size=1, num_workers=2))
    # items 0 and 1 are each the first draw of a different worker
    assert not torch.equal(batches[0][0], batches[1][0])
    for i, (x, y) in enumerate(batches):
        assert torch.equal(y[0], torch.full((2, 1, 8, 8), float(i)))
