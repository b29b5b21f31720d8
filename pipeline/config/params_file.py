"""The structure of params.yaml: its sections, the entries of ``datasets``, ``profiles`` and
``experiments``. What each model, train or quantizer value may be is its component's schema,
applied when a run is resolved (``pipeline.config.run_config``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from pipeline.core.errors import ConfigError
from pipeline.core.schema import PositiveInt, Settings, expected, expecting, parse, registered
from pipeline.data.dataset_params import DataSection
from pipeline.data.sources import SOURCES
from pipeline.metrics.openstl import METRIC_NAMES

Section = dict[str, Any]


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise expected("distinct values")
    return values


# numpy's and the loaders' generators take seeds in [0, 2**32): a traceback otherwise, mid-run
Seed = Annotated[int, Field(ge=0, lt=2**32)]
Seeds = Annotated[list[Seed], Field(min_length=1), AfterValidator(_distinct),
                  expecting("a non-empty list of distinct integers in [0, 2**32)")]


class DatasetEntry(Settings):
    """``datasets.<ds>``: facts and twin sizes (read by pipeline/data) and the dataset's own
    model/train/quantizer settings (layered here)."""

    source: Annotated[str, registered(SOURCES)]       # the reader in pipeline/data/sources
    raw: Literal["sample", "remote"] | None = None
    title: str | None = None
    metrics: list[Literal[METRIC_NAMES]]  # type: ignore[valid-type]
    data: Section
    sample: Section | None = None
    model: Section | None = None
    train: Section | None = None
    svq: Section | None = None
    quantizers: dict[str, Section] | None = None


class ProfileDataset(Settings):
    data: Section | None = None
    sample: Section | None = None
    model: Section | None = None     # applied to the dataset's runs
    train: Section | None = None


class ProfileExperiment(Settings):
    set: dict[str, Any] | None = None   # dotted keys, as experiments.<name>.set


class ProfileEntry(Settings):
    data: Section | None = None
    model: Section | None = None
    train: Section | None = None
    svq: Section | None = None
    quantizers: dict[str, Section] | None = None
    datasets: dict[str, ProfileDataset | None] | None = None
    # the very last word: the profile's settings for one experiment (e.g. a smaller latent for a
    # comparator the sample scale cannot afford otherwise); entries for experiments a catalogue
    # does not have are not read, so an own catalogue need not prune them
    experiments: dict[str, ProfileExperiment | None] | None = None


class ExperimentEntry(Settings):
    dataset: str
    tables: Annotated[list[PositiveInt], expecting("a list of paper table numbers, e.g. [1, 3]")] = []
    set: dict[str, Any] | None = None   # dotted key -> value
    seeds: Seeds | None = None          # where a claim needs a spread: wins over the global list


class ParamsFile(Settings):
    profile: str
    seeds: Seeds
    data: DataSection
    model: Section
    svq: Section
    quantizers: dict[str, Section] | None = None
    train: Section
    datasets: dict[str, DatasetEntry]
    profiles: dict[str, ProfileEntry | None]
    experiments: dict[str, ExperimentEntry]
    report: Section | None = None  # the report's own schema checks it (pipeline/report/folders.py)

    def experiments_on(self, ds: str) -> list[str]:
        """The experiments of the catalogue that train on dataset ``ds``, in catalogue order."""
        return [name for name, e in self.experiments.items() if e.dataset == ds]

    def tables_of(self, ds: str) -> list[int]:
        """The paper tables the experiments on ``ds`` feed, sorted."""
        return sorted({t for name in self.experiments_on(ds) for t in self.experiments[name].tables})

    def experiments_in(self, table: int) -> list[str]:
        """The experiments that feed paper table ``table``, in catalogue order."""
        return [name for name, e in self.experiments.items() if table in e.tables]


def typed(params: Mapping[str, Any]) -> ParamsFile:
    """params.yaml as its typed object. The layers (``pipeline.core.layers``), DVC's keys and the
    paths read the mapping itself, in params.yaml's own keys; everything else reads this."""
    return parse(ParamsFile, params, "params.yaml", origin=lambda key: key)


def check_profile(params: dict[str, Any], profile: str) -> None:
    if profile not in params["profiles"]:
        raise ConfigError(f"profile: {profile!r} is not defined under profiles "
                          f"(expected one of {sorted(params['profiles'])})")


