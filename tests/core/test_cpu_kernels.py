"""Stage commands run torch's AVX2 CPU kernels, so a training computes the same numbers on any
x86-64 machine: the environment reaches the stages, and it changes what torch computes here."""
import json
import os
import subprocess

import pytest
import torch

from pipeline.core.cpu_kernels import PORTABLE, portable
from tests.conftest import ROOT

# A few steps of convolutions, group norm and a matrix product, as a training takes them.
STEPS = """
import torch
torch.manual_seed(0); torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(12, 32, 3, padding=1), torch.nn.GroupNorm(2, 32), torch.nn.SiLU(),
                          torch.nn.Conv2d(32, 32, 3, stride=2, padding=1), torch.nn.GroupNorm(2, 32), torch.nn.SiLU(),
                          torch.nn.Conv2d(32, 8, 1), torch.nn.Flatten(), torch.nn.Linear(8 * 32 * 40, 64))
net = net.to(memory_format=torch.channels_last)
opt = torch.optim.Adam(net.parameters(), 1e-2)
x, y = torch.randn(16, 12, 64, 80).to(memory_format=torch.channels_last), torch.randn(16, 64)
for _ in range(10):
    opt.zero_grad(); loss = ((net(x) - y) ** 2).mean(); loss.backward(); opt.step()
print(loss.item().hex())
"""


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE}
    return env | extra


def _stage_python(code, env):
    out = subprocess.run(["sh", "stages/python", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_stage_commands_get_the_portable_kernels_and_a_set_value_wins():
    show = f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {sorted(PORTABLE)}}}))"
    assert json.loads(_stage_python(show, _clean_env())) == PORTABLE
    assert json.loads(_stage_python(show, _clean_env(MKL_CBWR="AUTO")))["MKL_CBWR"] == "AUTO"
    env = portable({"MKL_CBWR": "AUTO"})  # the runner's (make repro) side: the same values, a set one kept
    assert env == PORTABLE | {"MKL_CBWR": "AUTO"}


@pytest.mark.skipif("AVX512" not in torch.backends.cpu.get_cpu_capability(),
                    reason="this CPU has no AVX512: its native kernels are the portable ones")
def test_the_portable_kernels_change_what_torch_computes_here():
    pinned = _stage_python(STEPS, _clean_env())
    # an AVX2 machine, as far as numpy and OpenBLAS can be told to be one: the same numbers
    assert _stage_python(STEPS, _clean_env(NPY_DISABLE_CPU_FEATURES="X86_V4,AVX512_ICL",
                                           OPENBLAS_CORETYPE="Haswell")) == pinned
    native = _stage_python(STEPS, _clean_env(ATEN_CPU_CAPABILITY="avx512", ONEDNN_MAX_CPU_ISA="ALL", MKL_CBWR="AUTO"))
    assert native != pinned  # the machine's own kernels sum in another order
