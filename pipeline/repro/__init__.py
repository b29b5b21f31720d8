"""The DVC runner: the catalogue expanded into dvc.yaml (``experiments``), each stage's code
digest and run params, ``make repro``'s progress lines and its warm stage server. Research code
never imports it."""
