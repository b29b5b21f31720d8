"""The model's settings (params.yaml ``model:``): SimVP's widths, depths and kernels, which
translator and quantizer it is built with, and where the quantizer sits. The values themselves
live in params.yaml; this schema says what each may be."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from pipeline.core.schema import Rate, Settings, expected, registered
from pipeline.models.quantizers import QUANTIZERS
from pipeline.models.translators import TRANSLATORS


def _even(n: int) -> int:
    if n % 2:
        raise expected("an even number of encoder layers (every second one halves the resolution)")
    return n


def _odd(k: int) -> int:
    if k % 2 == 0:
        raise expected("a positive odd kernel size")
    return k


# Upper bounds far above any published setting (the paper and OpenSTL: hid_S <= 64, hid_T <= 512,
# N_S <= 6, N_T <= 8, kernels <= 7): a typo such as hid_T: 2560000 is refused by name here, before
# the build tries to allocate terabytes and dies with a traceback (or the OOM killer)
OddKernel = Annotated[int, Field(gt=0, le=63), AfterValidator(_odd)]


class ModelSettings(Settings):
    translator: Annotated[str, registered(TRANSLATORS)]   # pipeline/models/translators
    hid_S: Annotated[int, Field(gt=0, le=1024)]
    hid_T: Annotated[int, Field(gt=0, le=4096)]
    N_S: Annotated[int, Field(gt=0, le=32), AfterValidator(_even)]
    N_T: Annotated[int, Field(ge=2, le=64)]               # the first block reduces, the last expands
    spatio_kernel_enc: OddKernel
    spatio_kernel_dec: OddKernel
    drop_path: Rate
    mlp_ratio: Annotated[float, Field(gt=1, le=64)]
    quantizer: Annotated[str, registered(QUANTIZERS)]     # pipeline/models/quantizers
    quantizer_position: Literal["pre", "post"]
    pad: Literal["reflect", "edge"]
    # what the decoder predicts (pipeline/models/target.py); auto is resolved per dataset by resolve_run
    target: Literal["auto", "frames", "residual", "linear"]
