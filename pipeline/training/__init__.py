"""What the train and reference stages run: the train stage as a function (``train_stage``),
fitting (``fit``), resume checkpoints, DDP, the learning-rate schedule, machine slots, reference
forecasts, and the per-run record files the report reads. Imports everything below it: core,
data, models, metrics, config, tracking."""
