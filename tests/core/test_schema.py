from typing import Literal

import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.schema import PositiveInt, Rate, Settings, parse


class Train(Settings):
    epochs: PositiveInt
    lr: float
    sched: Literal["cosine", "none"] = "cosine"
    noise: Rate = 0.0


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0, "lr": 1}, "datasets.t2m.train.epochs: expected a value > 0, got 0"),
    ({"epochs": "3", "lr": 1}, "datasets.t2m.train.epochs: expected an integer, got '3'"),
    ({"epochs": True, "lr": 1}, "datasets.t2m.train.epochs: expected an integer, got True"),
    ({"epochs": 1, "lr": 1, "x": 2}, "datasets.t2m.train.x: unknown key; expected one of "
                                     "['epochs', 'lr', 'noise', 'sched']"),
    ({"lr": 1}, "datasets.t2m.train.epochs: missing required key"),
    ({"epochs": 1, "lr": 1, "sched": "foo"}, "datasets.t2m.train.sched: expected one of 'cosine' or 'none'"),
    ({"epochs": 1, "lr": 1, "noise": 1.5}, "datasets.t2m.train.noise: expected a value < 1"),
    ({"epochs": 1, "lr": "fast"}, "datasets.t2m.train.lr: expected a number, got 'fast'"),
])
def test_bad_values_name_the_key_the_value_and_what_was_expected(values, message):
    with pytest.raises(ConfigError) as err:
        parse(Train, values, "datasets.t2m.train")
    assert str(err.value).startswith(message)


def test_origin_names_the_key_a_layered_value_came_from():
    with pytest.raises(ConfigError, match=r"^experiments\.x\.set\.train\.lr: expected a number"):
        parse(Train, {"epochs": 1, "lr": None}, "train", origin=lambda f: f"experiments.x.set.train.{f}")


def test_defaults_fill_in_and_ints_are_accepted_as_floats():
    t = parse(Train, {"epochs": 2, "lr": 1}, "train")
    assert (t.epochs, t.lr, t.sched, t.noise) == (2, 1.0, "cosine", 0.0)
    assert isinstance(t.lr, float)
    with pytest.raises(ConfigError, match="train: expected a mapping"):
        parse(Train, [1, 2], "train")


def test_a_huge_value_is_cut_in_the_message():
    # what a 10^6-leaf value at a checked key became: a 3 MB message
    huge = ["x"] * 10**6
    with pytest.raises(ConfigError) as err:
        parse(Train, {"epochs": huge, "lr": 1}, "train")
    text = str(err.value)
    assert text.startswith("train.epochs: expected an integer, got ['x', 'x'")
    assert text.endswith(f"... ({len(repr(huge)):,} characters)") and len(text) < 300
    with pytest.raises(ConfigError) as err:
        parse(Train, huge, "train")
    assert len(str(err.value)) < 300
