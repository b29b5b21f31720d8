#!/usr/bin/env python
"""DVC's own seconds per stage in this project's pipeline: dvc.yaml and dvc.lock of the whole
catalogue in three layouts, side by side in one run:

* "before": every stage lists the ~40 code files its script imports and each params.yaml key it
  reads, every reference stage the whole catalogue as a param (with ruamel.yaml's pure-Python
  parser, as it was, and with its C parser, ``ruamel.yaml.clib``);
* "digests": one ``code`` stage, the others depend on their kind's code digest
  (pipeline/repro/code_digest.py); a section read whole is declared as the section
  (``pipeline.repro.run_params.fold_keys``); each train stage still declares its keys;
* "now": as "digests", but a train stage depends on its ``run_params/<experiment>.yaml``
  (pipeline/repro/run_params.py) instead of declaring its ~70 lines of keys.

Three scratch repositories are generated from the current params.yaml and code: dvc.yaml as
``pipeline.repro.experiments`` writes it (and as it wrote it before), every stage command replaced by
``true``, every output a small placeholder, and a dvc.lock for every stage written as DVC writes
it (file hashes real, folder hashes placeholders), so the lock has its full size. Then, per
variant, ``dvc repro -f --single-item`` of K train stages in one process: DVC checks each stage,
runs ``true``, hashes the outputs and rewrites dvc.lock, which is all the overhead a stage pays.
Variants are interleaved and repeated; wall and CPU seconds per stage are printed (CPU seconds of
the DVC process: the steadier figure on a shared machine) with the ratio to "before, pure".
Last, what planning a repro costs (``dvc repro --dry`` over all stages), in each layout.

    .venv/bin/python bench/dvc_overhead.py [--stages 4] [--repeats 2] [--no-planning]
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import io
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from machine import print_header  # noqa: E402

from pipeline.config.load import load_params
from pipeline.core.dotted import has_key, lookup  # noqa: E402
from pipeline.data.dataset_params import dataset_deps  # noqa: E402
from pipeline.repro.code_digest import KINDS, write_digests  # noqa: E402
from pipeline.repro.experiments import build_stages, code_deps  # noqa: E402
from pipeline.repro.run_params import train_keys, write_all  # noqa: E402

# DVC's CLI in a fresh interpreter; PURE first makes ruamel.yaml choose its pure-Python parser
DVC = "import sys; from dvc.cli import main; sys.exit(main(sys.argv[1:]))"
PURE = "import ruamel.yaml.main as m; m.CParser = None; "


def leaf_keys(params: dict[str, Any], keys: list[str]) -> list[str]:
    """Sections declared whole (``pipeline.repro.experiments.fold_keys``) as their keys, as declared before."""
    out = []
    for key in keys:
        if not has_key(params, key):  # a layer the catalogue may fill (pipeline/config/overrides.py)
            out.append(key)
            continue
        stack = [(key, _value(params, key))]
        while stack:
            k, v = stack.pop()
            if isinstance(v, dict) and v and not (k.startswith("experiments") or ".experiments." in k):
                stack += [(f"{k}.{kk}", vv) for kk, vv in v.items()]
            else:
                out.append(k)
    return sorted(out)


def digests_stages(params: dict[str, Any]) -> dict[str, Any]:
    """dvc.yaml's stages with code digests, before run_params: each train stage declares its keys."""
    stages = build_stages(params)["stages"]
    del stages["params"]
    for name, stage in stages.items():
        if name.startswith("train_"):
            stage["deps"] = [d for d in stage["deps"] if not d.startswith("run_params/")]
            stage["params"] = train_keys(params, name[len("train_"):])
    return stages


def before_stages(params: dict[str, Any]) -> dict[str, Any]:
    """dvc.yaml's stages as the generator wrote them before the code digests and folded sections."""
    stages = digests_stages(params)
    del stages["code"]
    per_kind = {k: code_deps([k]) for k in KINDS}
    for name, stage in stages.items():
        digests = [d for d in stage["deps"] if d.startswith("code_digests/")]
        stage["deps"] = [d for d in stage["deps"] if d not in digests]
        for d in digests:
            stage["deps"] += per_kind[Path(d).stem]
        if name.startswith("reference_"):
            stage["params"] = [*stage["params"][:2], "experiments"]
        elif name.startswith(("download_", "preprocess_")):
            stage["params"] = dataset_deps(params, name.split("_", 1)[1])
        elif name.startswith("train_"):
            stage["params"] = leaf_keys(params, stage["params"])
    return stages


def _outs(stage: dict[str, Any]) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics") for o in stage.get(key, [])]


def _placeholder(path: Path) -> None:
    """A small file, or a folder holding one, where a stage writes ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".json", ".csv", ".npz", ".md", ".md5"):
        if not path.exists():
            path.write_text("{}\n")
    else:
        path.mkdir(exist_ok=True)
        (path / "part").write_text(path.as_posix())


def _entry(repo: Path, path: str) -> dict[str, Any]:
    """A dvc.lock dep/out entry: a file's real md5; a folder gets a placeholder .dir hash."""
    p = repo / path
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        digest = hashlib.md5("".join(f.as_posix() for f in files).encode()).hexdigest()
        return {"path": path, "hash": "md5", "md5": f"{digest}.dir", "size": sum(f.stat().st_size for f in files),
                "nfiles": len(files)}
    data = p.read_bytes()
    return {"path": path, "hash": "md5", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}


def _value(params: dict[str, Any], key: str) -> Any:
    """A copy (a shared object would be dumped once, then as YAML aliases: DVC writes it out in full)."""
    return copy.deepcopy(lookup(params, key))


def make_repo(path: Path, stages: dict[str, Any], params: dict[str, Any]) -> Path:
    from ruamel.yaml import YAML

    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("pipeline", "stages"):
        shutil.copytree(ROOT / folder, path / folder, ignore=ignore)
    shutil.copy(ROOT / "params.yaml", path / "params.yaml")
    subprocess.run([sys.executable, "-c", DVC, "init", "--no-scm", "-q"], cwd=path, check=True)
    subprocess.run([sys.executable, "-c", DVC, "config", "core.analytics", "false"], cwd=path, check=True)
    if "code" in stages:
        write_digests(path)
    if "params" in stages:
        write_all(params, path / "run_params")
    for stage in stages.values():
        stage["cmd"] = "true"
        for out in _outs(stage):
            _placeholder(path / out)
    yaml = YAML()
    yaml.default_flow_style = False
    with open(path / "dvc.yaml", "w") as f:
        yaml.dump({"stages": stages}, f)
    lock: dict[str, Any] = {}
    for name, stage in stages.items():
        entry: dict[str, Any] = {"cmd": stage["cmd"]}
        if stage.get("deps"):
            entry["deps"] = [_entry(path, d) for d in stage["deps"]]
        if stage.get("params") == [{"params.yaml": None}]:  # the file tracked whole
            entry["params"] = {"params.yaml": copy.deepcopy(params)}
        elif stage.get("params"):
            # DVC records the keys params.yaml has
            entry["params"] = {"params.yaml": {k: _value(params, k) for k in stage["params"] if has_key(params, k)}}
        entry["outs"] = [_entry(path, o) for o in _outs(stage)]
        lock[name] = entry
    buf = io.StringIO()
    yaml.dump({"schema": "2.0", "stages": lock}, buf)
    (path / "dvc.lock").write_text(buf.getvalue())
    return path


def timed(repo: Path, pure: bool, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of one DVC command in ``repo``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", (PURE if pure else "") + DVC, *args], cwd=repo,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed in {repo}:\n{out.stdout}\n{out.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", type=int, default=4, help="train stages per timed dvc repro (default 4)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-planning", action="store_true", help="skip timing `dvc repro --dry`")
    args = ap.parse_args()
    import torch
    from ruamel.yaml.main import CParser

    print_header("DVC overhead per stage: dvc.lock before the code digests (pure/C YAML parser), with "
                 "them, and with run_params", torch.device("cpu"))
    if CParser is None:
        raise SystemExit("ruamel.yaml.clib is not installed (make install): the C parser cannot be compared")
    params = load_params(ROOT / "params.yaml")
    work = Path(tempfile.mkdtemp(prefix="dvc_overhead-"))
    try:
        repos = {"before": make_repo(work / "before", before_stages(params), params),
                 "digests": make_repo(work / "digests", digests_stages(params), params),
                 "now": make_repo(work / "now", build_stages(params)["stages"], params)}
        for name, repo in repos.items():
            lock = (repo / "dvc.lock").read_text()
            print(f"{name:7s}: dvc.lock {lock.count(chr(10)):6d} lines, {len(lock) / 1e6:.2f} MB, "
                  f"{lock.count(chr(10) + '    cmd: ')} stages")
        trains = [s for s in build_stages(params)["stages"] if s.startswith("train_")][:args.stages]
        print(f"timed: dvc repro -f --single-item {' '.join(trains)} ({len(trains)} stages, command `true`), "
              f"{args.repeats} repeat(s), variants interleaved\n")
        variants = [("before", True), ("before", False), ("digests", False), ("now", False)]
        walls: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
        cpus: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
        for _ in range(args.repeats):
            for layout, pure in variants:
                wall, cpu = timed(repos[layout], pure, "repro", "-f", "--single-item", *trains)
                walls[(layout, pure)].append(wall / len(trains))
                cpus[(layout, pure)].append(cpu / len(trains))
        base_wall = statistics.median(walls[("before", True)])
        base_cpu = statistics.median(cpus[("before", True)])
        print(f"{'dvc.lock':8s} {'parser':6s} {'wall s/stage':>13s} {'cpu s/stage':>12s} {'wall ratio':>11s} "
              f"{'cpu ratio':>10s}")
        for layout, pure in variants:
            w, c = statistics.median(walls[(layout, pure)]), statistics.median(cpus[(layout, pure)])
            print(f"{layout:8s} {'pure' if pure else 'C':6s} {w:13.2f} {c:12.2f} {base_wall / w:10.2f}x "
                  f"{base_cpu / c:9.2f}x")
        if not args.no_planning:
            print("\nplanning: dvc repro --dry over every stage (what `make repro` asks first)")
            for layout, pure in (("before", True), ("digests", False), ("now", False)):
                wall, cpu = timed(repos[layout], pure, "repro", "--dry")
                print(f"{layout:8s} {'pure' if pure else 'C':6s} {wall:8.1f} s wall {cpu:8.1f} s cpu")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
