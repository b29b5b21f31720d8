"""claims.csv from run records with per-window errors: effects signed to the paper's direction,
intervals that see the windows and the seeds, verdicts that follow the interval."""
import math

import numpy as np
import pytest

from pipeline.report.paper import load_paper
from pipeline.report.results import ExperimentResult
from pipeline.report.significance import verdict
from pipeline.report.tables import build_all
from pipeline.report.verdicts import COLUMNS, claim_verdicts, verdict_counts

N_WINDOWS, LEADS = 200, 4


def _run(tmp_path, exp, scale, rng, hard, seeds=(0, 1, 2), seed_sd=0.02):
    """A record whose seeds' per-window MSE is ``scale`` x a shared window difficulty."""
    run_dir = tmp_path / exp
    run_dir.mkdir()
    arrays, per_seed = {}, []
    for s in seeds:
        mse = scale * (1 + seed_sd * rng.normal()) * hard[:, None] * np.exp(0.05 * rng.normal(size=(N_WINDOWS, LEADS)))
        arrays[f"seed{s}.mse"] = mse.astype(np.float32)
        arrays[f"seed{s}.mae"] = np.sqrt(mse).astype(np.float32)
        per_seed.append({"test_mse": float(arrays[f"seed{s}.mse"].astype(float).mean()),
                         "test_mae": float(arrays[f"seed{s}.mae"].astype(float).mean())})
    np.savez_compressed(run_dir / "windows.npz", **arrays)
    mean = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
    std = {k: float(np.std([m[k] for m in per_seed])) for k in per_seed[0]}
    return ExperimentResult(experiment=exp, dataset="t2m", profile="sample", tables=(1,), n_seeds=len(seeds),
                            metrics=mean, metrics_std=std, params={}, run_ids=tuple(f"r{s}" for s in seeds),
                            seeds=tuple(seeds), run_dir=run_dir, seed_metrics=tuple(per_seed),
                            software={"torch": "2.13.0+cpu", "vector_quantize_pytorch": "1.32.0"})


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    hard = np.exp(np.convolve(rng.normal(size=N_WINDOWS + 9), np.ones(10) / 3, mode="valid"))  # serially correlated
    records = {r.experiment: r for r in (_run(tmp, "t2m_simvp", 1.0, rng, hard), _run(tmp, "t2m_svq", 0.7, rng, hard),
                                         _run(tmp, "t2m_svq_frozen", 0.99, rng, hard))}
    paper = load_paper()
    tables = {1: build_all(records, profile="sample", paper=paper)[1]}
    return claim_verdicts(tables, records, paper, profile="sample", n_boot=400)


def _row(claims, text):
    hit = claims[claims["claim"] == text]
    assert len(hit) == 1, text
    return hit.iloc[0]


def test_a_clear_improvement_holds_with_a_positive_effect(claims):
    svq = _row(claims, "t2m: SVQ (learnable) lowers MSE vs SimVP")
    assert svq["effect"] == pytest.approx(30.0, abs=3.0)  # > 0: the paper's direction
    assert 0 < svq["ci_low"] < svq["effect"] < svq["ci_high"] and svq["verdict"] == "holds"
    assert (svq["n_seeds"], svq["n_windows"], svq["unit"]) == (3, N_WINDOWS, "%")
    assert "block bootstrap" in svq["method"] and "own seeds" in svq["method"] and svq["p_value"] < 0.05
    assert svq["paper_effect"] == pytest.approx((1.105 - 1.018) / 1.105 * 100, abs=0.01)
    assert svq["paper_version"].startswith("arXiv:2312.03406v3")
    assert "torch 2.13.0+cpu" in svq["software"] and "vector_quantize_pytorch 1.32.0" in svq["software"]


def test_a_one_percent_difference_inside_the_seed_noise_is_inconclusive(claims):
    frozen = _row(claims, "t2m: SVQ (frozen) lowers MSE vs SimVP")
    assert frozen["ci_low"] < 0 < frozen["ci_high"] and frozen["verdict"] == "inconclusive"
    reverse = _row(claims, "t2m: a learnable codebook lowers MSE vs a frozen one")
    assert reverse["verdict"] == "holds"


def test_only_claims_with_runs_are_rows_and_every_verdict_follows_its_interval(claims):
    assert list(claims.columns) == COLUMNS
    assert not claims["claim"].str.contains("Humidity").any()  # no r runs: not testable
    for r in claims.to_dict("records"):
        assert r["verdict"] == verdict(r["ci_low"], r["ci_high"])
        assert math.isfinite(r["effect"]) and r["table"] == 1
    assert sum(verdict_counts(claims).values()) == len(claims)
