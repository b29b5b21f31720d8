"""Overrides win or fail loudly: a changed key that a later layer shadows stops the run, naming
the key that wins; DVC re-runs a stage when any layer of a key it reads changes."""
import copy
import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from pipeline.config.overrides import check, layer_keys, layers
from pipeline.core.dotted import set_dotted
from pipeline.core.errors import ConfigError
from pipeline.repro.run_params import train_keys


def test_layers_in_resolution_order(params):
    found = layers(params, "t2m_svq")
    assert found["train.epochs"][0] == ("train.epochs", params["train"]["epochs"])
    assert found["train.epochs"][-1][0] == "profiles.sample.train.epochs"
    assert found["model.quantizer"][-1] == ("experiments.t2m_svq.set.model.quantizer", "svq")


def test_a_shadowed_change_stops_naming_the_winner(params):
    changed = set_dotted(params, "train.epochs", 4)
    with pytest.raises(ConfigError, match=r"train.epochs: changed to 4, but profiles.sample.train.epochs=\d+ wins "
                                          r"for experiment 't2m_svq'.*-S 'profiles.sample.train.epochs=4'"):
        check(changed, params, "t2m_svq")
    check(set_dotted(params, "profiles.sample.train.epochs", 3), params, "t2m_svq")  # the winner: fine
    check(set_dotted(params, "train.patience", 3), params, "t2m_svq")  # not shadowed: fine
    check(changed, None, "t2m_svq")  # no committed params.yaml to compare with: nothing to say
    # a dataset's or experiment's own value specialises a default on purpose: no error
    check(set_dotted(params, "svq.codebook_size", 6000), params, "t2m_svq_n10")
    # an experiment's own `set` shadowed by the profile
    exp = copy.deepcopy(params)
    exp["experiments"]["t2m_svq"]["set"]["train.epochs"] = 7
    with pytest.raises(ConfigError, match="experiments.t2m_svq.set.train.epochs: changed to 7"):
        check(exp, params, "t2m_svq")


def test_every_layer_is_a_stage_param(params):
    keys = layer_keys(params)["t2m_svq"]
    assert {"train.epochs", "profiles.sample.train.epochs"} <= keys
    assert "svq.codebook_size" not in layer_keys(params)["t2m_svq_n10"]  # its own value, no profile
    keys = train_keys(params, "t2m_svq")  # what run_params/t2m_svq.yaml holds, its stage's dependency
    assert "train.epochs" in keys or "train" in keys
    # a profile's word on one experiment: its whole entry (the dotted keys of `set` are no paths)
    assert {"model.N_S", "profiles.sample.experiments.t2m_vq"} <= layer_keys(params)["t2m_vq"]
    assert "profiles.sample.experiments.t2m_vq" in train_keys(params, "t2m_vq")


def test_a_change_shadowed_by_the_profiles_experiment_entry_stops(params):
    found = layers(params, "t2m_vq")
    assert found["model.N_S"][-1] == ("profiles.sample.experiments.t2m_vq.set.model.N_S", 6)
    with pytest.raises(ConfigError, match=r"model.N_S: changed to 4, but "
                                          r"profiles.sample.experiments.t2m_vq.set.model.N_S=6 wins"):
        check(set_dotted(params, "profiles.sample.model.N_S", 4), params, "t2m_vq")


@pytest.fixture
def git_env(monkeypatch):
    for k, v in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                 "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
                 "PYTHONPATH": str(ROOT)}.items():
        monkeypatch.setenv(k, v)


def test_dvc_exp_run_with_a_shadowed_key_fails_loudly(tiny_params, tmp_path, git_env):
    """`dvc exp run -S train.epochs=3 train_t2m_svq` under the sample profile: the real `params`
    stage writes the key into run_params/t2m_svq.yaml, so the train stage runs, and stops naming
    profiles.sample.train.epochs."""
    repo = tmp_path / "repo"
    repo.mkdir()
    out = "runs/t2m_svq/result.json"
    cmd = f"{sys.executable} -m pipeline.config.overrides t2m_svq > /dev/null && echo ran > {out}"
    assert "train" in train_keys(tiny_params, "t2m_svq")  # train.epochs is in its run_params file
    params_stage = {"cmd": f"{sys.executable} {ROOT / 'stages' / 'params.py'}", "params": [{"params.yaml": None}],
                    "outs": [{"run_params": {"cache": False}}]}
    dvc_yaml = {"stages": {"params": params_stage,
                           "train_t2m_svq": {"cmd": cmd, "deps": ["run_params/t2m_svq.yaml"],
                                             "outs": [{out: {"cache": False}}]}}}
    (repo / "runs" / "t2m_svq").mkdir(parents=True)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params, sort_keys=False))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))

    def run(*cmd, ok=True):
        res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=os.environ)
        assert (res.returncode == 0) == ok, f"{cmd}:\n{res.stdout}\n{res.stderr}"
        return res

    dvc = [sys.executable, "-m", "dvc"]
    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    res = run(*dvc, "exp", "run", "-S", "train.epochs=3", "train_t2m_svq", ok=False)
    assert "profiles.sample.train.epochs=1 wins" in res.stdout + res.stderr
    assert not (repo / out).exists()
