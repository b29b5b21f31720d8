#!/usr/bin/env python
"""Record what the Table 4 comparators computed in the public code, for
tests/models/test_comparators_1125.py.

Needs vector-quantize-pytorch 1.12.5 (the public code's pin), and nothing of this project but the
transcribed public settings (pipeline/report/public_configs.yaml, the ``ablation_vq/*.py`` files):
each comparator is built from the library directly, with the public file's ``vq_kwargs`` and
``dim = C``, and called as the public wrapper (openstl/modules/quantization_modules.py) called it:
tokens (B, H*W, C) from ``view(B, C, -1).transpose(1, 2)``, LFQ given the (B, C, H, W) map itself,
the loss ``torch.mean``-ed (ResidualFSQ: none). Codebooks of the VQ family are cut to 64 codes so
the file stays small; everything else is the public setting.

Per comparator: the initial state, then two training steps (forward, MSE against a fixed target
plus the aux loss, backward; the second sees the EMA update of the first) and one eval-mode step
(no gradient), each with its output, aux loss and indices, and for training the input gradient
and the buffers after it. Fixed seeds
before the build and before each forward (stochastic sampling draws in the forward).

    python tests/models/record_comparators_1125.py    # rewrites tests/models/comparators_1125.npz
"""
from __future__ import annotations

import importlib.metadata
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("comparators_1125.npz")
FACTS = ROOT / "pipeline" / "report" / "public_configs.yaml"
VERSION = "1.12.5"
SHAPE = (2, 32, 4, 4)            # latent (B, C, H, W): tokens (2, 16, 32)
VQ_CODES = 64                    # the VQ family's codebook (public: 1024); LFQ keeps its sizes
FILES = {                        # our name -> the public config it transcribes
    "vq": "VQ.py", "multihead_vq": "MultiHeadVQ.py", "residual_vq": "ResidualVQ.py",
    "grouped_residual_vq": "GroupedResidualVQ.py", "residual_vq_stochastic": "ResidualVQ-Stochastic.py",
    "residual_fsq": "ResidualFSQ.py", "lfq": "LFQ.py", "residual_lfq": "ResidualLFQ.py",
}
VQ_FAMILY = {"vq", "mhvq", "rvq", "grvq"}
PHASES = ("train1", "train2", "eval")
BUILD_SEED = 0


def public_kwargs(name: str) -> tuple[str, dict]:
    """(vq_type, vq_kwargs) of the public file, for latents of SHAPE's C."""
    facts = yaml.safe_load(FACTS.read_text())
    f = facts["files"][f"configs/weather/t2m_5_625/ablation_vq/{FILES[name]}"]
    kw = {k: (SHAPE[1] if v == "hid_S" else v) for k, v in f["vq_kwargs"].items()}
    if f["vq_type"] in VQ_FAMILY:
        kw["codebook_size"] = VQ_CODES
    return f["vq_type"], {"dim": SHAPE[1], **kw}


def build(vq_type: str, kwargs: dict) -> torch.nn.Module:
    import vector_quantize_pytorch as lib
    cls = {"vq": lib.VectorQuantize, "mhvq": lib.VectorQuantize, "rvq": lib.ResidualVQ,
           "grvq": lib.GroupedResidualVQ, "rfsq": lib.ResidualFSQ, "lfq": lib.LFQ, "rlfq": lib.ResidualLFQ}[vq_type]
    return cls(**kwargs)


def public_forward(vq: torch.nn.Module, vq_type: str, embed: torch.Tensor):
    """(quantized map, scalar loss, indices) as the public wrapper computed them."""
    b, c, h, w = embed.shape
    tokens = embed.view(b, c, -1).transpose(1, 2)
    if vq_type == "rfsq":
        out, indices = vq(tokens)
        loss = torch.zeros((), device=embed.device)
    elif vq_type == "lfq":
        out, indices, loss = vq(embed)
        out = out.view(b, c, -1).transpose(1, 2)
    else:
        out, indices, loss = vq(tokens)
        loss = torch.mean(loss)
    return out.transpose(1, 2).reshape(b, c, h, w), loss, indices


def inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1125)
    return {k: torch.randn(SHAPE, generator=g) for k in ("target", *PHASES)}


def forward_seed(phase: str) -> int:
    return 100 + PHASES.index(phase)


def _arr(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def state(vq: torch.nn.Module, buffers_only: bool = False) -> dict[str, torch.Tensor]:
    """The state dict, each tensor once (a shared codebook appears under every layer's key)."""
    params = dict(vq.named_parameters(remove_duplicate=False))
    seen, out = set(), {}
    for k, v in vq.state_dict(keep_vars=True).items():
        if (buffers_only and k in params) or id(v) in seen:
            continue
        seen.add(id(v))
        out[k] = v
    return out


def record() -> dict[str, np.ndarray]:
    installed = importlib.metadata.version("vector-quantize-pytorch")
    if installed != VERSION:
        sys.exit(f"vector-quantize-pytorch {installed} is importable; this records {VERSION} "
                 f"(pip install --no-deps --target DIR vector-quantize-pytorch=={VERSION}; PYTHONPATH=DIR)")
    torch.set_num_threads(1)
    data = inputs()
    out = {"meta/library_version": np.array(VERSION), "meta/torch_version": np.array(torch.__version__),
           **{f"input/{k}": _arr(v) for k, v in data.items()}}
    for name in FILES:
        vq_type, kwargs = public_kwargs(name)
        out[f"{name}/kwargs"] = np.array(json.dumps(kwargs, sort_keys=True))
        torch.manual_seed(BUILD_SEED)
        vq = build(vq_type, kwargs)
        out |= {f"{name}/init/state.{k}": _arr(v) for k, v in state(vq).items()}
        for phase in PHASES:
            training = phase != "eval"
            vq.train(training)
            x = data[phase].clone().requires_grad_(training)
            torch.manual_seed(forward_seed(phase))
            with torch.set_grad_enabled(training):   # as evaluation runs (1.12.5's eval output is detached)
                q, loss, indices = public_forward(vq, vq_type, x)
            out |= {f"{name}/{phase}/out": _arr(q), f"{name}/{phase}/aux": _arr(loss),
                    f"{name}/{phase}/indices": _arr(indices).astype(np.int32)}   # < 2**31 codes
            if training:
                (F.mse_loss(q, data["target"]) + loss).backward()
                out[f"{name}/{phase}/grad"] = _arr(x.grad)
                # parameters get no optimiser step: only the buffers (EMA codebooks) move, and not in eval
                out |= {f"{name}/{phase}/buffer.{k}": _arr(v) for k, v in state(vq, buffers_only=True).items()}
    return out


def main() -> None:
    arrays = record()
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    OUT.write_bytes(buf.getvalue())
    print(f"{OUT.relative_to(ROOT)}: {len(arrays)} arrays, {OUT.stat().st_size / 1024:.0f} KiB, "
          f"vector-quantize-pytorch {VERSION}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
