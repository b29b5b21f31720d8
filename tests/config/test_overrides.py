"""Overrides apply where they can and say where they cannot: a change reaches the runs whose value
it sets, lists those that keep another value, and is refused, naming the key that wins, when no run
takes it or a named run would not."""
import copy
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from pipeline.config.overrides import layer_keys, layers, plan, refusal
from pipeline.core.dotted import set_dotted
from pipeline.core.errors import ConfigError
from pipeline.repro.run_params import train_keys


def test_layers_in_resolution_order(params):
    found = layers(params, "t2m_svq")
    assert found["train.epochs"][0] == ("train.epochs", params["train"]["epochs"])
    assert found["train.epochs"][-1][0] == "profiles.sample.train.epochs"
    assert found["model.quantizer"][-1] == ("experiments.t2m_svq.set.model.quantizer", "svq")


def _refused(params, key, value, named=None, baseline=None):
    return refusal(plan(set_dotted(params, key, value), baseline or params), named)


def test_a_change_no_run_takes_is_refused_naming_the_winner(params):
    why = _refused(params, "train.epochs", 4)  # every sample run's epochs come from the profile
    assert re.match(r"train.epochs: changed to 4, but no run takes it: every run that reads it keeps another "
                    r"value, e.g. t2m_simvp profiles.sample.train.epochs=\d+; to change it: "
                    r"dvc exp run -S 'profiles.sample.train.epochs=4'", why)
    assert "git checkout HEAD -- params.yaml" in why
    assert _refused(params, "profiles.sample.train.epochs", 3) is None  # the winner: fine
    assert _refused(params, "train.patience", 3) is None  # not shadowed: fine
    assert plan(set_dotted(params, "train.epochs", 4), None) == []  # nothing committed to compare with
    exp = copy.deepcopy(params)  # an experiment's own `set` shadowed by the profile
    exp["experiments"]["t2m_van_svq"].setdefault("set", {})["train.epochs"] = 7
    assert refusal(plan(exp, params)).startswith("experiments.t2m_van_svq.set.train.epochs: changed to 7")


def test_a_change_reaches_the_runs_it_can_and_lists_the_others(params):
    changes = plan(set_dotted(params, "svq.codebook_size", 6000), params)
    [change] = changes
    assert {"t2m_svq", "t2m_svq_frozen", "r_svq"} <= set(change.reached) and "kth_svq" not in change.reached  # 6000 its own
    kept = {name: (origin, value) for name, origin, value in change.kept}
    # a dataset's or experiment's own value specialises a default on purpose; a profile pins its own
    assert kept["t2m_svq_n10"] == ("experiments.t2m_svq_n10.set.svq.codebook_size", 10)
    assert kept["wbm_svq_frozen"] == ("profiles.sample.experiments.wbm_svq_frozen.set.svq.codebook_size", 1024)
    assert not set(kept) & set(change.reached) and "t2m_simvp" not in kept
    text = "\n".join(change.describe())
    assert set(change.already) == {"kth_svq", "kth_svq_frozen", "kitti_svq", "kitti_svq_frozen"}  # 6000 their own
    assert text.startswith(f"svq.codebook_size = 6000 (was 10000): {len(change.reached)} runs take it "
                           f"(kth_svq_frozen, kth_svq, kitti_svq_frozen, kitti_svq have it already); "
                           f"{len(kept)} runs keep another value:")
    assert "1024 from profiles.sample.experiments.<name>.set.svq.codebook_size" in text
    assert refusal(changes) is None
    # naming a run that keeps its value refuses, naming the key to edit (a set block's: by hand)
    why = refusal(changes, {"wbm_svq_frozen"})
    assert why.startswith("svq.codebook_size: changed to 6000, but train_wbm_svq_frozen keeps "
                          "profiles.sample.experiments.wbm_svq_frozen.set.svq.codebook_size=1024; to change it: edit")
    assert refusal(changes, {"t2m_svq"}) is None


def test_every_layer_is_a_stage_param(params):
    keys = layer_keys(params)["t2m_svq"]
    assert {"train.epochs", "profiles.sample.train.epochs"} <= keys
    assert "svq.codebook_size" not in layer_keys(params)["t2m_svq_n10"]  # its own value, no profile
    keys = train_keys(params, "t2m_svq")  # what run_params/t2m_svq.yaml holds, its stage's dependency
    assert "train.epochs" in keys or "train" in keys
    # a profile's word on one experiment: its whole entry (the dotted keys of `set` are no paths)
    assert {"model.N_S", "profiles.sample.experiments.t2m_vq"} <= layer_keys(params)["t2m_vq"]
    assert "profiles.sample.experiments.t2m_vq" in train_keys(params, "t2m_vq")


def test_a_change_shadowed_by_the_profiles_experiment_entry_is_listed(params):
    found = layers(params, "t2m_vq")
    assert found["model.N_S"][-1] == ("profiles.sample.experiments.t2m_vq.set.model.N_S", 6)
    [change] = plan(set_dotted(params, "profiles.sample.model.N_S", 4), params)
    assert ("t2m_vq", "profiles.sample.experiments.t2m_vq.set.model.N_S", 6) in change.kept
    assert "t2m_svq" in change.reached
    assert refusal([change], {"t2m_vq"}).startswith("profiles.sample.model.N_S: changed to 4, but train_t2m_vq keeps")


@pytest.fixture
def git_env(monkeypatch):
    for k, v in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                 "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
                 "PYTHONPATH": str(ROOT)}.items():
        monkeypatch.setenv(k, v)


def test_dvc_exp_run_applies_where_it_can_and_refuses_what_a_named_run_keeps(tiny_params, tmp_path, git_env):
    """The real `params` stage under `dvc exp run`: a change no run takes stops before any train
    stage; one a named stage would not take stops too; otherwise exactly the runs that take it run,
    and the stage lists the one that keeps its pinned value."""
    repo = tmp_path / "repo"
    (repo / "runs").mkdir(parents=True)
    tiny_params["profiles"]["sample"].setdefault("experiments", {})["t2m_svq_frozen"] = {"set": {"svq.codebook_size": 1024}}
    names = list(tiny_params["experiments"])
    params_stage = {"cmd": f"{sys.executable} {ROOT / 'stages' / 'params.py'}", "params": [{"params.yaml": None}],
                    "outs": [{"run_params": {"cache": False, "persist": True}}]}
    stages = {"params": params_stage}
    for name in names:  # a train stage that records that it ran
        stages[f"train_{name}"] = {"cmd": f"echo ran >> runs/{name}.txt", "deps": [f"run_params/{name}.yaml"]}
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))

    def run(*cmd, ok=True):
        res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=os.environ)
        assert (res.returncode == 0) == ok, f"{cmd}:\n{res.stdout}\n{res.stderr}"
        return res.stdout + res.stderr

    def ran():
        return {n for n in names if (repo / "runs" / f"{n}.txt").exists()}

    dvc = [sys.executable, "-m", "dvc"]
    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run(*dvc, "repro", "-q")
    (repo / ".gitignore").write_text("runs/\n")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    for f in (repo / "runs").iterdir():
        f.unlink()
    out = run(*dvc, "exp", "run", "-S", "train.epochs=3", "train_t2m_svq", ok=False)
    assert "train.epochs: changed to 3, but no run takes it" in out and not ran()
    run("git", "checkout", "HEAD", "--", "params.yaml")  # as the message says: the workspace is clean again
    assert run("git", "status", "--porcelain") == ""
    out = run(*dvc, "exp", "run", "-S", "svq.codebook_size=6000", "train_t2m_svq_frozen", ok=False)
    assert "but train_t2m_svq_frozen keeps profiles.sample.experiments.t2m_svq_frozen.set.svq.codebook_size=1024" in out
    assert not ran()
    run("git", "checkout", "HEAD", "--", "params.yaml")
    out = run(*dvc, "exp", "run", "-S", "svq.codebook_size=6000")
    assert "svq.codebook_size = 6000 (was 10000): 1 run takes it; 1 run keeps another value" in out
    assert "t2m_svq_frozen: 1024 from profiles.sample.experiments.<name>.set.svq.codebook_size" in out
    assert ran() == {"t2m_svq"}
