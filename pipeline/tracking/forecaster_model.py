"""The MLflow model's code (MLflow's models-from-code): this file is copied into every logged
model and run by ``mlflow.pyfunc.load_model``, so what loading a model executes is this readable
file, never an unpickled object. It rebuilds SimVP (with its quantizer) from the run's checkpoint,
read with ``torch.load(weights_only=True)``: tensors and plain values only.

Needs this project installed (it imports ``pipeline.models``).
"""
from __future__ import annotations

from typing import Any

import mlflow
import numpy as np


class Forecaster(mlflow.pyfunc.PythonModel):
    """``predict(x)``: float32 ``(batch, T_in, C, H, W)`` windows in the store's scaled space to
    ``(batch, T_out, C, H, W)`` forecasts in the same space."""

    # The model signature validates inputs; without this MLflow wraps predict for type-hint
    # validation and, finding none, advises adding them at every import (two lines per train stage)
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        import torch

        from pipeline.models.settings import ModelSettings
        from pipeline.models.simvp import SimVP

        ckpt = torch.load(context.artifacts["checkpoint"], map_location="cpu", weights_only=True)
        cfg = ckpt["config"]
        self.model = SimVP(tuple(ckpt["in_shape"]), ModelSettings(**cfg["model"]), cfg["quantizer"])
        self.model.load_state_dict(ckpt["state_dict"])
        self.model.eval()
        self.t_out = int(ckpt["T_out"])

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.no_grad():
            y, _ = self.model.forecast(x, self.t_out)
        return y.numpy()


mlflow.models.set_model(Forecaster())
