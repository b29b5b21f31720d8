"""params.yaml read, validated and layered into one experiment's run configuration (``params``),
the layers behind each value (``overrides``), and the ``train:`` section's schema (``train``).
Imports core, data (the sources' registry), models and metrics (their settings)."""
