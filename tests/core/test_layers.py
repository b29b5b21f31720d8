"""The layer order of params.yaml, written once: a run's six layers and a dataset's two."""
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.layers import dataset_layers, merged, run_layers

PARAMS = {
    "train": {"lr": 1.0, "epochs": 10},
    "datasets": {"d": {"train": {"lr": 2.0}, "data": {"years": [1, 2], "step": 1}, "sample": None}},
    "experiments": {"x": {"dataset": "d", "set": {"train.lr": 3.0, "model.N_S": 4}}},
    "profiles": {"small": {"train": {"epochs": 2},
                           "datasets": {"d": {"train": {"lr": 4.0}, "data": {"years": [1]}}},
                           "experiments": {"x": {"set": {"train.epochs": 1}}}}},
}


def test_a_run_reads_six_layers_in_order_the_last_winning():
    layers = run_layers(PARAMS, "train", dataset="d", profile="small", experiment="x")
    assert [(layer.block, dict(layer.values)) for layer in layers] == [
        ("train", {"lr": 1.0, "epochs": 10}),
        ("datasets.d.train", {"lr": 2.0}),
        ("experiments.x", {"lr": 3.0}),
        ("profiles.small.train", {"epochs": 2}),
        ("profiles.small.datasets.d.train", {"lr": 4.0}),
        ("profiles.small.experiments.x", {"epochs": 1}),
    ]
    assert merged(layers) == {"lr": 4.0, "epochs": 1}
    # a set block's value is named by its dotted key, a plain block's by its path
    assert layers[2].origin("lr") == "experiments.x.set.train.lr"
    assert layers[1].origin("lr") == "datasets.d.train.lr"


def test_a_set_block_gives_only_its_section():
    layers = run_layers(PARAMS, "model", dataset="d", profile="small", experiment="x")
    assert [(layer.block, dict(layer.values)) for layer in layers] == [("experiments.x", {"N_S": 4})]


def test_a_dataset_block_is_the_dataset_then_the_profile_for_it():
    layers = dataset_layers(PARAMS, "data", dataset="d", profile="small")
    assert [layer.block for layer in layers] == ["datasets.d.data", "profiles.small.datasets.d.data"]
    assert merged(layers) == {"years": [1], "step": 1}
    assert dataset_layers(PARAMS, "sample", dataset="d", profile="small") == []


def test_a_layer_that_is_no_mapping_is_named():
    bad = {**PARAMS, "datasets": {"d": {"train": 5}}}
    with pytest.raises(ConfigError, match=r"^datasets\.d\.train: expected a mapping, got 5$"):
        run_layers(bad, "train", dataset="d", profile="small", experiment="x")
