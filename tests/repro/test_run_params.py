"""run_params/<experiment>.yaml: the values a train stage reads, its one params dependency. A file
changes exactly when one of those values does; the folder is swapped in whole."""
import copy

import pytest
import yaml

from pipeline.core.dotted import set_dotted
from pipeline.repro import run_params
from pipeline.repro.run_params import write_all


def _files(folder):
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.yaml"))}


def test_one_file_per_experiment_with_the_values_it_runs_with(params, tmp_path):
    written = write_all(params, tmp_path / "run_params")
    assert [p.stem for p in written] == list(params["experiments"])
    body = yaml.safe_load((tmp_path / "run_params" / "t2m_svq.yaml").read_text())
    assert body == run_params.resolved(params, "t2m_svq")
    assert body["model"]["quantizer"] == "svq" and body["dataset"] == "t2m" and "tables" not in body
    assert body["quantizer"]["codebook_size"] == params["svq"]["codebook_size"]
    assert body["train"]["epochs"] == params["profiles"]["sample"]["train"]["epochs"]  # the profile's value wins
    assert not list(tmp_path.glob(".run_params*"))  # no scratch left behind


def test_a_file_changes_exactly_when_a_value_its_run_takes_changes(params, tmp_path):
    folder = tmp_path / "run_params"
    write_all(params, folder)
    before = _files(folder)
    write_all(set_dotted(params, "svq.codebook_size", 6000), folder)
    after = _files(folder)
    moved = {n for n in before if before[n] != after[n]}
    assert "t2m_svq" in moved and "t2m_simvp" not in moved
    # its own codebook size, or one the sample profile pins: untouched, not re-run
    assert not moved & {"t2m_svq_n10", "t2m_svq_frozen_n10", "t2m_svq_n1000", "wbm_svq_frozen", "taxibj_svq"}
    write_all(set_dotted(params, "train.epochs", 3), folder)  # pinned by the sample profile everywhere
    assert _files(folder) == before
    retagged = copy.deepcopy(params)
    retagged["experiments"]["t2m_svq"]["tables"] = [1, 2]  # the report's business
    write_all(retagged, tmp_path / "tags")
    assert _files(tmp_path / "tags") == before


def test_a_dropped_experiment_drops_its_file_and_a_failed_write_keeps_the_folder(params, tmp_path, monkeypatch):
    folder = tmp_path / "run_params"
    write_all(params, folder)
    fewer = copy.deepcopy(params)
    del fewer["experiments"]["t2m_svq_frozen"]
    write_all(fewer, folder)
    assert "t2m_svq_frozen" not in _files(folder) and "t2m_svq" in _files(folder)
    kept = _files(folder)
    calls = []

    def fail_on_second(params, name, shadowed=None):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full")
        return "x: 1\n"

    monkeypatch.setattr(run_params, "render", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        write_all(params, folder)
    assert _files(folder) == kept and not list(tmp_path.glob(".run_params*"))


def test_an_experiment_name_never_leaves_the_folder(tmp_path):
    from pipeline.core.errors import ConfigError

    assert run_params.path_of("t2m_svq", tmp_path) == tmp_path / "t2m_svq.yaml"
    for bad in ("../escape", "a/b", ".."):
        with pytest.raises(ConfigError, match="invalid name"):
            run_params.path_of(bad, tmp_path)
