"""Real-looking climate files, through the own-data path with the defaults a user gets, must be
learned: SimVP and SimVP+SVQ beat persistence and the mean of the input frames on the whole test
split. The fields (``pipeline.data.climate_fields``) were not shaped with the recipe: a large fixed
spatial pattern with small anomalies, trends that leave the training range, red noise, cycles and
travelling waves. A default recipe that loses to a simple forecast on any of them fails here."""
import mlflow
import pytest

from pipeline.config.load import validate_params
from pipeline.config.run_config import resolve_run
from pipeline.data import climate_fields, prepare
from pipeline.training.fit import run_experiment

WINDOWS = {"annual": (4, 4), "monthly": (6, 6), "sixhourly": (4, 4)}  # T_in, T_out


@pytest.mark.parametrize("kind", climate_fields.KINDS)
def test_default_recipe_beats_persistence_and_the_input_mean(params, tmp_path, mlflow_uri, kind):
    path = climate_fields.write(kind, tmp_path / f"tas_{kind}.nc")
    p = {**params, "data": {**params["data"], "root": str(tmp_path / "data")}}
    T_in, T_out = WINDOWS[kind]
    p["datasets"] = {**params["datasets"], "mine": {
        "source": "custom", "raw": "remote", "title": f"generated {kind} tas", "metrics": ["mse", "mae"],
        "data": {"path": str(path), "variables": ["tas"], "splits": climate_fields.SPLITS[kind],
                 "T_in": T_in, "T_out": T_out}}}
    p["experiments"] = {"mine_simvp": {"dataset": "mine", "tables": [], "set": {}},
                        "mine_svq": {"dataset": "mine", "tables": [], "set": {"model.quantizer": "svq"}}}
    validate_params(p)
    prepare.download(p, "mine")
    store = prepare.preprocess(p, "mine")
    client = mlflow.tracking.MlflowClient(mlflow_uri)
    for name in p["experiments"]:
        cfg = resolve_run(p, name)  # params.yaml's defaults under its active profile, nothing set
        assert cfg.model.target == "linear" and cfg.profile == params["profile"]
        result = run_experiment(cfg, store, tmp_path / name)
        refs = result["references"]
        assert set(refs) >= {"persistence", "input_mean", "climatology"}
        for ref in ("persistence", "input_mean"):
            assert refs[ref]["skill_mse"] > 0, (f"{kind} {name}: test MSE {result['metrics']['test_mse']:.4g} "
                                                f"vs {ref} {refs[ref]['mse']:.4g}")
        run = client.get_run(result["run_ids"][0])  # the MLflow run says so too
        assert run.data.tags["beats_input_mean"] == "yes" and run.data.tags["beats_persistence"] == "yes"
        assert run.data.metrics["skill_mse_input_mean"] == pytest.approx(refs["input_mean"]["skill_mse"], rel=1e-6)
