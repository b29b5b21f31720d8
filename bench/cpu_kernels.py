#!/usr/bin/env python
"""What the portable CPU kernels cost (``pipeline/core/cpu_kernels.py``): one experiment's training
(one seed, the sample profile) with torch's AVX2 kernels, as stage commands run it, against the
machine's own (``ATEN_CPU_CAPABILITY=<native> ONEDNN_MAX_CPU_ISA=ALL MKL_CBWR=AUTO``), alternated in
fresh processes, on stores built for the bench in a temporary folder. Prints CPU seconds per run,
the ratio of medians, and each variant's test MSE (equal within a variant; the two differ in the
last digits on a machine with AVX512).

    .venv/bin/python bench/cpu_kernels.py [--experiments t2m_svq,kitti_simvp] [--repeats 2]
"""
from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

TRAIN = """
import json, sys, yaml
from pathlib import Path
from pipeline.config.run_config import resolve_run
from pipeline.core.paths import store_path
from pipeline.training.fit import run_experiment
p = yaml.safe_load(open(sys.argv[1]))
cfg = resolve_run(p, sys.argv[2])
cfg = cfg.__class__(**{**cfg.__dict__, "seeds": (0,)})
r = run_experiment(cfg, store_path(p, cfg.dataset), Path(sys.argv[3]))
print(json.dumps(r["metrics"]["test_mse"]))
"""


def run(env: dict[str, str], params: Path, exp: str, out: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run([sys.executable, "-c", TRAIN, str(params), exp, str(out)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", default="t2m_svq,kitti_simvp")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    from machine import print_header
    from pipeline.core.cpu_kernels import PORTABLE
    from pipeline.data import prepare

    print_header("cpu_kernels: portable (AVX2) against the machine's own CPU kernels", torch.device("cpu"))
    native_cap = torch.backends.cpu.get_cpu_capability().lower()
    print(f"machine's ATen capability: {native_cap}\n")
    with tempfile.TemporaryDirectory() as tmp:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        p = copy.deepcopy(params)
        p["data"]["root"] = str(Path(tmp) / "data")
        base = {k: v for k, v in os.environ.items() if k not in PORTABLE}
        base |= {"SVQ_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "PYTHONPATH": str(ROOT)}
        variants = {"portable": base | PORTABLE,
                    "native": base | {"ATEN_CPU_CAPABILITY": native_cap, "ONEDNN_MAX_CPU_ISA": "ALL",
                                      "MKL_CBWR": "AUTO"}}
        print(f"{'experiment':14} {'variant':9} {'CPU s (each run)':24} {'median':>7} {'test MSE':>22}")
        for exp in args.experiments.split(","):
            ds = p["experiments"][exp]["dataset"]
            prepare.download(p, ds)
            prepare.preprocess(p, ds)
            path = Path(tmp) / "params.yaml"
            path.write_text(yaml.safe_dump(p))
            times: dict[str, list[float]] = {v: [] for v in variants}
            mse: dict[str, set[float]] = {v: set() for v in variants}
            for k in range(args.repeats):
                for name, env in variants.items():  # alternated: load drifts hit both alike
                    cpu, m = run(env, path, exp, Path(tmp) / f"{exp}-{name}-{k}")
                    times[name].append(cpu)
                    mse[name].add(m)
            for name in variants:
                shown = " ".join(f"{t:6.1f}" for t in times[name])
                print(f"{exp:14} {name:9} {shown:24} {statistics.median(times[name]):7.1f} "
                      f"{', '.join(f'{m!r}' for m in sorted(mse[name])):>22}")
            ratio = statistics.median(times["portable"]) / statistics.median(times["native"])
            print(f"{exp:14} portable / native CPU time: {ratio:.2f}\n", flush=True)


if __name__ == "__main__":
    main()
