"""Where a trained model stands against the reference forecasts (persistence, the input mean,
climatology: ``reference_forecasts``), on the whole test split and lead by lead.

A model *beats* a reference when its test MSE is strictly below the reference's on the same
windows; ``skill_mse`` = 1 - MSE_model / MSE_reference (above 0: it beats it). Per lead the same
comparison on each lead's MSE: ``leads_lost`` lists the leads (1-based) where the model does not
beat the reference, so a model that loses at lead 1 and wins later says so.

    refs = reference_errors(store)                       # once per store and process
    compare(windows["mse"].mean(axis=0), refs)           # {"persistence": {"mse", "skill_mse", "leads_lost"}, ...}
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.training.reference_forecasts import reference_scores

_CACHE: dict[tuple, dict[str, dict[str, Any]]] = {}


def reference_errors(store: str | Path) -> dict[str, dict[str, Any]]:
    """Each default reference's test MSE and MAE, MSE per lead and per window and lead on ``store``'s
    test split: ``{reference: {"mse", "mae", "lead_mse", "window_mse"}}``; computed once per store (as
    written) and process."""
    path = Path(store).resolve()
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_mtime_ns)  # a rewritten store (renamed into place) is a new key
    if key not in _CACHE:
        windows: dict[str, np.ndarray] = {}
        scores = reference_scores(path, ["mse", "mae"], window_mse=windows)
        _CACHE[key] = {r: {"mse": float(s["test_mse"]), "mae": float(s["test_mae"]),
                           "lead_mse": windows[r].mean(axis=0), "window_mse": windows[r]} for r, s in scores.items()}
    return _CACHE[key]


def compare(model_lead_mse: Sequence[float] | np.ndarray,
            references: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The model (its test MSE per lead; their mean is its test MSE) against each reference:
    ``{reference: {"mse": reference MSE, "skill_mse": float, "leads_lost": [lead, ...], "leads": T_out}}``."""
    model = np.asarray(model_lead_mse, dtype=np.float64)
    mse = float(model.mean())
    out = {}
    for name, ref in references.items():
        ref_lead = np.asarray(ref["lead_mse"], dtype=np.float64)
        skill = 1 - mse / ref["mse"] if ref["mse"] > 0 and np.isfinite(mse) else None
        lost = [int(k) + 1 for k in np.flatnonzero(~(model < ref_lead))] if ref_lead.shape == model.shape else []
        out[name] = {"mse": ref["mse"], "skill_mse": skill, "leads_lost": lost, "leads": int(model.size)}
    return out


def seed_mean_lead_mse(windows: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray | None:
    """Per-lead test MSE averaged over seeds, from each seed's per-window errors (None without mse)."""
    per_seed = [np.asarray(w["mse"], dtype=np.float64).mean(axis=0) for w in windows if "mse" in w]
    return np.mean(per_seed, axis=0) if per_seed else None


__all__ = ["reference_errors", "compare", "seed_mean_lead_mse"]
