"""How forecasts are scored: OpenSTL's frame metrics (``openstl``), the weather field's per-lead
latitude-weighted scores (``lead_scores``), and a model's cost (``cost``: parameters, FLOPs, fps).
Imports core, and the SVQ plug-in for its FLOP count."""
