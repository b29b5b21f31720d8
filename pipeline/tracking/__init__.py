"""MLflow: opening runs and logging to them (``mlflow_runs``), the logged model (``logged_model``)
and the dataset inputs a run records (``dataset_inputs``). Imports core, data and models."""
