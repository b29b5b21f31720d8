"""The fidelity ledger: committed, current, and every difference from the public configs explained."""
import copy
from pathlib import Path

import pytest

from pipeline.core.dotted import set_dotted
from pipeline.report import fidelity

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def facts():
    return fidelity.load_facts()


def test_committed_ledger_is_current_and_fully_explained():
    # stale ledger or an undocumented difference: rerun `python -m pipeline.report.fidelity`
    assert fidelity.main(["--params", str(ROOT / "params.yaml"), "--out", str(ROOT / "reports/fidelity.md"),
                          "--check"]) == 0


def test_a_changed_setting_is_caught(params, facts):
    changed = set_dotted(params, "experiments.t2m_hornet.set", {**params["experiments"]["t2m_hornet"]["set"],
                                                                "train.lr": 5.0e-3})
    assert fidelity.undocumented(changed, facts) == ["t2m_hornet.lr: ours 0.005 != theirs 0.001"]


def test_a_documented_difference_passes_with_its_reason(params, facts):
    changed = set_dotted(params, "quantizers.lfq.commitment_loss_weight", 0.0)
    assert fidelity.undocumented(changed, facts) == ["t2m_lfq.q.commitment_loss_weight: ours 0.0 != theirs 0.25"]
    documented = copy.deepcopy(facts)
    documented["deviations"] = facts["deviations"] + [{"runs": ["t2m_l*"], "key": "q.commitment_loss_weight",
                                                       "reason": "a test"}]
    assert fidelity.undocumented(changed, documented) == []
    row = next(r for r in fidelity.ledger_rows(changed, documented, "t2m_lfq") if r.key == "q.commitment_loss_weight")
    assert (row.status, row.reason) == ("documented", "a test")


def test_public_facts_read_as_the_paper_ran_them(facts):
    # a file without `epoch` trains the parser's 200 epochs; 4-GPU runs multiply the batch
    assert fidelity.theirs_for(facts, "t2m_convmixer")["epochs"] == 200
    assert fidelity.theirs_for(facts, "kth_svq")["batch_size"] == 16
    wbm = fidelity.theirs_for(facts, "wbm_svq_frozen")
    assert (wbm["quantizer_position"], wbm["q.freeze_codebook"], wbm["epochs"]) == ("post", False, 200)
    assert fidelity.theirs_for(facts, "t2m_rvq_stoch")["quantizer"] == "residual_vq_stochastic"
    assert fidelity.theirs_for(facts, "t2m_svq_raw") is None


def test_every_catalogue_run_is_in_the_facts_table(params, facts):
    assert set(params["experiments"]) == set(facts["runs"])


def test_another_library_version_is_refused(params, facts, monkeypatch, tmp_path, capsys):
    """The comparators' rows hold for vector-quantize-pytorch 1.12.5 only (later versions compute
    them differently): another installed version is an undocumented difference, and no ledger."""
    assert fidelity.undocumented(params, facts, installed="1.12.5") == []
    assert fidelity.undocumented(params, facts, installed="1.32.0") == [
        "vector-quantize-pytorch: installed 1.32.0 != pinned 1.12.5"]
    assert "* **vector-quantize-pytorch**: DIFFERS: 1.32.0 is installed" in fidelity.render(params, facts, "1.32.0")
    assert "* **vector-quantize-pytorch**: 1.12.5 is installed" in fidelity.render(params, facts, "1.12.5")
    monkeypatch.setattr(fidelity, "installed_library", lambda: "1.32.0")
    out = tmp_path / "fidelity.md"
    assert fidelity.main(["--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 2
    assert not out.exists()
    assert "vector-quantize-pytorch 1.32.0 is installed; the ledger documents 1.12.5" in capsys.readouterr().err


def test_semantic_facts_read_from_the_public_code(facts):
    t2m, wbm, kitti = (fidelity.semantics_theirs(facts, n) for n in ("t2m_svq", "wbm_svq", "kitti_simvp"))
    assert (t2m["seed"], t2m["split_scaling"], t2m["rmse"], t2m["val_batch_size"]) == (42, "own", "global", 16)
    assert (wbm["split_scaling"], wbm["rmse"]) == ("own_both", "per_variable_mean")
    assert (kitti["val_batch_size"], kitti["split_scaling"], "rmse" in kitti) == (4, "train", False)
    # the public SimVP method trains with MSE whatever a config says; 4-GPU runs normalise over 4 per GPU
    assert fidelity.semantics_theirs(facts, "t2m_simvp_mae")["loss"] == "mse"
    human = fidelity.semantics_theirs(facts, "human_svq")
    assert (human["batchnorm_batch"], human["val_batch_size"]) == (4, 16)


def test_a_changed_semantic_setting_is_caught(params, facts):
    # 4 processes: the SVQ runs normalise over 4 per process as the public ones (no deviation needed), the
    # 1-GPU baseline over 2 instead of its 8
    changed = set_dotted(params, "datasets.kitti.train.devices", 4)
    assert fidelity.undocumented(changed, facts) == ["kitti_simvp.batchnorm_batch: ours 2 != theirs 8"]
    row = next(r for r in fidelity.ledger_rows(changed, facts, "kitti_svq") if r.key == "batchnorm_batch")
    assert (row.ours, row.status) == (4, "same")
    # split_scaling is documented for weather runs only
    changed = set_dotted(params, "datasets.taxibj.train.split_scaling", "own")
    assert fidelity.undocumented(changed, facts) == [f"{n}.split_scaling: ours 'own' != theirs 'train'"
                                                     for n in ("taxibj_simvp", "taxibj_svq_frozen", "taxibj_svq")]
    changed = set_dotted(params, "datasets.t2m.train.split_scaling", "own")
    assert not [u for u in fidelity.undocumented(changed, facts) if u.startswith("t2m_svq.")]
