"""Intervals for claims computed from several runs' test scores: paired over test windows, across seeds.

A claim's quantity ``theta`` is a smooth function of table cells (a % change between two cells, a
difference of two % increases, an average of per-row improvements). Each cell is one run's test
metric: the mean over seeds of a statistic of its per-window errors (``runs/<exp>/windows.npz``).
Two sources of uncertainty, estimated separately and combined by the delta method:

* **Test windows.** The test split is one finite, serially correlated sample: consecutive windows
  overlap and weather persists. Runs on the same dataset are scored on the same windows, so their
  errors are paired. A circular block bootstrap (one resample of window blocks shared by every run of
  a dataset; datasets independent) gives the covariance of the cells; the block length is Politis
  and White's (2004) automatic choice, with Patton, Politis and White's (2009) correction, the
  largest over the dataset's runs.
* **Training seeds.** Each run's seeds are independent trainings scored on the same windows; the
  variance of a cell's seed mean is the seeds' sample variance / S. A one-seed run borrows the
  relative seed variance pooled over the multi-seed runs of its dataset and metric (else of its
  metric on any dataset): the method column says which; without any, only the windows count.

``SE^2 = g' C_w g + sum_c g_c^2 s_c^2 / S_c`` (``g``: the gradient of theta in the cells, by central
differences), and the 95 % interval is ``theta +- t(nu) SE`` with Welch-Satterthwaite degrees of
freedom ``nu`` (the window part counts as known), which keeps 3-seed intervals honest where a
normal quantile would be far too narrow. Counts (parameters, FLOPs) are exact: no uncertainty.
``tests/report/test_significance.py`` checks the coverage on synthetic runs with a known effect.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

LEVEL = 0.95
N_BOOT = 2000
VERDICTS = ("holds", "reversed", "inconclusive")


@dataclass(frozen=True)
class Cell:
    """One run's metric as a table cell: ``value`` = mean over seeds of ``transform(mean over windows)``.

    ``windows``: (seeds, windows) per-window values of the metric's statistic (``None``: the metric
    has no per-window errors, e.g. perplexity or speed); ``exact``: a count with no uncertainty."""

    key: tuple[str, str]              # (experiment, metric)
    dataset: str
    seed_values: np.ndarray           # (seeds,) the metric per seed
    windows: np.ndarray | None = None
    transform: str = "identity"       # identity | sqrt (RMSE from per-window MSE)
    exact: bool = False

    @property
    def value(self) -> float:
        return float(np.mean(self.seed_values))

    @property
    def n_seeds(self) -> int:
        return len(self.seed_values)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    p_value: float
    se: float
    df: float
    n_seeds: int          # the fewest seeds of a cell the claim reads
    n_windows: int        # test windows behind it (0: no per-window errors)
    method: str

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high)


def verdict(low: float, high: float) -> str:
    """holds: the whole interval above 0; reversed: below; else inconclusive (NaN included)."""
    if math.isfinite(low) and low > 0:
        return "holds"
    if math.isfinite(high) and high < 0:
        return "reversed"
    return "inconclusive"


# -- block bootstrap ------------------------------------------------------------------------------
def optimal_block_length(x: np.ndarray) -> float:
    """Politis and White (2004) with Patton, Politis and White (2009): the circular block
    bootstrap's expected-MSE-optimal block length for the mean of ``x``."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 8 or not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return 1.0
    x = x - x.mean()
    kn = max(5, int(math.ceil(math.sqrt(math.log10(n)))))
    max_lag = min(n - 1, int(math.ceil(math.sqrt(n))) + kn)
    acov = np.array([x[:n - k] @ x[k:] / n for k in range(max_lag + 1)])
    rho = acov[1:] / acov[0]
    bound = 2.0 * math.sqrt(math.log10(n) / n)
    m = max_lag - kn  # the first lag after which kn autocorrelations in a row are insignificant
    for lag in range(1, max_lag - kn + 1):
        if np.all(np.abs(rho[lag - 1:lag - 1 + kn]) < bound):
            m = lag - 1
            break
    big_m = min(max(2 * m, 1), max_lag)
    lags = np.arange(-big_m, big_m + 1)
    t = np.abs(lags / big_m)
    flat_top = np.where(t <= 0.5, 1.0, np.where(t <= 1.0, 2.0 * (1.0 - t), 0.0))
    r = acov[np.abs(lags)]
    g = float(np.sum(flat_top * np.abs(lags) * r))
    d = 4.0 / 3.0 * float(np.sum(flat_top * r)) ** 2
    if d <= 0 or g == 0:
        return 1.0
    return float(min(max((2.0 * g ** 2 / d) ** (1 / 3) * n ** (1 / 3), 1.0), n / 2))


def block_means(series: np.ndarray, block: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, rows) means of circular block resamples of the aligned ``series`` (rows, n): one
    draw of block starts per replicate, shared by all rows (the windows are paired)."""
    series = np.asarray(series, dtype=float)
    n = series.shape[1]
    block = int(min(max(round(block), 1), n))
    k = int(math.ceil(n / block))
    padded = np.concatenate([series, series[:, :block - 1]], axis=1)
    csum = np.concatenate([np.zeros((series.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    block_sums = csum[:, block:block + n] - csum[:, :n]            # (rows, n): sum of the block at j
    starts = rng.integers(0, n, size=(n_boot, k))
    return block_sums[:, starts].sum(axis=2).T / (k * block)


# -- the interval ---------------------------------------------------------------------------------
@dataclass
class _SeedPool:
    """Relative seed variance pooled over multi-seed cells: sum (S-1) (s/mean)^2 / sum (S-1)."""

    weighted: dict[tuple[str, str], float] = field(default_factory=dict)
    dof: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, group: tuple[str, str], cell: Cell) -> None:
        if cell.n_seeds < 2 or cell.value == 0:
            return
        rel = float(np.var(cell.seed_values, ddof=1)) / cell.value ** 2
        self.weighted[group] = self.weighted.get(group, 0.0) + (cell.n_seeds - 1) * rel
        self.dof[group] = self.dof.get(group, 0) + cell.n_seeds - 1

    def get(self, group: tuple[str, str]) -> tuple[float, int] | None:
        if not self.dof.get(group):
            return None
        return self.weighted[group] / self.dof[group], self.dof[group]


def seed_pool(cells: Sequence[Cell]) -> _SeedPool:
    """The pooled relative seed variances of ``cells``, per (dataset, metric) and per metric."""
    pool = _SeedPool()
    for c in cells:
        if not c.exact:
            pool.add((c.dataset, c.key[1]), c)
            pool.add(("*", c.key[1]), c)
    return pool


def claim_intervals(theta: Callable[[dict[tuple[str, str], float]], Sequence[float | None]],
                    cells: Sequence[Cell], *, pool: _SeedPool | None = None, n_boot: int = N_BOOT,
                    seed: int = 0) -> list[Interval | None]:
    """The interval of each quantity ``theta(cell values)`` returns (one list per call, claims in a
    fixed order); ``None`` where theta gives no value. ``pool``: relative seed variances to borrow
    (default: from ``cells``)."""
    cells = [c for c in cells if np.all(np.isfinite(c.seed_values))]
    pool = pool if pool is not None else seed_pool(cells)
    base = {c.key: c.value for c in cells}
    estimates = [_num(v) for v in theta(base)]
    grads = _gradients(theta, base, len(estimates))
    rng = np.random.default_rng(seed)
    window_reps = _window_replicates(cells, n_boot, rng)  # key -> (n_boot,) replicate cell values
    seed_var, unknown, how = _seed_variances(cells, pool)

    out: list[Interval | None] = []
    for i, est in enumerate(estimates):
        if est is None:
            out.append(None)
            continue
        used = [c for c in cells if grads[c.key][i] != 0]
        var_w = float(np.var(sum(grads[c.key][i] * window_reps[c.key] for c in used if c.key in window_reps),
                             ddof=1)) if any(c.key in window_reps for c in used) else 0.0
        terms: dict[str, tuple[float, float]] = {}  # variance source -> (variance term, dof)
        for c in used:
            if c.key in seed_var:
                v, dof, source = seed_var[c.key]
                prev = terms.get(source, (0.0, dof))[0]
                terms[source] = (prev + grads[c.key][i] ** 2 * v, dof)
        var_s = sum(v for v, _ in terms.values())
        se = math.sqrt(max(var_w + var_s, 0.0))
        n_seeds = min(c.n_seeds for c in used) if used else 0
        n_windows = max((c.windows.shape[1] for c in used if c.windows is not None), default=0)
        blind = [c for c in used if c.key in unknown]
        if blind and not any(c.windows is not None for c in used):
            out.append(Interval(est, math.nan, math.nan, math.nan, math.nan, math.nan, n_seeds, n_windows,
                                "no interval: one seed and no per-window errors"))
            continue
        denom = sum(v ** 2 / d for v, d in terms.values() if d > 0)
        dof = math.inf if denom == 0 else (var_w + var_s) ** 2 / denom
        q = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) if math.isfinite(dof) else float(stats.norm.ppf(0.5 + LEVEL / 2))
        if se == 0:
            p = 0.0 if est != 0 else 1.0
        else:
            z = abs(est) / se
            p = float(2 * (stats.t.sf(z, dof) if math.isfinite(dof) else stats.norm.sf(z)))
        out.append(Interval(est, est - q * se, est + q * se, p, se, dof, n_seeds, n_windows,
                            _method(used, how, blind)))
    return out


def _gradients(theta, base: dict[tuple[str, str], float], n: int) -> dict[tuple[str, str], np.ndarray]:
    """d theta_i / d cell, by central differences (0 where theta_i does not read the cell)."""
    out = {}
    for key, v in base.items():
        h = 1e-4 * abs(v) if v != 0 else 1e-6
        up, down = (_nums(theta(base | {key: v + s * h}), n) for s in (1, -1))
        g = (up - down) / (2 * h)
        out[key] = np.where(np.isfinite(g), g, 0.0)
    return out


def _window_replicates(cells: Sequence[Cell], n_boot: int, rng: np.random.Generator) -> dict:
    """Per cell with per-window errors: (n_boot,) bootstrap replicates of its value; one shared
    resample of window blocks per dataset (and window count), independent across datasets."""
    groups: dict[tuple[str, int], list[Cell]] = {}
    for c in cells:
        if c.windows is not None and not c.exact:
            groups.setdefault((c.dataset, c.windows.shape[1]), []).append(c)
    out = {}
    for (_, _), group in sorted(groups.items()):
        rows = np.concatenate([c.windows for c in group], axis=0)
        block = max(optimal_block_length(c.windows.mean(axis=0)) for c in group)
        means = block_means(rows, block, n_boot, rng)  # (n_boot, all seeds of all cells)
        at = 0
        for c in group:
            m = means[:, at:at + c.n_seeds]
            at += c.n_seeds
            out[c.key] = (np.sqrt(np.maximum(m, 0)) if c.transform == "sqrt" else m).mean(axis=1)
    return out


def _seed_variances(cells: Sequence[Cell], pool: _SeedPool):
    """Per cell: (variance of its seed mean, dof, source); the cells with no estimate; how each got it."""
    out, unknown, how = {}, set(), {}
    for c in cells:
        if c.exact:
            how[c.key] = "exact"
            continue
        if c.n_seeds >= 2:
            out[c.key] = (float(np.var(c.seed_values, ddof=1)) / c.n_seeds, c.n_seeds - 1, repr(c.key))
            how[c.key] = "own seeds"
            continue
        for group, label in (((c.dataset, c.key[1]), "pooled on its dataset"), (("*", c.key[1]), "pooled on all datasets")):
            found = pool.get(group)
            if found is not None:
                rel, dof = found
                out[c.key] = (rel * c.value ** 2, dof, repr(group))
                how[c.key] = label
                break
        else:
            unknown.add(c.key)
            how[c.key] = "none"
    return out, unknown, how


def _method(used: Sequence[Cell], how: dict, blind: Sequence[Cell]) -> str:
    parts = []
    if any(c.windows is not None and not c.exact for c in used):
        parts.append("paired circular block bootstrap over test windows")
    sources = sorted({how[c.key] for c in used} - {"none", "exact"})
    if sources:
        parts.append("seed variance: " + ", ".join(sources))
    if blind:
        parts.append("1 seed, seed variance unknown: test windows only")
    if all(c.exact for c in used):
        parts.append("exact counts")
    return "; ".join(parts) + "; delta method, Welch-Satterthwaite t"


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _nums(values: Sequence[float | None], n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for i, v in enumerate(values):
        if v is not None:
            out[i] = v
    return out


__all__ = ["Cell", "Interval", "LEVEL", "N_BOOT", "VERDICTS", "block_means", "claim_intervals",
           "optimal_block_length", "seed_pool", "verdict"]
