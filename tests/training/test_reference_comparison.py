"""Where a run stands against each reference forecast, whole split and per lead, and how it says so."""
import numpy as np
import pytest

from pipeline.training.reference_comparison import compare, reference_errors, seed_mean_lead_mse
from pipeline.training.reference_forecasts import reference_scores
from pipeline.training.record_files import stage_metrics
from pipeline.training.summary_line import one_line_summary, verdicts

REFS = {"persistence": {"mse": 4.0, "mae": 1.5, "lead_mse": np.array([1.0, 7.0])},
        "input_mean": {"mse": 2.0, "mae": 1.1, "lead_mse": np.array([2.0, 2.0])}}


def test_a_model_that_wins_overall_but_loses_at_lead_one_says_so():
    got = compare([1.5, 2.1], REFS)  # test MSE 1.8
    assert got["persistence"] == {"mse": 4.0, "skill_mse": pytest.approx(0.55), "leads_lost": [1], "leads": 2}
    assert got["input_mean"]["skill_mse"] == pytest.approx(0.1) and got["input_mean"]["leads_lost"] == [2]
    text = verdicts(got)
    assert text == ("beats persistence (+55.0%), input mean (+10.0%); per lead (of 2) loses to persistence at "
                    "lead 1, input mean at lead 2")
    worse = verdicts(compare([3.0, 3.0], REFS))
    assert worse.startswith("beats persistence (+25.0%); LOSES TO input mean (-50.0%)")


def test_stage_metrics_and_summary_line_carry_every_reference():
    result = {"experiment": "x", "seeds": [0], "metrics": {"test_mse": 1.8, "test_mae": 1.0, "epochs_run": 2},
              "references": compare([1.5, 2.1], REFS)}
    m = stage_metrics(result)
    assert m == {"test_mse": 1.8, "test_mae": 1.0, "persistence_mse": 4.0, "skill_mse_persistence": pytest.approx(0.55),
                 "leads_lost_persistence": 1, "input_mean_mse": 2.0, "skill_mse_input_mean": pytest.approx(0.1),
                 "leads_lost_input_mean": 1}
    line = one_line_summary(result, 62)
    assert line.startswith("train_x done in 1m02s: 1 seed, 2 epochs, test_mae 1, test_mse 1.8, beats persistence")


def test_seed_mean_and_reference_errors_match_the_reference_scores(tiny_store):
    windows = [{"mse": np.array([[1.0, 3.0], [3.0, 5.0]])}, {"mse": np.array([[2.0, 2.0], [2.0, 2.0]])}]
    np.testing.assert_allclose(seed_mean_lead_mse(windows), [2.0, 3.0])
    assert seed_mean_lead_mse([{"ssim": np.ones((2, 2))}]) is None
    refs = reference_errors(tiny_store)
    assert reference_errors(tiny_store) is refs  # once per store and process
    scores = reference_scores(tiny_store, ["mse", "mae"])
    assert set(refs) == set(scores) == {"persistence", "input_mean", "climatology"}
    for name, r in refs.items():
        assert r["mse"] == scores[name]["test_mse"] and r["mae"] == scores[name]["test_mae"]
        assert np.mean(r["lead_mse"]) == pytest.approx(r["mse"], rel=1e-6)  # per-lead values average to the score
