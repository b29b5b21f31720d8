"""One experiment end to end on a tiny store: training, early stopping, test metrics, MLflow."""
import importlib.metadata
import json
import platform

import mlflow
import numpy as np
import pytest
import torch
import yaml

from pipeline.config.run_config import resolve_run
from pipeline.data.windows import WindowDataset
from pipeline.training import record_files
from pipeline.training.fit import run_experiment

# Test metrics of this tiny run as recorded with the sample profile's batches of 2 (eec92fe) and
# channels-last CPU weights: the same configuration and seed must keep training the same model.
RECORDED = {"t2m_simvp": {"test_mse": 34.58122435000908, "test_mae": 5.281914356876822},
            "t2m_svq": {"test_mse": 34.97486864481877, "test_mae": 5.302465438842773,
                        "q_perplexity_theta2": 1808.1990970452955}}


@pytest.mark.parametrize("name", ["t2m_simvp", "t2m_svq"])
def test_run_logs_params_metrics_and_artifacts(tiny_params, tiny_store, mlflow_uri, tmp_path, name):
    cfg = resolve_run(tiny_params, name)
    summary = run_experiment(cfg, tiny_store, tmp_path / "out")

    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["run_ids"] == summary["run_ids"] and len(result["run_ids"]) == 1
    for key in ("test_mse", "test_mae", "test_rmse", "params_total", "flops_per_sample", "fps_inference"):
        assert np.isfinite(result["metrics"][key]), key
    assert result["metrics"]["test_rmse"] == pytest.approx(result["metrics"]["test_mse"] ** 0.5)
    assert result["metrics"]["fps_batch"] == cfg.train.fps_batch == 8  # the sample profile's, not OpenSTL's 100
    for key, value in RECORDED[name].items():
        assert result["metrics"][key] == pytest.approx(value, rel=1e-6), (key, result["metrics"][key])
    # the committed record holds what the report needs: per-seed metrics, parameters, figure arrays
    assert result["runs"][0]["metrics"]["test_mse"] == result["metrics"]["test_mse"]
    assert result["runs"][0]["leads"].get("lead_hours") == WindowDataset(tiny_store, "test").lead_hours()  # no stamps
    assert result["params"]["model.quantizer"] == cfg.model.quantizer
    data = np.load(tmp_path / "out" / "figures.npz")
    assert {"forecast_inputs", "forecast_truth", "forecast_prediction"} <= set(data.files)
    assert ({"svq_weights", "codebook"} <= set(data.files)) == (name == "t2m_svq")
    # every evaluated test window's per-lead errors, averaging to the test metrics (per-pixel means: weather)
    test = WindowDataset(tiny_store, "test")
    evaluated = min(len(test), cfg.train.max_eval_batches * cfg.train.val_batch_size)
    windows = record_files.read_windows(tmp_path / "out")
    assert list(windows) == [0] and sorted(windows[0]) == ["mae", "mse"]
    assert windows[0]["mse"].shape == (evaluated, test.T_out) and windows[0]["mse"].dtype == np.float32
    for metric in ("mse", "mae"):
        assert windows[0][metric].astype(np.float64).mean() == pytest.approx(result["metrics"][f"test_{metric}"],
                                                                             rel=1e-6)
    assert np.sqrt(windows[0]["mse"].astype(np.float64).mean()) == pytest.approx(result["metrics"]["test_rmse"],
                                                                                 rel=1e-6)
    assert result["software"] == {"torch": torch.__version__, "python": platform.python_version(),
                                  "vector_quantize_pytorch": importlib.metadata.version("vector-quantize-pytorch")}

    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(result["run_ids"][0])
    assert run.data.tags["svq.experiment"] == name and run.data.tags["svq.profile"] == "sample"
    assert run.data.params["model.quantizer"] == cfg.model.quantizer
    assert run.data.params["train.loss"] == ("mae" if name == "t2m_svq" else "mse")
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1]
    assert {"train_loss", "lr", "test_mse"} <= set(run.data.metrics)
    # the same validation scores for every run, whatever its objective (MAE for SVQ, MSE for SimVP)
    val_mse, val_mae = (client.get_metric_history(run.info.run_id, k) for k in ("val_mse", "val_mae"))
    assert [m.step for m in val_mse] == [1] == [m.step for m in val_mae]
    objective = val_mae if name == "t2m_svq" else val_mse
    assert objective[0].value == pytest.approx(history[0].value, rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config-seed0.yaml", "best-seed0.pt", "forecast-seed0.png", "forecast-seed0.npz"} <= artifacts
    if name == "t2m_svq":
        assert "svq-weights-seed0.npz" in artifacts
        assert run.data.params["quantizer.codebook_size"] == "10000"
        assert "q_perplexity_theta2" in run.data.metrics
    logged = yaml.safe_load((tmp_path / "out" / "config-seed0.yaml").read_text())
    assert logged["name"] == name and logged["seed"] == 0


def test_early_stopping_and_seeds(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch):
    import pipeline.training.fit as train

    losses = iter([1.0, 2.0, 3.0] * 2)  # each seed: worse after epoch 1, so it stops after patience
    monkeypatch.setattr(train, "_validate", lambda *a, **k: {"val_loss": next(losses)})
    tiny_params["seeds"] = [0, 1]
    tiny_params["profiles"]["sample"]["train"].update(epochs=6, patience=2, val_every=1)
    summary = run_experiment(resolve_run(tiny_params, "t2m_simvp"), tiny_store, tmp_path / "out")
    assert len(summary["run_ids"]) == 2
    assert summary["metrics"]["epochs_run"] == 3
    assert summary["metrics"]["best_val_loss"] == 1.0
    lines = (tmp_path / "out" / "history.csv").read_text().splitlines()
    assert lines[0] == "seed,epoch,train_loss,val_loss,lr" and len(lines) == 1 + 2 * 3


def test_validation_every_k_epochs_and_after_the_last(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch):
    """train.val_every (OpenSTL's log_step): the validation loss is computed, logged and used for
    the best model at epochs k, 2k, ... and the last only; patience still counts epochs."""
    import pipeline.training.fit as train

    calls = []
    losses = iter([1.0, 2.0, 3.0, 0.5])

    def val_loss(*a, **k):
        calls.append(1)
        return {"val_loss": next(losses)}

    monkeypatch.setattr(train, "_validate", val_loss)
    tiny_params["profiles"]["sample"]["train"].update(epochs=8, patience=3, val_every=2)
    summary = run_experiment(resolve_run(tiny_params, "t2m_simvp"), tiny_store, tmp_path / "out")
    # epoch 2: 1.0 (best); 4: 2.0 (2 epochs without improvement); 6: 3.0 (4 >= patience 3): stop
    assert len(calls) == 3 and summary["metrics"]["epochs_run"] == 6
    assert summary["metrics"]["best_val_loss"] == 1.0
    rows = [line.split(",") for line in (tmp_path / "out" / "history.csv").read_text().splitlines()[1:]]
    assert [r[3] for r in rows] == ["nan", "1", "nan", "2", "nan", "3"]
    run_id = summary["run_ids"][0]
    assert [m.step for m in mlflow.MlflowClient(mlflow_uri).get_metric_history(run_id, "val_loss")] == [2, 4, 6]
    from pipeline.training.record_files import read_history

    assert read_history(tmp_path / "out") == {0: [(2, 1.0), (4, 2.0), (6, 3.0)]}
    # 5 epochs at k = 2: validated after epochs 2, 4 and the last, 5
    calls.clear()
    losses = iter([3.0, 2.0, 1.0])
    tiny_params["profiles"]["sample"]["train"].update(epochs=5, patience=10)
    summary = run_experiment(resolve_run(tiny_params, "t2m_simvp"), tiny_store, tmp_path / "five")
    assert len(calls) == 3 and summary["metrics"]["best_val_loss"] == 1.0 and summary["metrics"]["epochs_run"] == 5


@pytest.mark.parametrize("name", ["t2m_simvp", "t2m_svq"])
def test_no_finite_validation_loss_is_one_line(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch, name):
    """A NaN validation loss is never ``< best``: no best state to test. One line naming the run and
    store, and no record (t2m_svq validates the untrained forecast first)."""
    import pipeline.training.fit as train
    from pipeline.core.errors import DataError

    monkeypatch.setattr(train, "_validate", lambda *a, **k: {"val_loss": float("nan")})
    tiny_params["profiles"]["sample"]["train"].update(epochs=2, patience=5, val_every=1)
    with pytest.raises(DataError) as err:
        run_experiment(resolve_run(tiny_params, name), tiny_store, tmp_path / "out")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{name} seed 0: no finite val_loss in 2 epochs (last: nan)")
    assert str(tiny_store) in msg
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_noise_reaches_training_inputs_only(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch):
    import pipeline.training.fit as train

    wrapped = []
    real = train.NoisyInputs

    def spy(dataset, proportion, seed):
        wrapped.append((dataset.split, proportion))
        return real(dataset, proportion, seed)

    monkeypatch.setattr(train, "NoisyInputs", spy)
    run_experiment(resolve_run(tiny_params, "t2m_simvp"), tiny_store, tmp_path / "clean")
    assert wrapped == []
    tiny_params["experiments"]["t2m_simvp"]["set"]["train.noise"] = 0.3
    run_experiment(resolve_run(tiny_params, "t2m_simvp"), tiny_store, tmp_path / "noisy")
    assert wrapped == [("train", 0.3)]  # validation and test windows stay clean


def test_cpu_training_uses_channels_last_with_the_same_forecasts(tiny_params):
    """The layout changes only the summation order: forecasts agree to float32 rounding, and a
    checkpoint of the channels-last model loads into a model built as usual (pipeline.forecast)."""
    import copy

    import torch

    from pipeline.training.fit import build_model, cpu_layout

    cfg = resolve_run(tiny_params, "t2m_svq")
    torch.manual_seed(0)
    plain = build_model(cfg, (4, 1, 8, 16)).eval()
    fast = cpu_layout(copy.deepcopy(plain), torch.device("cpu"))
    weight = fast.enc.enc[1].conv.weight  # (the first layer has one input channel: both layouts agree)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    x = torch.randn(2, 4, 1, 8, 16)
    with torch.no_grad():
        expected, got = plain(x)[0], fast(x)[0]
        reloaded = build_model(cfg, (4, 1, 8, 16)).eval()
        reloaded.load_state_dict(fast.state_dict())
        assert torch.equal(reloaded(x)[0], expected)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_split_scaling_reaches_validation_and_test_only(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch):
    import pipeline.training.fit as train

    made = []
    real = train.WindowDataset

    def spy(store, split, **kw):
        made.append((split, kw.get("split_scaling", "train")))
        return real(store, split, **kw)

    monkeypatch.setattr(train, "WindowDataset", spy)
    tiny_params["experiments"]["t2m_simvp"]["set"]["train.split_scaling"] = "own"
    run_experiment(resolve_run(tiny_params, "t2m_simvp"), tiny_store, tmp_path / "own")
    assert made == [("train", "train"), ("val", "own"), ("test", "own")]


def test_split_scaling_of_fixed_scaled_data_is_one_line_before_training(tiny_params, tmp_path):
    from conftest import make_prepared
    from pipeline.core.errors import ConfigError
    from pipeline.data.store import write_store

    store = write_store(make_prepared(scaling="fixed", dtype=np.uint8), tmp_path / "v.zarr")
    tiny_params["experiments"]["t2m_simvp"]["set"]["train.split_scaling"] = "own_both"
    with pytest.raises(ConfigError, match=r"^experiments\.t2m_simvp\.set\.train\.split_scaling: 'own_both' needs "
                                          r"z-scored data; .* has 'fixed' scaling"):
        run_experiment(resolve_run(tiny_params, "t2m_simvp"), store, tmp_path / "out")
    assert not (tmp_path / "out" / "result.json").exists()
