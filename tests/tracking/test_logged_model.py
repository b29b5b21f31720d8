"""A trained run as MLflow users expect it: a loadable pyfunc model, the store as dataset inputs,
a run name with experiment, seed and DVC experiment, the model-training experiment kind."""
from pathlib import Path

import mlflow
import numpy as np
import torch

from pipeline.config.run_config import resolve_run
from pipeline.data.windows import WindowDataset
from pipeline.tracking.dataset_inputs import store_digest
from pipeline.training.fit import run_experiment


def test_logged_model_forecasts_and_store_is_the_input(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1a2b3")
    out = tmp_path / "runs" / "t2m_svq"
    summary = run_experiment(resolve_run(tiny_params, "t2m_svq"), tiny_store, out)
    run_id = summary["run_ids"][0]
    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "t2m_svq/seed0@exp-1a2b3"
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"t2m-train", "t2m-val", "t2m-test"}
    test = inputs["t2m-test"]
    assert test.dataset.digest == store_digest(tiny_store) and tiny_store.name in test.dataset.source
    assert {t.key: t.value for t in test.tags}["mlflow.data.context"] == "testing"

    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/t2m_svq-seed0")  # named after its run
    # logged from code: loading runs the project's forecaster_model.py, nothing is unpickled
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/t2m_svq-seed0", dst_path=str(tmp_path / "m")))
    assert not list(local.rglob("*.pkl")) and (local / "forecaster_model.py").is_file()
    ds = WindowDataset(tiny_store, "test")
    x = np.stack([ds[i][0].numpy() for i in range(3)])
    y = model.predict(x)
    assert y.shape == (3, ds.T_out, len(ds.channels), *ds.frame_shape[1:]) and np.isfinite(y).all()
    # the same numbers as the run's own best checkpoint
    ckpt = torch.load(out / "best-seed0.pt", map_location="cpu", weights_only=False)
    from pipeline.models.settings import ModelSettings
    from pipeline.models.simvp import SimVP

    net = SimVP(tuple(ckpt["in_shape"]), ModelSettings(**ckpt["config"]["model"]), ckpt["config"]["quantizer"]).eval()
    net.load_state_dict(ckpt["state_dict"])
    with torch.no_grad():
        ref, _ = net.forecast(torch.from_numpy(x), ds.T_out)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-5, atol=1e-6)
    assert model.metadata.signature.inputs.inputs[0].shape[1:] == x.shape[1:]

    # registered as the best model of Table 1, it loads from the registry
    from pipeline.registry import register_best

    best, version = register_best(tiny_params, 1, runs_dir=tmp_path / "runs")  # the tiny catalogue: t2m only
    assert best["run_id"] == run_id and version.name == "svq-sample-table1-t2m" and str(version.version) == "1"
    np.testing.assert_allclose(mlflow.pyfunc.load_model("models:/svq-sample-table1-t2m/1").predict(x), y, rtol=1e-6)


def test_register_best_model_of_a_table(tiny_params, params, mlflow_uri, tmp_path, monkeypatch):
    """The registry picks, within one dataset and metric, the experiment with the best seed mean,
    then its best seed's run."""
    import pytest

    from pipeline.core.errors import ConfigError
    from pipeline.registry import best_run
    from pipeline.training import record_files

    runs = tmp_path / "runs"
    for name, mses in {"t2m_simvp": [3.0, 1.9], "t2m_svq": [2.0, 2.1], "t2m_svq_frozen": [1.0]}.items():
        seeds = [{"seed": i, "run_id": f"{name}-{i}", "metrics": {"test_mse": m, "test_mae": m / 2}}
                 for i, m in enumerate(mses)]
        result = record_files.summary(experiment=name, dataset="t2m", profile="sample", tables=[1],
                                    params={}, seeds=seeds)
        record_files.write(runs / name, result, [], None)
    tiny_params["experiments"]["t2m_svq_frozen"]["tables"] = [6]  # not in table 1
    best = best_run(tiny_params, 1, "test_mse", runs)  # one dataset in the tiny catalogue: no need to name it
    assert (best["experiment"], best["run_id"], best["mean"]) == ("t2m_svq", "t2m_svq-0", 2.05)  # 2.05 < 2.45
    assert best_run(tiny_params, 1, "test_mae", runs, dataset="t2m")["run_id"] == "t2m_svq-0"
    with pytest.raises(ConfigError, match="--table 99"):
        best_run(tiny_params, 99, "test_mse", runs)
    with pytest.raises(ConfigError, match="--metric test_ssim: t2m is scored with test_mse, test_mae, test_rmse"):
        best_run(tiny_params, 1, "test_ssim", runs)
    # the real catalogue: Table 1 spans four weather variables whose MSEs do not compare
    with pytest.raises(ConfigError, match=r"--dataset: table 1 spans t2m, r, uv10, tcc.*--dataset t2m"):
        best_run(params, 1, "test_mse", runs)
    with pytest.raises(ConfigError, match="--dataset kth: not in table 1"):
        best_run(params, 1, "test_mse", runs, dataset="kth")
    assert best_run(params, 1, "test_mse", runs, dataset="t2m")["experiment"] == "t2m_svq_frozen"  # in Table 1 there
    # on the committed records: Table 2's best KTH model by SSIM is a KTH run
    assert best_run(params, 2, "test_ssim", dataset="kth")["experiment"].startswith("kth_")
