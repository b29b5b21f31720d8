"""The Table 4 comparators (pipeline/models/quantizers/lucidrains.py, params.yaml's settings) compute
what the public code computed with vector-quantize-pytorch 1.12.5: initial state, outputs, aux
losses, indices (exactly), input gradients and EMA buffers after two training steps, and eval-mode
outputs, against values recorded from 1.12.5 as the public wrapper called it
(record_comparators_1125.py, which says how to rerun it). Later versions differ in the initial code
counts (VQ, multi-head VQ), the shared-codebook updates (residual variants) and ResidualFSQ."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from pipeline.models.quantizers import build_quantizer
from tests.models.record_comparators_1125 import (BUILD_SEED, FILES, OUT, PHASES, SHAPE, VERSION, forward_seed,
                                                  state)

ROOT = Path(__file__).resolve().parents[2]
RTOL, ATOL = 1e-5, 1e-7


@pytest.fixture(scope="module")
def recorded():
    with np.load(OUT, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def settings(name: str, recorded) -> dict:
    """params.yaml's block for ``name``, at the recorded (smaller) codebook size."""
    ours = dict(yaml.safe_load((ROOT / "params.yaml").read_text())["quantizers"][name])
    theirs = json.loads(str(recorded[f"{name}/kwargs"]))
    if "codebook_size" in ours:
        ours["codebook_size"] = theirs["codebook_size"]
    return ours


def close(actual: torch.Tensor, expected: np.ndarray, what: str) -> None:
    torch.testing.assert_close(actual.detach(), torch.from_numpy(expected), rtol=RTOL, atol=ATOL,
                               check_dtype=True, msg=lambda m: f"{what}: {m}")


def test_the_record_is_from_1_12_5(recorded):
    assert str(recorded["meta/library_version"]) == VERSION
    assert set(FILES) == {k.split("/")[0] for k in recorded if "/kwargs" in k}


@pytest.mark.parametrize("name", list(FILES))
def test_comparator_computes_what_1_12_5_computed(name, recorded):
    torch.set_num_threads(1)
    rec = lambda phase, key: recorded[f"{name}/{phase}/{key}"]  # noqa: E731
    torch.manual_seed(BUILD_SEED)
    q = build_quantizer(name, SHAPE[1], settings(name, recorded))

    init = {k.split("/state.", 1)[1] for k in recorded if k.startswith(f"{name}/init/state.")}
    assert set(state(q.vq)) == init, "library state keys"
    for k, v in state(q.vq).items():
        close(v, rec("init", f"state.{k}"), f"{name} initial {k}")

    captured = []
    q.vq.register_forward_hook(lambda module, args, out: captured.append(out[1]))  # the indices
    target = torch.from_numpy(recorded["input/target"])
    for phase in PHASES:
        training = phase != "eval"
        q.train(training)
        x = torch.from_numpy(recorded[f"input/{phase}"]).clone().requires_grad_(training)
        torch.manual_seed(forward_seed(phase))
        captured.clear()
        with torch.set_grad_enabled(training):
            out, aux = q(x)
        close(out, rec(phase, "out"), f"{name} {phase} output")
        close(aux, rec(phase, "aux"), f"{name} {phase} aux loss")
        indices = captured[0].reshape(rec(phase, "indices").shape)   # LFQ: the public code gave it (B, C, H, W)
        assert np.array_equal(indices.numpy(), rec(phase, "indices")), f"{name} {phase} indices"
        if training:
            (F.mse_loss(out, target) + aux).backward()
            close(x.grad, rec(phase, "grad"), f"{name} {phase} input gradient")
        buffers = "train2" if phase == "eval" else phase    # eval moves no buffer
        for k, v in state(q.vq, buffers_only=True).items():
            close(v, rec(buffers, f"buffer.{k}"), f"{name} {phase} buffer {k}")
