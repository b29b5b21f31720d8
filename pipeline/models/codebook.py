"""The quantizer's codebook found in a model's state dict (SVQ's and the comparators' names)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def codebook_from_state_dict(state_dict: Mapping[str, Any]) -> np.ndarray | None:
    """The quantizer's codebook as (codes, dim), found by name: SVQ's ``...quantizer(.svq).codebook``,
    else a lucidrains ``embed`` / ``*codebook*`` tensor of 2 or 3 dims (heads are stacked); None if none."""
    def as_array(v):
        arr = v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v, dtype=np.float32)
        return arr.reshape(-1, arr.shape[-1]) if arr.ndim == 3 else arr

    keys = list(state_dict)
    for suffix in ("quantizer.svq.codebook", "quantizer.codebook"):
        for k in keys:
            if k.endswith(suffix) and getattr(state_dict[k], "ndim", 0) in (2, 3):
                return as_array(state_dict[k])
    for k in keys:
        last = k.rsplit(".", 1)[-1]
        if "quantizer" in k and (last == "embed" or "codebook" in last) and \
                getattr(state_dict[k], "ndim", 0) in (2, 3) and "float" in str(getattr(state_dict[k], "dtype", "")):
            return as_array(state_dict[k])  # shared codebooks: the first is the one
    return None
