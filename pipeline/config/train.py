"""The training settings (params.yaml ``train:``), read by pipeline/training/fit.py: optimiser and
schedule, loss, batches, devices. The values live in params.yaml; this schema says what each may be."""
from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from pipeline.core.paths import repo_root
from pipeline.core.schema import NonNegativeFloat, PositiveFloat, PositiveInt, Rate, Settings, expected


def _device(name: str) -> str:
    # whether the machine has the GPU is checked where the stage starts (training.distributed.check_device)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise expected("auto, cpu or cuda[:N]")
    return name


def _offline_dir(path: str) -> str:
    # relative: below the repository root, so a typo cannot scatter stores over the file system;
    # an absolute path is the user's explicit choice (a node's scratch disk, a shared folder)
    norm = posixpath.normpath(path) if path.strip() else ""
    if not path.startswith("/") and (norm in ("", ".") or norm == ".." or norm.startswith("../")):
        raise expected("a folder inside the repository (e.g. mlruns-offline) or an absolute path")
    return path


# A learning rate (peak, warm-up start or floor) above 10 is a typo, not a setting: the paper's
# runs use 1e-3 to 1e-2, and from the first step Adam moves every weight by about lr, so 1e300
# turned the weights into inf/NaN and failed far from the key that caused it
LearningRate = Annotated[float, Field(gt=0, le=10)]
LearningRateFloor = Annotated[float, Field(ge=0, le=10)]


class TrainSettings(Settings):
    epochs: PositiveInt
    batch_size: PositiveInt             # the global batch, split evenly across `devices`
    val_batch_size: PositiveInt
    lr: LearningRate
    sched: Literal["cosine", "onecycle", "none"]
    warmup_epochs: Annotated[int, Field(ge=0)]
    warmup_lr: LearningRateFloor
    min_lr: LearningRateFloor
    final_div_factor: PositiveFloat
    weight_decay: NonNegativeFloat
    patience: PositiveInt
    val_every: PositiveInt = 1   # validate after every k-th epoch and after the last (OpenSTL's log_step)
    loss: Literal["auto", "mse", "mae"]
    noise: Rate
    max_steps_per_epoch: PositiveInt | None
    max_eval_batches: PositiveInt | None
    num_workers: Annotated[int, Field(ge=0)]
    device: Annotated[str, AfterValidator(_device)]
    precision: Literal["fp32", "bf16", "fp16"]
    devices: PositiveInt
    sync_batchnorm: bool
    # statistics that scale the validation/test splits (pipeline.data.windows.WindowDataset)
    split_scaling: Literal["train", "own", "own_both"] = "train"
    threads: PositiveInt | None = None  # torch intra-op threads; null: torch's default (OMP_NUM_THREADS)
    fps_batch: PositiveInt | None = None  # batch of the inference-speed (FPS) timing; null: OpenSTL's
    # server: log where tracking_uri() points; offline: to a SQLite store in offline_dir, for nodes
    # with no network path to the server (python -m pipeline.tracking.sync copies the runs later)
    tracking: Literal["server", "offline"]
    offline_dir: Annotated[str, AfterValidator(_offline_dir)]

    @field_validator("devices")
    @classmethod
    def _splits_the_batch(cls, devices: int, info: ValidationInfo) -> int:
        batch = info.data.get("batch_size")
        if batch is not None and batch % devices:
            raise expected(f"a number of processes that splits train.batch_size = {batch} evenly")
        return devices

    def offline_store(self) -> Path | None:
        """The folder runs log to under ``tracking: offline``; None under ``server``."""
        return None if self.tracking == "server" else self.offline_folder()

    def offline_folder(self, root: Path | None = None) -> Path:
        """``offline_dir``, a relative one below the repository root (``root``)."""
        path = Path(self.offline_dir)
        return path if path.is_absolute() else (root or repo_root()) / path

    def loss_for(self, quantizer: str) -> str:
        """The paper trains SVQ models with MAE and everything else (comparators too) with MSE."""
        if self.loss != "auto":
            return self.loss
        return "mae" if quantizer == "svq" else "mse"
