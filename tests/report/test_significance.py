"""The claims' interval method on synthetic runs with a known effect: coverage, pairing, seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.report.significance import Cell, block_means, claim_intervals, optimal_block_length, verdict


def _ar1(rng, n, phi):
    e = rng.normal(size=n) * math.sqrt(1 - phi ** 2)
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def _runs(rng, mu_a, mu_b, *, seeds=3, n=300, phi=0.9, seed_sd=0.04, noise_sd=0.1):
    """Two runs' per-window MSE on the same windows: a shared serially correlated difficulty
    (hard weather is hard for both), a per-seed training effect, and each run's own noise."""
    hard = np.exp(0.3 * _ar1(rng, n, phi))
    cells = []
    for name, mu in (("a", mu_a), ("b", mu_b)):
        rows = np.stack([mu * hard * (1 + seed_sd * rng.normal()) * np.exp(noise_sd * _ar1(rng, n, 0.5))
                         for _ in range(seeds)])
        cells.append(Cell((name, "test_mse"), "t2m", rows.mean(axis=1), windows=rows))
    return cells


def _change(values):
    a, b = values[("a", "test_mse")], values[("b", "test_mse")]
    return [(b - a) / abs(a) * 100.0]


def _true_change(mu_a, mu_b):
    # E[hard * exp(noise)] is common to both runs, so the population change is that of the means
    return (mu_b - mu_a) / mu_a * 100.0


@pytest.mark.parametrize("seeds", [3, 1])
def test_coverage_close_to_95_percent_with_a_known_effect(seeds):
    rng = np.random.default_rng(1)
    truth = _true_change(1.0, 0.95)
    covered, n_sims = 0, 300
    for k in range(n_sims):
        cells = _runs(rng, 1.0, 0.95, seeds=seeds, seed_sd=0.04 if seeds > 1 else 0.0)
        (iv,) = claim_intervals(_change, cells, n_boot=500, seed=k)
        covered += iv.low <= truth <= iv.high
    coverage = covered / n_sims
    assert 0.89 <= coverage <= 0.99, coverage


def test_seed_noise_widens_the_interval_and_three_seeds_use_a_t_quantile():
    rng = np.random.default_rng(2)
    cells = _runs(rng, 1.0, 0.95, seeds=3, seed_sd=0.05)
    (iv,) = claim_intervals(_change, cells, n_boot=500)
    assert math.isfinite(iv.df) and iv.df < 10  # seed variance with 2 + 2 degrees of freedom dominates
    assert iv.n_seeds == 3 and iv.n_windows == 300
    assert "own seeds" in iv.method and "block bootstrap" in iv.method
    quiet = [Cell(c.key, c.dataset, np.full(3, c.value), windows=c.windows - c.windows.mean(axis=1, keepdims=True)
                  + c.value) for c in cells]
    (narrow,) = claim_intervals(_change, quiet, n_boot=500)
    assert narrow.high - narrow.low < iv.high - iv.low


def test_pairing_over_windows_beats_treating_runs_as_independent():
    """Shared hard windows cancel in a paired comparison: the interval is far narrower than the
    spread of either run's windows would suggest."""
    rng = np.random.default_rng(3)
    cells = _runs(rng, 1.0, 0.97, seeds=1, seed_sd=0.0, noise_sd=0.01)
    (iv,) = claim_intervals(_change, cells, n_boot=1000)
    assert iv.verdict == "holds" or iv.high < 0  # a 3 % effect is resolved
    sd_one_run = np.std(cells[0].windows) / np.mean(cells[0].windows) * 100 / math.sqrt(300)
    assert iv.se < sd_one_run


def test_a_large_effect_holds_and_its_reverse_is_reversed():
    rng = np.random.default_rng(4)
    cells = _runs(rng, 1.0, 0.7, seeds=3)
    (iv,) = claim_intervals(lambda v: [-_change(v)[0]], cells, n_boot=500)
    assert iv.verdict == "holds" and iv.p_value < 0.01
    (rev,) = claim_intervals(_change, cells, n_boot=500)
    assert rev.verdict == "reversed"


def test_exact_counts_have_no_uncertainty_and_unknown_seed_noise_gives_no_interval():
    params = [Cell(("a", "params_total"), "t2m", np.array([10.0]), exact=True),
              Cell(("b", "params_total"), "t2m", np.array([12.0]), exact=True)]
    (iv,) = claim_intervals(lambda v: [v[("b", "params_total")] - v[("a", "params_total")]], params)
    assert iv.low == iv.high == 2.0 and iv.verdict == "holds" and "exact" in iv.method
    speed = [Cell(("a", "fps"), "t2m", np.array([10.0])), Cell(("b", "fps"), "t2m", np.array([12.0]))]
    (iv,) = claim_intervals(lambda v: [v[("b", "fps")] - v[("a", "fps")]], speed)
    assert math.isnan(iv.low) and iv.verdict == "inconclusive" and "no interval" in iv.method


def test_a_one_seed_run_borrows_the_pooled_seed_variance_of_its_dataset():
    rng = np.random.default_rng(5)
    three = _runs(rng, 1.0, 0.95, seeds=3, seed_sd=0.05)
    single = [Cell(("c", "test_mse"), "t2m", three[0].seed_values[:1], windows=three[0].windows[:1]),
              Cell(("d", "test_mse"), "t2m", three[1].seed_values[:1], windows=three[1].windows[:1])]
    ivs = claim_intervals(lambda v: [(v[("d", "test_mse")] - v[("c", "test_mse")]) / v[("c", "test_mse")] * 100],
                          three + single, n_boot=300)
    assert "pooled on its dataset" in ivs[0].method


def test_block_length_grows_with_serial_correlation():
    rng = np.random.default_rng(6)
    white, red = rng.normal(size=2000), _ar1(rng, 2000, 0.95)
    assert optimal_block_length(white) < 3 < optimal_block_length(red)


def test_block_means_resample_whole_blocks_of_paired_rows():
    x = np.arange(20, dtype=float)[None, :].repeat(2, axis=0)
    x[1] *= 2
    means = block_means(x, 5, 50, np.random.default_rng(0))
    assert means.shape == (50, 2)
    np.testing.assert_allclose(means[:, 1], 2 * means[:, 0])  # one resample shared by both rows
    np.testing.assert_allclose(block_means(x, 20, 3, np.random.default_rng(0))[:, 0], 9.5)


def test_verdict_follows_the_interval():
    assert verdict(0.1, 2) == "holds" and verdict(-2, -0.1) == "reversed"
    assert verdict(-1, 1) == "inconclusive" and verdict(math.nan, math.nan) == "inconclusive"
