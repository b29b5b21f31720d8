"""The catalogue -> dvc.yaml expansion, and DVC re-running exactly what a changed key feeds."""
import subprocess
import sys

import pytest
import yaml

from pipeline.experiments import build_stages, render

from conftest import ROOT


def test_committed_dvc_yaml_is_up_to_date():
    from pipeline.config import load_params

    assert (ROOT / "dvc.yaml").read_text() == render(load_params(ROOT / "params.yaml")), \
        "dvc.yaml is stale: run `python -m pipeline.experiments`"


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
    assert all(f"runs/{e}/result.json" in stages["report"]["deps"] for e in params["experiments"])



def test_one_reference_stage_per_dataset_feeding_the_report(params):
    stages = build_stages(params)["stages"]
    used = sorted({e["dataset"] for e in params["experiments"].values()})
    assert sorted(s for s in stages if s.startswith("reference_")) == [f"reference_{d}" for d in used]
    ref = stages["reference_kth"]
    assert ref["cmd"].endswith("stages/reference.py kth")
    assert "data/processed/kth.zarr" in ref["deps"] and "pipeline/references.py" in ref["deps"]
    assert "datasets.kth.metrics" in ref["params"]
    assert ref["metrics"] == [{"runs/reference_kth/result.json": {"cache": False, "persist": True}}]
    assert all(f"runs/reference_{d}/result.json" in stages["report"]["deps"] for d in used)


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


FAKE_STAGE = """
import pathlib, sys, time
log, name, *outs = sys.argv[1:]
pathlib.Path(log).open("a").write(name + "\\n")
for o in outs:
    q = pathlib.Path(o)
    q.parent.mkdir(parents=True, exist_ok=True)
    if q.suffix == ".json":
        q.write_text('{"ran_at": %d}' % time.time_ns())  # a re-run changes its outputs
    elif q.suffix in (".csv", ".md"):
        q.write_text("epoch,val_loss\\n1,1\\n")
    else:
        q.mkdir(exist_ok=True)
        (q / "x").write_text("x")
"""
