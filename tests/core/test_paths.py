"""Names that become folders and stage commands: strict pattern, paths kept inside their folder."""
import copy

import pytest

from pipeline.config.load import validate_params
from pipeline.core.errors import ConfigError
from pipeline.core.paths import check_name, inside, raw_dir, raw_root, reference_dir, run_dir, store_path
from pipeline.repro.experiments import render


@pytest.mark.parametrize("name", ["..", ".", "a/b", "x;true", "x y", "", "$(rm)", "a\\b", "é", "--help", "-x"])
def test_bad_names_refused(name):
    with pytest.raises(ConfigError, match="invalid name"):
        check_name("experiments", name)
    assert check_name("experiments", "a-b.c_1") == "a-b.c_1" and check_name("experiments", "_x-") == "_x-"


@pytest.mark.parametrize("name", ["..", "a/b", "x;true", "--help"])
def test_catalogue_with_bad_names_refused_before_anything_runs(params, name):
    p = copy.deepcopy(params)
    p["experiments"][name] = {"dataset": "t2m", "tables": [], "set": {}}
    with pytest.raises(ConfigError, match=f"experiments.{name}: invalid name"):
        validate_params(p)
    with pytest.raises(ConfigError, match="invalid name"):
        render(p)  # dvc.yaml is never written with it
    p = copy.deepcopy(params)
    p["datasets"][name] = copy.deepcopy(p["datasets"]["t2m"])
    with pytest.raises(ConfigError, match=f"datasets.{name}: invalid name"):
        validate_params(p)


def test_paths_stay_inside(tmp_path):
    assert inside(tmp_path, "a.b-c_1") == tmp_path / "a.b-c_1"
    (tmp_path / "link").symlink_to("/")
    for parts in (("..",), ("../x",), ("link",), ("link", "etc"), ()):
        with pytest.raises(ConfigError, match="outside"):
            inside(tmp_path, *parts)
    assert run_dir("t2m_svq").as_posix() == "runs/t2m_svq"


def test_the_layout_under_data_root(tmp_path):
    params = {"data": {"root": "store"}}
    assert raw_root(params, "t2m", tmp_path) == tmp_path / "store" / "raw" / "t2m"
    assert raw_dir(params, "t2m", "remote", tmp_path) == tmp_path / "store" / "raw" / "t2m" / "remote"
    assert store_path(params, "t2m").as_posix() == "store/processed/t2m.zarr"
    assert reference_dir("kth").as_posix() == "runs/reference_kth"
    with pytest.raises(ConfigError, match="invalid name"):
        raw_dir(params, "t2m", "../x")


def test_stage_commands_are_quoted(params):
    p = copy.deepcopy(params)
    p["experiments"] = {"t2m-a.b": {"dataset": "t2m", "tables": [], "set": {}}}
    assert "cmd: sh stages/python stages/train.py t2m-a.b\n" in render(p)
    from pipeline.repro.experiments import command
    assert command("python", "stages/train.py", "x;true") == "python stages/train.py 'x;true'"


def test_dvc_yaml_generation_refuses_a_bad_name_in_one_line(params, tmp_path, capsys):
    import yaml

    from pipeline.repro.experiments import main

    p = copy.deepcopy(params)  # the fixture is shared by the session
    p["experiments"]["x;true"] = {"dataset": "t2m", "tables": [], "set": {}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    rc = main(["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "dvc.yaml")])
    assert rc == 2 and not (tmp_path / "dvc.yaml").exists()
    assert capsys.readouterr().err.startswith("experiments: error: experiments.x;true: invalid name")
