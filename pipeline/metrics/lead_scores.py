"""The weather field's headline scores beside the paper's: per lead time, latitude-weighted.

As WeatherBench 2: each grid row is weighted by ``cos(lat)``, normalised to mean 1, so a cell
counts in proportion to its area; RMSE is the square root of the time-mean of the weighted
spatial mean of squared errors (sqrt after averaging over forecasts), MAE the mean of absolute
errors with the same weights. Both per lead time and per channel, in physical units. Without
latitudes (a grid on y/x) the weights are uniform and the scores say so.

Skill against a reference forecast is ``1 - RMSE_model / RMSE_reference`` per lead (1 is perfect,
0 no better than the reference, negative worse). The references (persistence, climatology) are
``pipeline.training.reference_forecasts``'s, predicted on exactly the windows the model is scored on.

MLflow keys (one value per lead, the lead as the step, 1-based), per channel ``<ch>``:
``lead_rmse_<ch>``, ``lead_mae_<ch>`` for the model; ``lead_rmse_<ch>_<ref>`` for a reference;
``lead_skill_<ch>_vs_<ref>``. The same numbers are written as ``lead_scores-seed<k>.json``.
"""
from __future__ import annotations

import numpy as np

from pipeline.core.errors import DataError


def latitude_weights(lat) -> np.ndarray:
    """cos(lat) normalised to mean 1 over the rows (WeatherBench 2's ``get_lat_weights`` for a
    regular grid)."""
    lat = np.asarray(lat, dtype=np.float64)
    if lat.ndim != 1 or lat.size == 0 or np.any(np.abs(lat) > 90):
        raise DataError(f"latitudes must be a 1-D list of degrees in [-90, 90], got {lat!r}")
    w = np.cos(np.deg2rad(lat))
    if w.sum() <= 0:
        raise DataError("latitude weights sum to zero (a grid of poles only)")
    return w / w.mean()


class LeadScores:
    """Accumulates weighted squared and absolute errors per (lead, channel) over forecasts."""

    def __init__(self, T_out: int, channels: list[str], lat=None, height: int | None = None):
        self.channels = list(channels)
        self.weighting = "cos(lat)" if lat is not None else "uniform"
        if lat is not None:
            w = latitude_weights(lat)
            if height is not None and w.size != height:
                raise DataError(f"{w.size} latitudes for a grid of {height} rows")
            self.w = w[:, None]
        else:
            self.w = None
        self.se = np.zeros((T_out, len(channels)))
        self.ae = np.zeros((T_out, len(channels)))
        self.n = 0

    def update(self, pred: np.ndarray, true: np.ndarray) -> None:
        """``pred``, ``true``: (B, T_out, C, H, W) in physical units."""
        pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
        if pred.shape != true.shape or pred.ndim != 5 or pred.shape[1:3] != self.se.shape:
            raise DataError(f"lead scores: expected (B, {self.se.shape[0]}, {self.se.shape[1]}, H, W) "
                            f"forecasts and truth, got {pred.shape} and {true.shape}")
        err = pred - true
        w = 1.0 if self.w is None else self.w
        self.se += (err ** 2 * w).mean(axis=(3, 4)).sum(axis=0)
        self.ae += (np.abs(err) * w).mean(axis=(3, 4)).sum(axis=0)
        self.n += pred.shape[0]

    def compute(self) -> dict[str, np.ndarray]:
        """``{"rmse": (T_out, C), "mae": (T_out, C)}``."""
        if not self.n:
            raise DataError("lead scores: no forecast was scored")
        return {"rmse": np.sqrt(self.se / self.n), "mae": self.ae / self.n}


class LeadEvaluation:
    """The model's lead scores and those of reference forecasts on the same test windows.

    ``references``: a ``pipeline.training.reference_forecasts.ReferenceForecasts`` (or None for none); ``lat``:
    the grid's latitudes or None. Fed batch by batch by the test evaluation (see ``update``).
    """

    def __init__(self, test, references=None, lat=None, lead_hours=None):
        self.test = test
        self.refs = references
        self.lead_hours = lead_hours  # hours after the last input of each lead (None: unknown)
        names = list(references.names) if references is not None else []
        H = test.frame_shape[1]
        self.scores = {name: LeadScores(test.T_out, test.channels, lat, H) for name in ["model", *names]}

    def update(self, x, y, pred, first: int) -> None:
        """One test batch in the model's space: inputs ``x``, truth ``y``, forecast ``pred``;
        ``first`` is the index of its first window in the test split."""
        x, y = np.asarray(x), np.asarray(y)
        truth = self.test.to_metric_space(y)
        self.scores["model"].update(self.test.to_metric_space(np.asarray(pred)), truth)
        windows = np.arange(first, first + len(x))
        for name, acc in self.scores.items():
            if name != "model":
                acc.update(self.test.to_metric_space(self.refs.predict(name, x, windows)), truth)

    def partial_sums(self) -> dict:
        """The error sums so far, to add into another evaluation of other windows (several ranks)."""
        return {name: (acc.se, acc.ae, acc.n) for name, acc in self.scores.items()}

    def add_partial_sums(self, sums: dict) -> None:
        for name, (se, ae, n) in sums.items():
            acc = self.scores[name]
            acc.se, acc.ae, acc.n = acc.se + se, acc.ae + ae, acc.n + n

    def result(self) -> dict:
        """Per lead and channel: the model's and each reference's RMSE and MAE, and the skill."""
        values = {name: acc.compute() for name, acc in self.scores.items()}
        out = {"weighting": self.scores["model"].weighting, "channels": self.test.channels,
               "lead": list(range(1, self.test.T_out + 1)), "lead_hours": self.lead_hours,
               "scores": {name: {k: v.tolist() for k, v in s.items()} for name, s in values.items()},
               "skill_rmse": {}}
        model = values["model"]["rmse"]
        for name, s in values.items():
            if name != "model":
                with np.errstate(divide="ignore", invalid="ignore"):
                    out["skill_rmse"][name] = np.where(s["rmse"] > 0, 1 - model / s["rmse"], np.nan).tolist()
        return out


def mlflow_series(result: dict) -> dict[str, list[float]]:
    """Metric name -> values by lead (logged with the lead as the step)."""
    out: dict[str, list[float]] = {}
    for c, ch in enumerate(result["channels"]):
        for name, s in result["scores"].items():
            suffix = "" if name == "model" else f"_{name}"
            out[f"lead_rmse_{ch}{suffix}"] = [row[c] for row in s["rmse"]]
            if name == "model":
                out[f"lead_mae_{ch}"] = [row[c] for row in s["mae"]]
        for name, skill in result["skill_rmse"].items():
            out[f"lead_skill_{ch}_vs_{name}"] = [row[c] for row in skill]
    return out
