"""The mission's commands on the real catalogue (params.yaml as committed), planned, not trained:
which runs a `dvc exp run -S ...` re-runs (their run_params files change), which keep a pinned value
and say so, and which changes are refused before any training. The last test runs `dvc exp run`
itself on a copy of this checkout, up to the refusal."""
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, copy_checkout
from pipeline.config.overrides import plan, refusal
from pipeline.config.run_config import resolve_run
from pipeline.core.dotted import set_dotted
from pipeline.repro.run_params import render


def _moved(params, changed):
    """The experiments whose run_params file (their train stage's dependency) the change rewrites."""
    return {n for n in params["experiments"] if render(params, n) != render(changed, n)}


def test_codebook_size_reaches_the_svq_runs_and_lists_those_the_profile_pins(params):
    changed = set_dotted(params, "svq.codebook_size", 6000)
    [change] = plan(changed, params)
    moved = _moved(params, changed)
    assert moved == set(change.reached)  # the printed plan is what DVC re-runs
    assert {"t2m_svq", "r_svq", "uv10_svq_frozen", "t2m_incepu_svq"} <= moved
    assert "kth_svq" not in moved  # KTH's own 6000 already (the paper's per-dataset size): nothing to re-run
    assert not any(resolve_run(params, n).model.quantizer != "svq" for n in moved)
    kept = {name: value for name, _, value in change.kept}
    assert kept["wbm_svq_frozen"] == 1024 and kept["taxibj_svq"] == 1024 and kept["t2m_svq_n10"] == 10
    assert not moved & set(kept)
    assert refusal([change]) is None
    assert "wbm_svq_frozen" in refusal([change], {"wbm_svq_frozen"})  # named: stops before training


def test_epochs_is_pinned_by_the_sample_profile_so_it_is_refused(params):
    changed = set_dotted(params, "train.epochs", 3)
    assert _moved(params, changed) == set()
    why = refusal(plan(changed, params), {"t2m_svq"})
    assert why.startswith("train.epochs: changed to 3, but no run takes it")
    assert "dvc exp run -S 'profiles.sample.train.epochs=3'" in why
    # the key the message names does what the user meant
    moved = _moved(params, set_dotted(params, "profiles.sample.train.epochs", 3))
    assert "t2m_svq" in moved and "wbm_svq" not in moved  # WB-M's epochs are its own in the sample profile


def test_profile_paper_resolves_and_rewrites_every_run(params):
    changed = set_dotted(params, "profile", "paper")
    assert refusal(plan(changed, params)) is None
    assert _moved(params, changed) == set(params["experiments"])
    cfg = resolve_run(changed, "t2m_svq")
    assert cfg.profile == "paper" and cfg.train.epochs == params["train"]["epochs"] and cfg.seeds == (0, 1, 2)


@pytest.mark.parametrize("translator", ["swin", "convnext"])
def test_translator_reaches_the_runs_that_take_the_default(params, translator):
    changed = set_dotted(params, "model.translator", translator)
    [change] = plan(changed, params)
    moved = _moved(params, changed)
    assert moved == set(change.reached) and {"t2m_simvp", "t2m_svq", "t2m_svq_frozen"} <= moved
    kept = {name for name, _, _ in change.kept}
    assert {"t2m_incepu", "t2m_vit_svq", "kth_svq"} <= kept and refusal([change]) is None  # their own translators


@pytest.fixture
def checkout_copy(tmp_path):
    return copy_checkout(tmp_path / "repo")


def test_dvc_exp_run_of_a_pinned_value_stops_before_training_and_says_how_to_clean_up(checkout_copy):
    repo, env = checkout_copy

    def run(*args, ok=True):
        res = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert (res.returncode == 0) == ok, f"{args}:\n{res.stdout}\n{res.stderr}"
        return res.stdout + res.stderr

    dvc = [sys.executable, "-m", "dvc"]
    out = run(*dvc, "exp", "run", "-S", "train.epochs=3", "train_t2m_svq", ok=False)
    assert "params: error: train.epochs: changed to 3, but no run takes it" in out
    assert "Running stage 'train_" not in out  # (DVC may build the data first: its order among stages varies)
    run("git", "checkout", "HEAD", "--", "params.yaml")
    out = run(*dvc, "exp", "run", "-S", "svq.codebook_size=6000", "train_wbm_svq_frozen", ok=False)
    assert "Running stage 'train_" not in out
    assert ("svq.codebook_size: changed to 6000, but train_wbm_svq_frozen keeps "
            "profiles.sample.experiments.wbm_svq_frozen.set.svq.codebook_size=1024") in out
    run("git", "checkout", "HEAD", "--", "params.yaml")
    assert run("git", "status", "--porcelain", "--untracked-files=no") == ""
    assert yaml.safe_load((repo / "params.yaml").read_text()) == yaml.safe_load((ROOT / "params.yaml").read_text())
