"""The report as a pure function of the committed run records (runs/<exp>/): no MLflow store."""
import filecmp
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from pipeline.core.errors import DataError
from pipeline.report.build import FIGURE_MANIFEST, build_report, headline_metrics
from pipeline.report.results import load_results
from pipeline.training import record_files


def _write(runs, experiment, seeds_metrics, *, params=None, figure_data=None, profile="sample", leads=None):
    """A record as stages/train.py writes it (pipeline.training.record_files), for made-up metrics."""
    seeds = [{"seed": s, "run_id": f"{experiment}-{s}", "metrics": m, "leads": leads or {}}
             for s, m in seeds_metrics.items()]
    result = record_files.summary(experiment=experiment, dataset=experiment.split("_")[0], profile=profile,
                                tables=[1, 3, 4], params={"model.translator": "gsta"} | (params or {}),
                                seeds=seeds)
    history = [{"seed": s, "epoch": e, "train_loss": 1.0, "val_loss": loss + s, "lr": 1e-3}
               for s in seeds_metrics for e, loss in enumerate((1.0, 0.6, 0.5), start=1)]
    rng = np.random.default_rng(len(experiment))
    truth = rng.normal(size=(3, 1, 8, 16)).astype(np.float32)
    data = {"forecast_inputs": rng.normal(size=(4, 1, 8, 16)).astype(np.float32), "forecast_truth": truth,
            "forecast_prediction": truth + 0.1} | (figure_data or {})
    record_files.write(runs / experiment, result, history, data)


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    rng = np.random.default_rng(0)
    _write(runs, "t2m_simvp", {s: {"test_mse": 1.0 + 0.2 * s, "test_mae": 0.5 + 0.2 * s, "flops_per_sample": 2e9,
                                   "test_lpips": None} for s in (0, 1)},
           leads={"lead_rmse_t2m": [1.0, 1.5], "lead_rmse_t2m_persistence": [1.2, 2.0],
                  "lead_rmse_t2m_climatology": [2.5, 2.5]})
    _write(runs, "t2m_svq", {0: {"test_mse": 0.9, "test_mae": 0.45, "q_perplexity_theta3": 12.0}},
           params={"quantizer.codebook_size": 10000, "model.grid_padding": "31x41 -> 32x48 (reflect)"},
           leads={"lead_rmse_t2m": [0.9, 1.4], "lead_rmse_t2m_persistence": [1.2, float("nan")]},
           figure_data={"svq_weights": rng.laplace(size=2000), "codebook": rng.normal(size=(50, 8))})
    _write(runs, "t2m_vq", {0: {"test_mse": 1.5, "test_mae": 0.8}}, figure_data={"codebook": rng.normal(size=(40, 8))})
    _write(runs, "t2m_svq_mse", {0: {"test_mse": 3.0}}, profile="paper")  # another profile: left out
    (runs / "reference_t2m").mkdir()
    (runs / "reference_t2m" / "result.json").write_text(json.dumps({"profile": "sample", "references": {
        "persistence": {"label": "Persistence (last input frame)", "metrics": {"test_mse": 1.0, "test_mae": 0.8}}}}))
    return runs


# the project's params.yaml with a catalogue of five of its experiments
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
PARAMS["experiments"] = {e: PARAMS["experiments"][e] for e in ("t2m_simvp", "t2m_svq", "t2m_vq", "t2m_svq_mse", "r_simvp")}


def _build(runs, reports):
    return build_report(PARAMS, runs_dir=runs, readme=reports / "README.md", metrics=reports / "metrics.json",
                        tables_dir=reports / "tables", figures_dir=reports / "figures", tsne_max_codes=30)


def test_the_report_deletes_only_figures_it_wrote(runs, tmp_path):
    figures = tmp_path / "reports" / "figures"
    figures.mkdir(parents=True)
    # a user's files in the folder, one named like a figure the report could write
    for name in ("mine.png", "forecast_mine.png", "notes.txt"):
        (figures / name).write_text(name)
    first = _build(runs, tmp_path / "reports")
    assert (figures / "forecast_t2m.png").is_file()
    assert (figures / FIGURE_MANIFEST).read_text().split() == sorted(p.name for p in first["figures"])
    shutil.rmtree(runs / "t2m_svq")  # its forecast figure has no runs any more
    second = _build(runs, tmp_path / "reports")
    assert "forecast_t2m.png" not in [p.name for p in second["figures"]]
    assert not (figures / "forecast_t2m.png").exists()  # the report wrote it: deleted
    for name in ("mine.png", "forecast_mine.png", "notes.txt"):  # the report did not: kept
        assert (figures / name).read_text() == name


def test_records_aggregate_seeds_and_keep_history(runs):
    recs = load_results(runs, list(PARAMS["experiments"]), "sample")
    assert list(recs) == ["t2m_simvp", "t2m_svq", "t2m_vq"]
    simvp = recs["t2m_simvp"]
    assert simvp.n_seeds == 2 and simvp.seeds == (0, 1) and simvp.run_ids == ("t2m_simvp-0", "t2m_simvp-1")
    assert simvp.metric("test_mse") == (pytest.approx(1.1), pytest.approx(0.1))
    assert simvp.metric("test_lpips", "test_mae") == (pytest.approx(0.6), pytest.approx(0.1))  # null: skipped
    assert simvp.history()[1] == [(1, 2.0), (2, 1.6), (3, 1.5)]
    assert recs["t2m_svq"].params["quantizer.codebook_size"] == "10000"
    assert set(recs["t2m_svq"].figure_data()) >= {"svq_weights", "codebook", "forecast_truth"}


def test_report_is_a_pure_function_of_the_records(runs, tmp_path):
    assert not list(tmp_path.rglob("mlflow.db")) and not list(tmp_path.rglob("mlruns"))
    first = _build(runs, tmp_path / "a")
    copy = tmp_path / "copy" / "runs"
    shutil.copytree(runs, copy)
    _build(copy, tmp_path / "b")
    assert sorted(p.name for p in first["figures"]) == sorted(
        ["forecast_t2m.png", "learning_curves.png", "noise.png", "codebook_size.png", "svq_weights.png",
         "codebook_tsne.png", "lead_rmse.png"])
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    differ = cmp.diff_files + [f"{d}/{f}" for d, sub in cmp.subdirs.items() for f in sub.diff_files]
    assert not differ and not cmp.left_only and not cmp.right_only, differ

    reports = tmp_path / "a"
    t1 = pd.read_csv(reports / "tables" / "table1.csv")
    simvp = t1[(t1["row"] == "SimVP (w/o VQ)") & (t1["column"] == "t2m_mse")].iloc[0]
    assert simvp["ours"] == pytest.approx(1.1) and simvp["ours_text"] == "1.1 ± 0.1" and simvp["paper"] == 1.105
    pers = t1[(t1["row"] == "Persistence (last input frame)") & (t1["column"] == "t2m_mse")].iloc[0]
    assert pers["kind"] == "reference" and pers["ours"] == 1.0
    assert not simvp["beats_persistence"]  # 1.1 vs 1.0
    beats = pd.read_csv(reports / "tables" / "references.csv").set_index("experiment")
    assert beats.loc["t2m_svq", "beats_persistence"] and not beats.loc["t2m_simvp", "beats_persistence"]
    readme = (reports / "README.md").read_text()
    assert "trained runs beat persistence on test MSE" in readme
    assert "(figures/codebook_tsne.png)" in readme and "`t2m_svq_mse`" in readme and "`r_simvp`" in readme
    assert {"references.csv", "claims.csv"} <= {p.name for p in first["tables"]}
    claims = pd.read_csv(reports / "tables" / "claims.csv")
    learnable = claims[claims["claim"] == "t2m: SVQ (learnable) lowers MSE vs SimVP"].iloc[0]
    assert learnable["table"] == 1 and learnable["n_seeds"] == 1 and learnable["verdict"] in ("holds", "inconclusive")
    assert readme.splitlines()[6].startswith("**The paper's claims on these runs:**")  # the report opens with them
    assert metrics_claims(reports) == {v: int((claims["verdict"] == v).sum()) for v in ("holds", "reversed",
                                                                                        "inconclusive")}
    assert "`t2m_svq` padded its 31x41 -> 32x48 (reflect) grid" in readme
    assert "Latitude-weighted RMSE per lead time" in readme
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["experiments_reported"] == 3
    assert metrics["table1"]["improvement_t2m_mse"] == pytest.approx(100 * 0.2 / 1.1, abs=1e-3)
    assert not list(reports.glob(".*"))


def metrics_claims(reports):
    return json.loads((reports / "metrics.json").read_text())["claims"]


def test_lead_curves_pair_runs_with_references(runs):
    from pipeline.report.build import lead_curves

    records = load_results(runs, list(PARAMS["experiments"]), "sample")
    curves = lead_curves({"t2m": "T2M"}, records)
    assert list(curves) == ["T2M: t2m"]
    panel = curves["T2M: t2m"]
    assert panel["SimVP"] == [(1, 1.0), (2, 1.5)] and panel["SimVP+SVQ (learnable)"] == [(1, 0.9), (2, 1.4)]
    assert panel["Persistence"] == [(1, 1.2), (2, 2.0)] and panel["Climatology"] == [(1, 2.5), (2, 2.5)]
    from pipeline.report.build import lead_axis
    assert lead_axis(records) == "lead (frames)"  # these records predate lead hours
    for rec in records.values():  # a record with the leads' hours draws them on the x axis
        if rec.leads:
            rec.leads["lead_hours"] = [6.0, 42.0]
    panel = lead_curves({"t2m": "T2M"}, records)["T2M: t2m"]
    assert panel["SimVP"] == [(6.0, 1.0), (42.0, 1.5)] and panel["Persistence"] == [(6.0, 1.2), (42.0, 2.0)]
    assert lead_axis(records) == "lead time (hours after the last input)"


def test_headline_metrics_stay_few(runs):
    from pipeline.report.paper import load_paper
    from pipeline.report.tables import build_all

    recs = load_results(runs, list(PARAMS["experiments"]), "sample")
    head = headline_metrics(recs, build_all(recs, profile="sample", paper=load_paper()), "sample")
    leaves = [v for k, t in head.items() if k.startswith("table") for v in t.values()]
    assert 0 < len(leaves) <= 2 * 12  # <= 2 key cells per table: `dvc exp show` stays readable


def test_a_broken_record_names_its_stage_and_leaves_the_report(runs, tmp_path):
    reports = tmp_path / "reports"
    (reports / ".report.tmp-k1ll3d" / "tables").mkdir(parents=True)  # what a killed run left
    _build(runs, reports)
    readme = (reports / "README.md").read_text()
    (runs / "r_simvp").mkdir()
    (runs / "r_simvp" / "result.json").write_text(json.dumps({"profile": "sample", "run_ids": ["x"]}))
    with pytest.raises(DataError, match=r"runs/r_simvp/result.json.*dvc repro -f train_r_simvp"):
        _build(runs, reports)
    (runs / "r_simvp" / "result.json").write_text("{not json")
    with pytest.raises(DataError, match="train_r_simvp"):
        _build(runs, reports)
    assert (reports / "README.md").read_text() == readme
    assert not list(reports.glob(".*"))
