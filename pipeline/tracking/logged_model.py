"""The trained forecaster as an MLflow model: ``mlflow.pyfunc.load_model(uri).predict(x)`` forecasts.

``x``: float32 ``(batch, T_in, C, H, W)`` windows in the store's scaled space (what the training
loop feeds the model); the result is ``(batch, T_out, C, H, W)`` in the same space. The model
directory holds the best checkpoint; loading needs this project installed (the class below is
pickled by reference), so ``pip_requirements`` are written out, not inferred (inference would
import-trace the model on every run: seconds, and the whole ``make repro`` has 15 minutes).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

ARTIFACT_PATH = "model"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one per logged model: noise


class Forecaster(mlflow.pyfunc.PythonModel):
    """SimVP (with its quantizer) rebuilt from the run's checkpoint."""

    def load_context(self, context) -> None:
        import torch

        from pipeline.models.settings import ModelSettings
        from pipeline.models.simvp import SimVP

        ckpt = torch.load(context.artifacts["checkpoint"], map_location="cpu", weights_only=False)
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


def log_forecaster(checkpoint: Path, example_in: np.ndarray, example_out: np.ndarray) -> str:
    """Log the checkpoint as the active run's MLflow model; return its model URI."""
    import torch
    from mlflow.models import infer_signature

    _skip_distribution_scan()
    example_in = np.asarray(example_in[:1], dtype=np.float32)
    with warnings.catch_warnings():  # advice on type hints, which a tensor model does not use
        warnings.simplefilter("ignore", UserWarning)
        info = mlflow.pyfunc.log_model(
            name=ARTIFACT_PATH, python_model=Forecaster(), artifacts={"checkpoint": str(checkpoint)},
            signature=infer_signature(example_in, np.asarray(example_out[:1], dtype=np.float32)),
            input_example=example_in, pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                                                        f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"])
    return info.model_uri


def _skip_distribution_scan() -> None:
    """MLflow checks explicit requirements against the environment through a map of every
    installed distribution's files (~2 s per process on these machines). Ours are pinned from the
    running interpreter, so the map is seeded with just their modules; if MLflow changes this
    internal cache the check simply runs as before."""
    from mlflow.utils import requirements_utils as ru

    if getattr(ru, "_MODULES_TO_PACKAGES", False) is None:
        ru._MODULES_TO_PACKAGES = {m: [m] for m in ("torch", "mlflow", "numpy")}
