"""CPU kernels that compute the same numbers on every x86-64 machine.

torch picks its CPU kernels by the vector instructions the processor has: ATen's own loops
(AVX512 or AVX2), oneDNN's convolutions and MKL's matrix products. Each choice sums in its own
order, so one training on two machines differed in the last bits of every step, and over 300
steps KittiCaltech's test MSE moved in the 4th digit (150.3588 with AVX512 kernels, 150.3591 with
AVX2 ones, the same store, seed and code). Every x86-64 processor made since 2013 has AVX2; asking
all three libraries for their AVX2 kernels makes a run's numbers the same on all of them, at some
CPU time on machines with AVX512 (``bench/results/cpu_kernels-cpu.txt``).

Stage commands get these through ``stages/python`` (which sets the same values: a test checks)
and ``make repro``'s runner (``pipeline.repro.progress``), so the stage server and the stages it
forks agree. A value already in the environment wins: ``ATEN_CPU_CAPABILITY=avx512
ONEDNN_MAX_CPU_ISA=ALL MKL_CBWR=AUTO`` restores the machine's fastest kernels. They only
concern CPU kernels (a GPU run is unaffected); ARM machines ignore them and differ in the last
bits, as any other machine would without them.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

PORTABLE = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def portable(env: MutableMapping[str, str] = os.environ) -> MutableMapping[str, str]:
    """Set :data:`PORTABLE` in ``env`` where it has no value of its own; return ``env``. Must run
    before torch first dispatches a CPU kernel (the libraries read these once)."""
    for key, value in PORTABLE.items():
        env.setdefault(key, value)
    return env


__all__ = ["PORTABLE", "portable"]
