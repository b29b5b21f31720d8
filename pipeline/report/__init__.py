"""The paper's tables (CSV + markdown), figures and headline metrics, built from the committed run
records (``runs/<exp>/result.json`` and friends, ``pipeline.training.record_files``): no data
store, no MLflow. Imports core, config and the record files."""
