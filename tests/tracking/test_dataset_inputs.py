"""The store logged as a run's dataset inputs, also when trainings race on one tracking server."""
import mlflow
import pytest
from mlflow.exceptions import MlflowException

from pipeline.tracking import dataset_inputs


@pytest.fixture
def tracked(mlflow_uri):
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_uri)
    yield mlflow_uri
    mlflow.set_tracking_uri(before)


def _flaky(monkeypatch, error: str, failures: int) -> list[int]:
    calls, real = [], mlflow.log_inputs

    def log_inputs(**kw):
        calls.append(len(kw["datasets"]))
        if len(calls) <= failures:
            raise MlflowException(error)
        return real(**kw)

    monkeypatch.setattr(mlflow, "log_inputs", log_inputs)
    monkeypatch.setattr(dataset_inputs.time, "sleep", lambda s: None)
    return calls


RACE = ("BAD_REQUEST: (psycopg.errors.UniqueViolation) duplicate key value violates unique "
        'constraint "dataset_pk"')


def test_a_lost_dataset_insert_race_is_retried(tiny_store, tracked, monkeypatch):
    calls = _flaky(monkeypatch, RACE, failures=1)
    with mlflow.start_run() as run:
        dataset_inputs.log_store_inputs(tiny_store, "t2m", {"train": 3, "test": 2})
    assert calls == [2, 2]
    inputs = mlflow.MlflowClient(tracked).get_run(run.info.run_id).inputs.dataset_inputs
    assert sorted(i.dataset.name for i in inputs) == ["t2m-test", "t2m-train"]


def test_other_errors_and_a_persistent_race_are_raised(tiny_store, tracked, monkeypatch):
    calls = _flaky(monkeypatch, "INVALID_PARAMETER_VALUE: bad dataset", failures=1)
    with mlflow.start_run(), pytest.raises(MlflowException, match="bad dataset"):
        dataset_inputs.log_store_inputs(tiny_store, "t2m", {"train": 3})
    assert len(calls) == 1
    calls = _flaky(monkeypatch, RACE, failures=dataset_inputs.INPUT_ATTEMPTS)
    with mlflow.start_run(), pytest.raises(MlflowException, match="UniqueViolation"):
        dataset_inputs.log_store_inputs(tiny_store, "t2m", {"train": 3})
    assert len(calls) == dataset_inputs.INPUT_ATTEMPTS
