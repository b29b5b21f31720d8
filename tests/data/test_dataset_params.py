"""A data stage validates its own dataset's part of params.yaml, and nothing else: a bad model or
train value never stops a download, a bad value of its dataset does, in one line."""
import pytest
import yaml

from pipeline.core.dotted import set_dotted
from pipeline.core.errors import ConfigError
from pipeline.data.dataset_params import check_dataset_params, data_source, dataset_settings, load_dataset_params


def test_only_the_datasets_own_part_is_validated(params, tmp_path):
    elsewhere = set_dotted(set_dotted(params, "model.translator", "no-such-block"), "datasets.kth.data", "junk")
    check_dataset_params(elsewhere, "t2m")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(elsewhere))
    assert load_dataset_params(path, "t2m")["profile"] == params["profile"]


@pytest.mark.parametrize("key, value, message", [
    ("datasets.t2m.source", "nope", "datasets.*.source"),
    ("datasets.t2m.raw", "cloud", "datasets.t2m.raw"),
    ("datasets.t2m.data.T_in", 0, "datasets.t2m.data.T_in"),
    ("data.root", 3, "data.root"),
    ("profile", "tiny", "profile: 'tiny' is not defined"),
])
def test_a_bad_value_of_the_dataset_is_one_line_naming_its_key(params, key, value, message):
    with pytest.raises(ConfigError) as err:
        check_dataset_params(set_dotted(params, key, value), "t2m")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_profile_layers_the_data_block_and_picks_the_source(params):
    p = set_dotted(params, "profiles.sample.datasets.t2m", {"data": {"T_in": 3}})
    assert dataset_settings(p, "t2m")["data"] == {**params["datasets"]["t2m"]["data"], "T_in": 3}
    assert data_source(p, "t2m") == "sample"
    assert data_source(set_dotted(p, "profile", "paper"), "t2m") == "remote"
    assert data_source(set_dotted(p, "datasets.t2m.raw", "remote"), "t2m") == "remote"
