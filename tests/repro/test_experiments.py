"""The catalogue -> dvc.yaml expansion, and DVC re-running exactly what a changed key feeds."""
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from pipeline.repro.experiments import build_stages, render
from pipeline.repro.run_params import train_keys


def test_committed_dvc_yaml_is_up_to_date():
    from pipeline.config.load import load_params

    assert (ROOT / "dvc.yaml").read_text() == render(load_params(ROOT / "params.yaml")), \
        "dvc.yaml is stale: run `python -m pipeline.repro.experiments`"


def test_one_stage_per_experiment_and_shared_runs_once(params):
    stages = build_stages(params)["stages"]
    trains = [s for s in stages if s.startswith("train_")]
    assert len(trains) == len(params["experiments"]) == len(set(trains))
    # t2m_svq feeds many tables but is one stage, trained once
    assert sum(1 for s in trains if s == "train_t2m_svq") == 1
    assert set(params["experiments"]["t2m_svq"]["tables"]) >= {1, 3, 4, 5, 6, 7, 15}
    used = {e["dataset"] for e in params["experiments"].values()}
    assert {s for s in stages if s.startswith("preprocess_")} == {f"preprocess_{d}" for d in used}
    assert "data/processed/t2m.zarr" in stages["train_t2m_svq"]["deps"]
    assert "runs" in stages["report"]["deps"]  # every record, as one dep (one `dvc exp show` column)
    for name, stage in stages.items():  # the interpreter DVC's venv has, arguments quoted
        assert stage["cmd"].startswith("sh stages/python stages/"), name
    # DVC metrics: the report's headline file and each train stage's own scores; the rest of a
    # record is plain outputs
    assert [m for s in stages.values() for m in s.get("metrics", [])] == [
        *({f"runs/{n}/metrics.json": {"cache": False, "persist": True}} for n in params["experiments"]),
        {"reports/metrics.json": {"cache": False, "persist": True}}]
    assert not any("plots" in s for s in stages.values())
    outs = [next(iter(o)) for o in stages["train_t2m_svq"]["outs"]]
    assert outs == ["runs/t2m_svq/artifacts", "runs/t2m_svq/result.json", "runs/t2m_svq/history.csv",
                    "runs/t2m_svq/figures.npz", "runs/t2m_svq/windows.npz"]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d + "/") for d in deps)


def test_code_deps_are_what_each_stage_imports(params):
    """Computed from the import graph: what the hand-written lists missed is there, lazily
    registered modules included (a train stage may build any translator or quantizer). They are
    the `code` stage's deps; the other stages depend on its digests (tests/repro/test_code_digest.py)."""
    code = build_stages(params)["stages"]["code"]["deps"]
    for path in ("stages/train.py", "stages/python", "stages/code.py", "pipeline/repro/code_digest.py",
                 "pipeline/training/fit.py", "pipeline/tracking/mlflow_runs.py", "pipeline/data/store.py", "pipeline/training/forecast_plots.py",
                 "pipeline/models/translators/transformers.py", "pipeline/models/quantizers/lucidrains.py",
                 "pipeline/training/record_files.py", "pipeline/report/build.py", "pipeline/report/paper.yaml",
                 "pipeline/data/prepare.py", "pipeline/data/download.py", "pipeline/training/reference_forecasts.py"):
        assert covered(path, code), path
    assert not covered("pipeline/report/fidelity.py", code)  # imported by no stage
    assert not covered("pipeline/forecast.py", code)
    assert len(code) == len(set(code)) and code == sorted(code)


def test_folders_fold_only_when_every_file_is_a_dep(tmp_path):
    from pipeline.repro.experiments import fold_folders

    for f in ("pipeline/a/x.py", "pipeline/a/b/y.py", "pipeline/a/b/data.yaml", "pipeline/c/z.py", "pipeline/c/w.py"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    (tmp_path / "pipeline/a/__pycache__").mkdir()
    (tmp_path / "pipeline/a/__pycache__/x.cpython-311.pyc").write_text("")
    got = fold_folders({"pipeline/a/x.py", "pipeline/a/b/y.py", "pipeline/a/b/data.yaml", "pipeline/c/z.py"}, tmp_path)
    assert got == ["pipeline/a", "pipeline/c/z.py"]


def test_sections_read_whole_are_declared_as_the_section(params):
    """Fewer keys for DVC to look up (it walks params.yaml once per key), the same values tracked."""
    from pipeline.repro.run_params import fold_keys

    p = {"a": {"x": 1, "y": {"z": 2, "w": 3}}, "b": {"x": 1, "y": 2}, "c": 5,
         "experiments": {"e": {"dataset": "t", "set": {"k": 1}}}}
    assert fold_keys({"a.x", "a.y.z", "a.y.w", "b.x", "c", "experiments.e.dataset", "experiments.e.set"}, p) == \
        ["a", "b.x", "c", "experiments.e.dataset", "experiments.e.set"]
    assert fold_keys({"a.x", "a.y"}, p) == ["a"]
    assert fold_keys({"a.y.z", "b.x"}, p) == ["a.y.z", "b.x"]

    def leaves(keys):  # every key of params.yaml the declared keys cover (the catalogue's as declared)
        out = set()
        for key in keys:
            node = params
            for part in key.split("."):
                node = node[part]
            stack = [(key, node)]
            while stack:
                k, v = stack.pop()
                if isinstance(v, dict) and v and not k.startswith("experiments"):
                    stack += [(f"{k}.{kk}", vv) for kk, vv in v.items()]
                else:
                    out.add(k)
        return out

    stages = build_stages(params)["stages"]
    declared = {name: stages[name]["params"] for name in ("preprocess_t2m", "download_kth")}
    declared |= {f"train_{n}": train_keys(params, n) for n in ("t2m_svq", "t2m_simvp", "kth_svq")}  # in run_params/
    for name, keys in declared.items():
        assert leaves(fold_keys(leaves(keys), params)) == leaves(keys), name  # the same keys tracked
        assert len(keys) <= len(leaves(keys))
    train = declared["train_t2m_svq"]
    assert fold_keys(leaves(train), params) == train
    assert "train" in train and not any(k.startswith("train.") for k in train)


def test_tables_tag_is_no_train_dep(params):
    """Re-tagging an experiment's paper tables re-runs the report, not the training."""
    stages = build_stages(params)["stages"]
    for name in params["experiments"]:
        assert "params" not in stages[f"train_{name}"] and f"run_params/{name}.yaml" in stages[f"train_{name}"]["deps"]
        keys = train_keys(params, name)
        assert f"experiments.{name}.dataset" in keys, name
        assert not any(k in (f"experiments.{name}", f"experiments.{name}.tables") for k in keys), name
    assert "experiments" in stages["report"]["params"]



def test_one_reference_stage_per_dataset_feeding_the_report(params):
    stages = build_stages(params)["stages"]
    used = sorted({e["dataset"] for e in params["experiments"].values()})
    assert sorted(s for s in stages if s.startswith("reference_")) == [f"reference_{d}" for d in used]
    ref = stages["reference_kth"]
    assert ref["cmd"].endswith("stages/reference.py kth")
    assert ref["deps"] == ["data/processed/kth.zarr", "code_digests/reference.md5"]
    assert "datasets.kth.metrics" in ref["params"]
    kth = [n for n, e in params["experiments"].items() if e["dataset"] == "kth"]
    assert kth and ref["params"][2:] == [f"experiments.{n}.{k}" for n in kth for k in ("dataset", "tables")]
    assert ref["outs"] == [{"runs/reference_kth/result.json": {"cache": False, "persist": True}}]  # no DVC metric
    assert "runs" in stages["report"]["deps"]  # the report reads runs/reference_<ds>/ from there


@pytest.fixture
def git_env(monkeypatch):
    for k, v in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                 "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}.items():
        monkeypatch.setenv(k, v)


def test_codebook_change_reruns_only_default_codebook_svq_runs(tiny_params, tmp_path, git_env):
    """Generate dvc.yaml for a tiny catalogue, swap each command for one that only writes its
    outputs and logs its name, then check what `dvc exp run -S svq.codebook_size=6000` re-runs."""
    p = tiny_params
    p["experiments"]["t2m_svq_n10"] = {"dataset": "t2m", "tables": [6],
                                       "set": {"model.quantizer": "svq", "svq.codebook_size": 10}}
    stages = build_stages(p)["stages"]
    log = tmp_path / "ran.log"
    fake = tmp_path / "fake_stage.py"
    fake.write_text(FAKE_STAGE)
    for name, stage in stages.items():
        outs = [next(iter(o)) if isinstance(o, dict) else o
                for section in ("outs", "metrics", "plots") for o in stage.get(section, [])]
        stage["cmd"] = " ".join([sys.executable, str(fake), str(log), name, *outs])
        stage["deps"] = [d for d in stage["deps"] if not d.startswith(("pipeline", "stages"))]
    stages["params"]["cmd"] = f"{sys.executable} {ROOT / 'stages' / 'params.py'}"  # the real one: its files are deps
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    dvc = [sys.executable, "-m", "dvc"]
    def run(*cmd):
        out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
        assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
        return out
    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run(*dvc, "config", "core.analytics", "false")
    run(*dvc, "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    first = log.read_text().split()
    assert {"train_t2m_simvp", "train_t2m_svq", "train_t2m_svq_frozen", "train_t2m_svq_n10", "report"} <= set(first)
    log.write_text("")
    run(*dvc, "repro")
    assert log.read_text() == ""  # nothing changed: nothing runs
    run(*dvc, "exp", "run", "-S", "svq.codebook_size=6000")
    assert sorted(log.read_text().split()) == ["report", "train_t2m_svq", "train_t2m_svq_frozen"]
    header = run(*dvc, "exp", "show", "--csv", "--only-changed").stdout.splitlines()[0].split(",")
    assert "svq.codebook_size" in header and "runs" in header and len(header) <= 40, header
    # each re-run train stage's own metrics file differs from the commit, the others do not
    diff = run(*dvc, "metrics", "diff").stdout
    assert "runs/t2m_svq/metrics.json" in diff and "runs/t2m_simvp/metrics.json" not in diff, diff
    log.write_text("")
    run(*dvc, "exp", "run", "-S", "experiments.t2m_svq.tables=[1,2]")  # a tag: no training
    assert sorted(log.read_text().split()) == ["reference_t2m", "report"]


FAKE_STAGE = """
import pathlib, sys, time
log, name, *outs = sys.argv[1:]
pathlib.Path(log).open("a").write(name + "\\n")
for o in outs:
    q = pathlib.Path(o)
    q.parent.mkdir(parents=True, exist_ok=True)
    if q.suffix == ".json":
        q.write_text('{"ran_at": %d}' % time.time_ns())  # a re-run changes its outputs
    elif q.suffix in (".csv", ".md", ".md5"):
        q.write_text("epoch,val_loss\\n1,1\\n")
    else:
        q.mkdir(exist_ok=True)
        (q / "x").write_text("x")
"""


def test_stage_interpreter_is_the_venv_without_activation(tmp_path):
    """`.venv/bin/dvc repro` runs stage commands with a PATH that has no venv on it."""
    import os

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    probe = ["sh", str(ROOT / "stages" / "python"), "-c", "import sys, pipeline; print(sys.prefix)"]
    for extra in ({"DVC_ROOT": str(ROOT)}, {}):  # DVC's root, or the script's own checkout
        out = subprocess.run(probe, env=env | extra, cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert os.path.realpath(out.stdout.strip()) == os.path.realpath(ROOT / ".venv")
    # an activated venv wins
    out = subprocess.run(probe[:2] + ["-c", "import sys; print(sys.prefix)"],
                         env=env | {"VIRTUAL_ENV": sys.prefix}, capture_output=True, text=True)
    assert os.path.realpath(out.stdout.strip()) == os.path.realpath(sys.prefix)


def test_an_own_datasets_files_are_dependencies_of_its_store(tiny_params, tmp_path):
    """Editing the netCDF a custom dataset reads re-runs its store (and what the store feeds)."""
    for year in (1850, 1860):
        (tmp_path / f"tas_{year}.nc").write_bytes(b"x")
    tiny_params["datasets"]["mine"] = {"source": "custom", "raw": "remote", "metrics": ["mse"],
                                       "data": {"path": str(tmp_path / "tas_*.nc"), "variables": ["tas"]}}
    tiny_params["experiments"]["mine_simvp"] = {"dataset": "mine", "tables": []}
    stages = build_stages(tiny_params)["stages"]
    deps = stages["preprocess_mine"]["deps"]
    assert [d for d in deps if d.endswith(".nc")] == [str(tmp_path / "tas_1850.nc"), str(tmp_path / "tas_1860.nc")]
    assert not any(d.endswith(".nc") for d in stages["preprocess_t2m"]["deps"])  # a twin: no own files
