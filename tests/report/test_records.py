"""RunRecords from a temporary SQLite MLflow store, and the whole report built from it."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.data.prepared import DataError
from pipeline.report.build import build_report
from pipeline.report.records import download_artifact, load_records, metric_history

torch.set_num_threads(1)


def _log_run(client, exp_id, tmp, experiment, seed, metrics, *, params=None, artifacts=None, history=True,
             leads=None):
    tags = {"svq.experiment": experiment, "svq.dataset": experiment.split("_")[0], "svq.profile": "sample",
            "svq.seed": str(seed), "svq.tables": "1,3,4", "svq.quantizer": "none", "svq.translator": "gsta"}
    run = client.create_run(exp_id, tags=tags, run_name=f"{experiment}/seed{seed}")
    rid = run.info.run_id
    for key, value in ({"model.translator": "gsta", "seed": seed} | (params or {})).items():
        client.log_param(rid, key, value)
    if history:
        for epoch, loss in enumerate((1.0, 0.6, 0.5), start=1):
            client.log_metric(rid, "val_loss", loss + seed, step=epoch)
    for key, value in metrics.items():
        client.log_metric(rid, key, value)
    for key, values in (leads or {}).items():  # pipeline.scores' per-lead series, the lead as the step
        for lead, value in enumerate(values, start=1):
            client.log_metric(rid, key, value, step=lead)
    for name, writer in (artifacts or {}).items():
        path = tmp / f"{rid}-{name}"
        path.mkdir()
        writer(path / name)
        client.log_artifact(rid, str(path / name))
    client.set_terminated(rid)
    return rid


def _npz(**arrays):
    return lambda path: np.savez_compressed(path, **arrays)


def _forecast(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(3, 1, 8, 16)).astype(np.float32)
    return _npz(inputs=rng.normal(size=(4, 1, 8, 16)).astype(np.float32), truth=truth, prediction=truth + 0.1)


def _ckpt(state):
    return lambda path: torch.save({"state_dict": state, "config": {"name": "x"}}, path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("svq-sample", artifact_location=(tmp / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    ids = {
        "t2m_simvp": [
            _log_run(client, exp_id, tmp, "t2m_simvp", s, {"test_mse": 1.0 + 0.2 * s, "test_mae": 0.5 + 0.2 * s,
                                                           "flops_per_sample": 2e9},
                     artifacts={f"forecast-seed{s}.npz": _forecast(s)},
                     leads={"lead_rmse_t2m": [1.0, 1.5], "lead_rmse_t2m_persistence": [1.2, 2.0],
                            "lead_rmse_t2m_climatology": [2.5, 2.5]}) for s in (0, 1)],
        "t2m_svq": [_log_run(client, exp_id, tmp, "t2m_svq", 0, {"test_mse": 0.9, "test_mae": 0.45,
                                                                  "q_perplexity_theta3": 12.0},
                             params={"quantizer.codebook_size": 10000,
                                     "model.grid_padding": "31x41 -> 32x48 (reflect)"},
                             leads={"lead_rmse_t2m": [0.9, 1.4], "lead_rmse_t2m_persistence": [1.2, 2.0]},
                             artifacts={"forecast-seed0.npz": _forecast(2),
                                        "svq-weights-seed0.npz": _npz(weights=rng.laplace(size=2000),
                                                                      codebook=rng.normal(size=(50, 8))),
                                        "best-seed0.pt": _ckpt({"quantizer.svq.codebook": torch.randn(50, 8)})})],
        "t2m_vq": [_log_run(client, exp_id, tmp, "t2m_vq", 0, {"test_mse": 1.5, "test_mae": 0.8}, history=False,
                            artifacts={"best-seed0.pt": _ckpt({"quantizer.vq._codebook.embed": torch.randn(1, 40, 8),
                                                               "quantizer.vq._codebook.embed_avg": torch.zeros(1, 40, 8)})})],
    }
    return {"uri": uri, "ids": ids, "tmp": tmp}


def test_load_records_aggregates_seeds(store):
    import mlflow

    before = mlflow.get_tracking_uri()
    recs = {r.experiment: r for r in load_records(store["ids"], tracking_uri=store["uri"])}
    assert mlflow.get_tracking_uri() == before  # the global URI is left as it was
    assert list(recs) == ["t2m_simvp", "t2m_svq", "t2m_vq"]
    r = recs["t2m_simvp"]
    assert (r.n_seeds, r.dataset, r.profile, r.tables, r.seeds) == (2, "t2m", "sample", (1, 3, 4), (0, 1))
    assert r.run_ids == tuple(store["ids"]["t2m_simvp"])
    assert r.metrics["test_mse"] == pytest.approx(1.1) and r.metrics_std["test_mse"] == pytest.approx(0.1)
    assert r.metrics["val_loss"] == pytest.approx(1.0)     # mean of the latest values (0.5, 1.5): as MLflow shows
    assert r.params["model.translator"] == "gsta" and r.params["seed"] == "0,1"
    assert r.metric("q_perplexity", "test_mae") == (pytest.approx(0.6), pytest.approx(0.1))
    assert recs["t2m_svq"].metrics_std["test_mse"] == 0.0 and recs["t2m_svq"].n_seeds == 1
    assert "val_loss" not in recs["t2m_vq"].metrics


def test_load_records_from_a_flat_list_groups_by_tag(store):
    flat = store["ids"]["t2m_vq"] + store["ids"]["t2m_simvp"]
    recs = load_records(flat, tracking_uri=store["uri"])
    assert [(r.experiment, r.n_seeds) for r in recs] == [("t2m_vq", 1), ("t2m_simvp", 2)]


def test_missing_run_id_names_the_experiment(store):
    with pytest.raises(DataError, match=r"experiment 't2m_svq'.*0123abcd.*re-run its stage"):
        load_records({"t2m_svq": ["0123abcd"]}, tracking_uri=store["uri"])
    with pytest.raises(DataError, match="not found"):
        load_records(["0123abcd"], tracking_uri=store["uri"])
    assert load_records({}, tracking_uri=store["uri"]) == []


def test_history_and_artifacts(store, tmp_path):
    rid = store["ids"]["t2m_simvp"][1]
    assert metric_history(rid, "val_loss", store["uri"]) == [(1, 2.0), (2, 1.6), (3, 1.5)]
    path = download_artifact(rid, "forecast-seed1.npz", tmp_path, store["uri"])
    assert path.exists() and set(np.load(path).files) == {"inputs", "truth", "prediction"}
    assert download_artifact(rid, "nope.npz", tmp_path, store["uri"]) is None


def test_lead_curves_pair_runs_with_references(store):
    from pipeline.report.build import lead_curves
    from pipeline.report.records import load_records

    records = {r.experiment: r for r in load_records(store["ids"], store["uri"])}
    params = {"datasets": {"t2m": {"title": "T2M"}}}
    curves = lead_curves(params, records, store["uri"])
    assert list(curves) == ["T2M: t2m"]
    panel = curves["T2M: t2m"]
    assert panel["SimVP"] == [(1, 1.0), (2, 1.5)] and panel["SimVP+SVQ (learnable)"] == [(1, 0.9), (2, 1.4)]
    assert panel["Persistence"] == [(1, 1.2), (2, 2.0)] and panel["Climatology"] == [(1, 2.5), (2, 2.5)]


def test_build_report_end_to_end_and_atomic(store, tmp_path):
    runs = tmp_path / "runs"
    for exp, ids in store["ids"].items():
        (runs / exp).mkdir(parents=True)
        (runs / exp / "result.json").write_text(json.dumps({"experiment": exp, "profile": "sample", "run_ids": ids}))
    (runs / "reference_t2m").mkdir()
    (runs / "reference_t2m" / "result.json").write_text(json.dumps({"profile": "sample", "references": {
        "persistence": {"label": "Persistence (last input frame)", "metrics": {"test_mse": 1.0, "test_mae": 0.8}}}}))
    (runs / "t2m_svq_mse").mkdir()  # trained under another profile: left out, listed as not run
    (runs / "t2m_svq_mse" / "result.json").write_text(json.dumps({"profile": "paper", "run_ids": ["x"]}))
    reports = tmp_path / "reports"
    params = {"profile": "sample",
              "experiments": {e: {} for e in ("t2m_simvp", "t2m_svq", "t2m_vq", "t2m_svq_mse", "r_simvp")},
              "datasets": {"t2m": {"title": "WeatherBench-S temperature"}, "r": {"title": "humidity"}},
              "report": {"tables_dir": str(reports / "tables"), "figures_dir": str(reports / "figures")}}
    kw = dict(runs_dir=runs, readme=reports / "README.md", metrics=reports / "metrics.json",
              tracking_uri=store["uri"], tsne_max_codes=30)
    (reports / "figures").mkdir(parents=True)
    (reports / "figures" / "stale.png").write_bytes(b"old")
    written = build_report(params, **kw)

    assert sorted(p.name for p in written["tables"]) == sorted(
        [f"table{n}.csv" for n in (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15)] + ["references.csv"])
    assert sorted(p.name for p in written["figures"]) == sorted(
        ["forecast_t2m.png", "learning_curves.png", "noise.png", "codebook_size.png", "svq_weights.png",
         "codebook_tsne.png", "lead_rmse.png"])
    assert not (reports / "figures" / "stale.png").exists()
    t1 = pd.read_csv(reports / "tables" / "table1.csv")
    assert (t1["profile"] == "sample").all()
    simvp = t1[(t1["row"] == "SimVP (w/o VQ)") & (t1["column"] == "t2m_mse")].iloc[0]
    assert simvp["ours"] == pytest.approx(1.1) and simvp["ours_text"] == "1.1 ± 0.1" and simvp["paper"] == 1.105
    pers = t1[(t1["row"] == "Persistence (last input frame)") & (t1["column"] == "t2m_mse")].iloc[0]
    assert pers["kind"] == "reference" and pers["ours"] == 1.0
    assert not simvp["beats_persistence"]  # 1.1 vs 1.0
    beats = pd.read_csv(reports / "tables" / "references.csv").set_index("experiment")
    assert beats.loc["t2m_svq", "beats_persistence"] and not beats.loc["t2m_simvp", "beats_persistence"]
    readme = (reports / "README.md").read_text()
    assert "trained runs beat persistence on test MSE" in readme
    assert "(figures/codebook_tsne.png)" in readme and "(tables/table13.csv)" in readme
    assert "`t2m_svq_mse`" in readme and "`r_simvp`" in readme
    assert "`t2m_svq` padded its 31x41 -> 32x48 (reflect) grid" in readme
    assert "Latitude-weighted RMSE per lead time" in readme
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["t2m"]["simvp"]["mse"] == pytest.approx(1.1) and metrics["t2m"]["svq"]["mae"] == 0.45
    assert metrics["t2m_improvement_pct"]["mse"] == pytest.approx(100 * 0.2 / 1.1, abs=1e-3)
    assert not list(reports.glob(".report-*"))

    # a result.json naming a run the store lacks: clear error, previous report untouched
    (runs / "r_simvp").mkdir()
    (runs / "r_simvp" / "result.json").write_text(json.dumps({"profile": "sample", "run_ids": ["feedbeef"]}))
    with pytest.raises(DataError, match="r_simvp"):
        build_report(params, **kw)
    assert (reports / "README.md").read_text() == readme
    assert not list(reports.glob(".report-*"))
