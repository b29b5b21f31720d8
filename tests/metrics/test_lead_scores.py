"""Per-lead latitude-weighted scores (WeatherBench 2's conventions) and skill vs references."""
import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.data.windows import WindowDataset
from pipeline.metrics.lead_scores import LeadEvaluation, LeadScores, latitude_weights, mlflow_series
from pipeline.training.reference_forecasts import ReferenceForecasts


def test_latitude_weights_are_cos_lat_with_mean_one():
    lat = np.linspace(-87.1875, 87.1875, 32)  # WeatherBench 5.625 deg rows
    w = latitude_weights(lat)
    assert w.mean() == pytest.approx(1) and w[0] == pytest.approx(np.cos(np.deg2rad(87.1875)) / np.cos(np.deg2rad(lat)).mean())
    with pytest.raises(DataError, match="latitudes"):
        latitude_weights([0, 95])


def test_lead_scores_match_a_direct_computation():
    rng = np.random.default_rng(0)
    lat = np.array([-60.0, 0.0, 60.0])
    pred, true = rng.normal(size=(2, 5, 4, 2, 3, 4)), rng.normal(size=(2, 5, 4, 2, 3, 4))
    acc = LeadScores(4, ["a", "b"], lat, height=3)
    for p, t in zip(pred, true):  # two batches
        acc.update(p, t)
    out = acc.compute()
    w = (np.cos(np.deg2rad(lat)) / np.cos(np.deg2rad(lat)).mean())[:, None]
    err = (pred - true).reshape(10, 4, 2, 3, 4)
    # sqrt after the mean over forecasts of the weighted spatial mean (WB2's RMSE)
    np.testing.assert_allclose(out["rmse"], np.sqrt((err ** 2 * w).mean(axis=(3, 4)).mean(axis=0)))
    np.testing.assert_allclose(out["mae"], (np.abs(err) * w).mean(axis=(3, 4)).mean(axis=0))
    assert acc.weighting == "cos(lat)" and LeadScores(4, ["a"]).weighting == "uniform"
    # the poles count less: an error only at 60N weighs half as much as the same at the equator
    e = np.zeros((1, 4, 1, 3, 1))
    e_pole, e_eq = e.copy(), e.copy()
    e_pole[..., 2, 0], e_eq[..., 1, 0] = 1, 1
    a, b = LeadScores(4, ["a"], lat), LeadScores(4, ["a"], lat)
    a.update(e_pole, e * 0), b.update(e_eq, e * 0)
    assert a.compute()["mae"][0, 0] == pytest.approx(b.compute()["mae"][0, 0] / 2)


def test_skill_against_persistence_and_climatology(tiny_store):
    test = WindowDataset(tiny_store, "test")
    refs = ReferenceForecasts(tiny_store, test, ("persistence", "climatology"))
    lead = LeadEvaluation(test, refs, lat=np.linspace(-30, 30, 16))
    x = np.stack([test[i][0].numpy() for i in range(len(test))])
    y = np.stack([test[i][1].numpy() for i in range(len(test))])
    persistence = np.repeat(x[:, -1:], test.T_out, axis=1)
    lead.update(x[:5], y[:5], persistence[:5], 0)  # a "model" that is persistence
    lead.update(x[5:], y[5:], persistence[5:], 5)
    r = lead.result()
    assert r["weighting"] == "cos(lat)" and r["lead"] == [1, 2] and r["channels"] == ["c0"]
    np.testing.assert_allclose(r["skill_rmse"]["persistence"], 0, atol=1e-12)
    np.testing.assert_allclose(r["scores"]["model"]["rmse"], r["scores"]["persistence"]["rmse"])
    clim = r["scores"]["climatology"]["rmse"]
    np.testing.assert_allclose(r["skill_rmse"]["climatology"],
                               1 - np.asarray(r["scores"]["model"]["rmse"]) / np.asarray(clim))
    series = mlflow_series(r)
    assert set(series) == {"lead_rmse_c0", "lead_mae_c0", "lead_rmse_c0_persistence", "lead_rmse_c0_climatology",
                           "lead_skill_c0_vs_persistence", "lead_skill_c0_vs_climatology"}
    assert len(series["lead_rmse_c0"]) == 2
