"""The trained forecaster as an MLflow model: ``mlflow.pyfunc.load_model(uri).predict(x)`` forecasts.

``x``: float32 ``(batch, T_in, C, H, W)`` windows in the store's scaled space (what the training
loop feeds the model); the result is ``(batch, T_out, C, H, W)`` in the same space. Each model is
named after its run, ``<experiment>-seed<k>`` (``runs:/<run id>/<experiment>-seed<k>``), and is
logged from code (``forecaster_model.py``, copied into the model; nothing is pickled); its
directory holds the best checkpoint. Loading needs this project installed, so ``pip_requirements``
are written out, not inferred (inference would import-trace the model on every run: seconds, and
the whole ``make repro`` has 15 minutes).
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from pipeline.tracking import forecaster_model

# the model's code, copied into each logged model; imported (not only named) so that the train
# stage's code digest holds it (pipeline/repro/imports.py follows imports)
CODE = Path(forecaster_model.__file__)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one per logged model: noise


def model_name(experiment: str, seed: int) -> str:
    """The logged model's name (and its path in ``runs:/<run id>/<name>``)."""
    return f"{experiment}-seed{seed}"


def log_forecaster(checkpoint: Path, example_in: np.ndarray, example_out: np.ndarray, name: str) -> str:
    """Log the checkpoint as the active run's MLflow model ``name`` (``model_name``); return its model URI."""
    import torch
    from mlflow.models import infer_signature

    _skip_distribution_scan()
    example_in = np.asarray(example_in[:1], dtype=np.float32)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.WARNING)  # "Validating input example against model signature", once per model
    with warnings.catch_warnings():  # advice on type hints, which a tensor model does not use
        warnings.simplefilter("ignore", UserWarning)
        info = mlflow.pyfunc.log_model(
            name=name, python_model=str(CODE), artifacts={"checkpoint": str(checkpoint)},
            signature=infer_signature(example_in, np.asarray(example_out[:1], dtype=np.float32)),
            input_example=example_in, pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                                                        f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"])
    pyfunc_log.setLevel(level)
    return info.model_uri


def _skip_distribution_scan() -> None:
    """MLflow checks explicit requirements against the environment through a map of every
    installed distribution's files (~2 s per process on these machines). Ours are pinned from the
    running interpreter, so the map is seeded with just their modules; if MLflow changes this
    internal cache the check simply runs as before."""
    from mlflow.utils import requirements_utils as ru

    if getattr(ru, "_MODULES_TO_PACKAGES", False) is None:
        ru._MODULES_TO_PACKAGES = {m: [m] for m in ("torch", "mlflow", "numpy")}
