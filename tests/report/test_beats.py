"""Reference rows in the tables, the per-run "beats" flags and the report's summary line."""
import json

import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.report.beats import beats_table, read_references, summary_line
from pipeline.report.markdown import render_readme, render_table
from pipeline.report.paper import load_paper
from pipeline.report.results import ExperimentResult
from pipeline.report.tables import build_all, build_table1, build_table2, build_table14


def rec(exp, mse, dataset, mae=None, references=None, **extra):
    metrics = {"test_mse": mse, "test_mae": mae if mae is not None else mse / 2, **extra}
    return ExperimentResult(experiment=exp, dataset=dataset, profile="sample", tables=(1,), n_seeds=1, metrics=metrics,
                     metrics_std={k: 0.0 for k in metrics}, params={}, run_ids=("id",), references=references or {})


def refs(pers, clim, clim_hour=None, label_p="Persistence (last input frame)", input_mean=None, **more):
    out = {"persistence": {"label": label_p, "metrics": {"test_mse": pers, "test_mae": pers / 2, **more}}}
    if input_mean is not None:
        out["input_mean"] = {"label": "Input mean (mean of the input frames)",
                             "metrics": {"test_mse": input_mean, "test_mae": input_mean / 2}}
    if clim is not None:
        out["climatology"] = {"label": "Climatology (train mean)", "metrics": {"test_mse": clim, "test_mae": clim / 2}}
    if clim_hour is not None:
        out["climatology_hour"] = {"label": "Climatology by hour of day",
                                   "metrics": {"test_mse": clim_hour, "test_mae": clim_hour / 2}}
    return out


REFS = {"t2m": refs(14.8, 7.3, 6.0, input_mean=9.0), "r": refs(50.0, 40.0),
        "taxibj": refs(0.8, 1.2), "kth": refs(300.0, None, label_p="Copy last frame", test_ssim=0.8)}
RECORDS = {r.experiment: r for r in [
    rec("t2m_simvp", 93.4, "t2m"), rec("t2m_svq", 6.5, "t2m"),
    # it wins on the whole split but loses to persistence at lead 1 (of 2)
    rec("t2m_svq_frozen", 5.9, "t2m", references={
        "persistence": {"mse": 14.8, "skill_mse": 0.6, "leads_lost": [1], "leads": 2},
        "input_mean": {"mse": 9.0, "skill_mse": 0.34, "leads_lost": [], "leads": 2}}),
    rec("r_simvp", 45.0, "r"),
    rec("taxibj_simvp", 0.5, "taxibj"), rec("kth_simvp", 350.0, "kth", test_ssim=0.7)]}


def test_beats_flags_on_hand_made_records():
    df = beats_table(RECORDS, REFS).set_index("experiment")
    assert df.loc["t2m_simvp", ["beats_persistence", "beats_climatology"]].tolist() == [False, False]
    # climatology means the best climatology: 6.5 beats the all-hours mean (7.3) but not the hourly one (6.0)
    assert df.loc["t2m_svq", ["beats_persistence", "beats_climatology"]].tolist() == [True, False]
    assert df.loc["t2m_svq", "climatology_mse"] == 6.0
    assert df.loc["t2m_svq_frozen", ["beats_persistence", "beats_climatology"]].tolist() == [True, True]
    assert df.loc["t2m_svq", "beats_input_mean"] == True and df.loc["t2m_simvp", "beats_input_mean"] == False  # noqa: E712
    assert pd.isna(df.loc["r_simvp", "beats_input_mean"])  # no input-mean reference given for r
    assert df.loc["t2m_svq_frozen", "leads_lost"] == "persistence: 1 of 2" and df.loc["t2m_svq", "leads_lost"] == ""
    assert df.loc["r_simvp", ["beats_persistence", "beats_climatology"]].tolist() == [True, False]
    assert df.loc["kth_simvp", "beats_persistence"] == False  # noqa: E712
    assert pd.isna(df.loc["kth_simvp", "beats_climatology"])  # video: no climatology
    line = summary_line(beats_table(RECORDS, REFS))
    assert line.startswith("4 of 6 trained runs beat persistence on test MSE; 2 of 3 trained runs beat input mean "
                           "on test MSE; 2 of 5 trained runs beat climatology")
    assert "`t2m_simvp`" in line and "`kth_simvp`" in line


def test_reference_rows_in_tables_1_2_14():
    t1 = build_table1(RECORDS, profile="sample", references=REFS)
    ref = t1[t1["kind"] == "reference"]
    assert set(ref["row"]) == {"Persistence (last input frame)", "Input mean (mean of the input frames)",
                               "Climatology (train mean)", "Climatology by hour of day"}
    pers = ref[(ref["row"] == "Persistence (last input frame)") & (ref["section"] == "WeatherBench-S")]
    assert pers.set_index("column").loc["t2m_mse", "ours"] == 14.8
    assert pers.set_index("column").loc["r_mae", "ours"] == 25.0
    assert pers.set_index("column").loc["t2m_mse", "experiment"] == "reference_t2m"
    assert pd.isna(pers.set_index("column").loc["uv10_mse", "ours"])  # no uv10 reference given
    hourly = ref[ref["row"] == "Climatology by hour of day"].set_index("column")
    assert hourly.loc["t2m_mse", "ours"] == 6.0 and pd.isna(hourly.loc["r_mse", "ours"])
    simvp = t1[(t1["row"] == "SimVP (w/o VQ)") & (t1["column"] == "t2m_mse")].iloc[0]
    assert simvp["beats_persistence"] == False and simvp["beats_climatology"] == False  # noqa: E712
    t2 = build_table2(RECORDS, profile="sample", references=REFS)
    copy = t2[t2["kind"] == "reference"].set_index("column")
    assert set(t2.loc[t2["kind"] == "reference", "row"]) == {"Copy last frame"}
    assert copy.loc["kth_mae", "ours"] == 150.0 and copy.loc["kth_ssim", "ours"] == 0.8
    t14 = build_table14(RECORDS, profile="sample", references=REFS,
                        experiment_datasets={"taxibj_simvp": "taxibj", "taxibj_svq": "taxibj"})
    rows = t14[t14["kind"] == "reference"].set_index(["row", "column"])
    assert rows.loc[("Persistence (last input frame)", "mse"), "ours"] == 0.8
    assert rows.loc[("Climatology (train mean)", "mse"), "ours"] == 1.2
    md = render_table(t14, load_paper()[14])
    assert "| Persistence (last input frame) ◇ | 0.8 |" in md
    # the trained run beats both: no warning mark on its cells
    assert "SimVP (w/o VQ) | 0.5 / 0.3246 (+54.0%) |" in md


def test_tables_without_a_test_metric_get_no_reference_rows():
    tables = build_all(RECORDS, profile="sample", references=REFS)
    assert (tables[12]["kind"] == "reference").sum() == 0
    assert {1, 2, 14} <= {n for n, df in tables.items() if (df["kind"] == "reference").any()}


def test_readme_marks_runs_that_lose_to_a_reference():
    tables = build_all(RECORDS, profile="sample", references=REFS)
    text = render_readme(tables, profile="sample", beats=beats_table(RECORDS, REFS), beats_link="tables/references.csv")
    assert "## Trained runs vs reference forecasts" in text
    assert "4 of 6 trained runs beat persistence on test MSE" in text
    assert "| `t2m_svq_frozen` | t2m | 5.9 | 14.8 | 9 | 6 | ✓ | ✓ | ✓ | persistence: 1 of 2 |" in text
    assert "| `r_simvp` | r | 45 | 50 |  | 40 | ✓ | – | ✗ | – |" in text
    assert "93.4 / 1.105 ⚠PIC" in text  # the sample profile: no relative difference to the paper


def test_read_references_checks_records(tmp_path):
    (tmp_path / "reference_t2m").mkdir()
    (tmp_path / "reference_t2m" / "result.json").write_text(json.dumps(
        {"profile": "sample", "references": REFS["t2m"]}))
    (tmp_path / "reference_kth").mkdir()
    (tmp_path / "reference_kth" / "result.json").write_text(json.dumps({"profile": "paper", "references": REFS["kth"]}))
    assert read_references(["t2m", "kth", "r"], "sample", tmp_path) == {"t2m": REFS["t2m"]}  # kth: another profile, left out
    (tmp_path / "reference_r").mkdir()
    (tmp_path / "reference_r" / "result.json").write_text(json.dumps({"profile": "sample", "references": [1]}))
    with pytest.raises(DataError, match="reference_r/result.json: expected a 'references' mapping"):
        read_references(["t2m", "kth", "r"], "sample", tmp_path)


def test_learning_curve_groups_follow_the_training_loss(params):
    from pipeline.report.build import training_loss

    def bare(exp):  # a record without its parameters, as a committed result.json gives
        return ExperimentResult(exp, "t2m", "sample", (1,), 1, {}, {}, {}, ("id",))
    assert training_loss(params, bare("t2m_simvp")) == "mse"
    assert training_loss(params, bare("t2m_svq")) == "mae"   # SVQ trains with MAE, as the paper
    assert training_loss(params, bare("tcc_svq")) == "mse"   # except where the public code says MSE
    recorded = ExperimentResult("t2m_svq", "t2m", "sample", (1,), 1, {}, {}, {"train.loss": "mse"}, ("id",))
    assert training_loss(params, recorded) == "mse"
    assert training_loss({"experiments": {}}, bare("nowhere")) == ""
