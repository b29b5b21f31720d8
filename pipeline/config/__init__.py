"""params.yaml loaded and validated whole (``load``), its structure (``params_file``), one
experiment's run configuration resolved through the layers (``run_config``), the ``train:``
section's schema (``train``) and which layer gives each value (``overrides``). Imports core, data
(the sources' registry, the data section), models and metrics (their settings)."""
