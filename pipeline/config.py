"""Load params.yaml, layer it, and compose one experiment's run configuration from the
components' own settings schemas.

Resolution layers (later wins): section defaults <- ``datasets.<ds>`` <- ``experiments.<name>.set``
<- ``profiles.<profile>`` <- ``profiles.<profile>.datasets.<ds>`` <- ``profiles.<profile>.experiments.<name>.set``.
Every resolved value remembers
which params.yaml key it came from, so the DVC stage of an experiment can declare exactly the keys
it reads (see ``RunConfig.deps``), and a bad value is reported under that key. What each value may
be is the component's business: :class:`~pipeline.models.settings.ModelSettings`,
:class:`~pipeline.train_settings.TrainSettings` and each quantizer's ``Settings``
(:mod:`pipeline.models.quantizers`); this module only layers, and checks the file's own structure.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from pipeline.data.sources import SOURCES
from pipeline.dotted import MISSING, has_key, lookup
from pipeline.errors import ConfigError
from pipeline.metrics import METRIC_NAMES
from pipeline.models.quantizers import parse_settings as parse_quantizer_settings
from pipeline.models.quantizers import settings_key as quantizer_key
from pipeline.models.settings import ModelSettings
from pipeline.paths import check_name
from pipeline.schema import PositiveInt, Settings, expected, expecting, parse, registered
from pipeline.train_settings import TrainSettings
from pipeline.yamlfile import read_yaml

Section = dict[str, Any]


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise expected("distinct values")
    return values


Seeds = Annotated[list[int], Field(min_length=1), AfterValidator(_distinct),
                  expecting("a non-empty list of distinct integers")]


class DataSection(Settings):
    source: Literal["sample", "remote"]
    root: str
    dask_scheduler: str | None = None


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
    experiments: dict[str, Any]
    report: Section | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything one experiment reads, resolved; ``deps`` are the params.yaml keys behind it."""

    name: str
    dataset: str
    profile: str
    seeds: tuple[int, ...]
    tables: tuple[int, ...]
    dataset_title: str
    metrics: tuple[str, ...]
    model: ModelSettings
    quantizer: Settings          # the Settings of the model's quantizer (pipeline/models/quantizers)
    train: TrainSettings
    deps: tuple[str, ...] = field(compare=False)
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (key, params.yaml key)

    @property
    def loss(self) -> str:
        return self.train.loss_for(self.model.quantizer)

    def key_of(self, key: str) -> str:
        """The params.yaml key that set ``key`` (e.g. ``train.batch_size``), for error messages."""
        return _origin_key(dict(self.origins).get(key, key), key, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "profile": self.profile, "seeds": self.seeds,
                "tables": self.tables, "dataset_title": self.dataset_title, "metrics": self.metrics,
                "model": self.model.model_dump(), "quantizer": self.quantizer.model_dump(),
                "train": self.train.model_dump() | {"loss": self.loss}}  # record what ran, not "auto"

    def flat_params(self) -> dict[str, Any]:
        """Dotted key -> value, for experiment trackers."""
        out: dict[str, Any] = {}
        _flatten(self.to_dict(), "", out)
        return out


# --------------------------------------------------------------------------------------------
def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml and validate all of it, every experiment included, before any work."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found")
    params = read_yaml(path)
    validate_params(params, where=str(path))
    return params


def validate_params(params: dict[str, Any], where: str = "params.yaml") -> None:
    parse(ParamsFile, params, where, origin=lambda key: key)
    _check_profile(params, params["profile"])
    for name in params["datasets"]:
        check_name(f"datasets.{name}", name)
    for name in params["experiments"]:
        # under every profile: a bad value the active profile happens to override is still refused
        for profile in params["profiles"]:
            resolve_run(params, name, profile)


def resolve_run(params: dict[str, Any], name: str, profile: str | None = None) -> RunConfig:
    """The run configuration of experiment ``name`` under ``profile`` (default: the active one)."""
    experiments = params["experiments"]
    check_name(f"experiments.{name}", name)
    if name not in experiments:
        raise ConfigError(f"experiments.{name}: no such experiment; known: {sorted(experiments)}")
    exp = parse(ExperimentEntry, experiments[name], f"experiments.{name}")
    if exp.dataset not in params["datasets"]:
        raise ConfigError(f"experiments.{name}.dataset: unknown dataset {exp.dataset!r}; "
                          f"expected one of {sorted(params['datasets'])}")
    ds_name, ds = exp.dataset, params["datasets"][exp.dataset]
    profile = profile or params["profile"]
    _check_profile(params, profile)
    prof = params["profiles"][profile] or {}
    prof_ds = ((prof.get("datasets") or {}).get(ds_name)) or {}
    sets = exp.set or {}
    prof_sets, prof_exp = profile_experiment_sets(prof, profile, name)

    def layered(section: str) -> dict[str, tuple[Any, str]]:
        """``section.key -> (value, params.yaml key)`` through the layers, later ones winning."""
        resolved: dict[str, tuple[Any, str]] = {}
        for node, prefix in ((params, ""), (ds, f"datasets.{ds_name}.")):
            _overlay(resolved, section, lookup(node, section), f"{prefix}{section}")
        _overlay_sets(resolved, sets, section, f"experiments.{name}")
        # then the profile's settings, its own for this dataset (a twin may need wider or longer
        # runs), and last its word on this one experiment
        for node, prefix in ((prof, f"profiles.{profile}."),
                             (prof_ds, f"profiles.{profile}.datasets.{ds_name}.")):
            _overlay(resolved, section, lookup(node, section), f"{prefix}{section}")
        _overlay_sets(resolved, prof_sets, section, prof_exp)
        return resolved

    resolved = layered("model") | layered("train")
    model = _parse_section(ModelSettings, "model", resolved, name)
    train = _parse_section(TrainSettings, "train", resolved, name)
    # the quantizer's block: svq.* for SVQ, quantizers.<name>.* for the others
    qsection = quantizer_key(model.quantizer)
    qresolved = layered(qsection) if model.quantizer != "none" else {}
    qsettings = parse_quantizer_settings(model.quantizer, _section(qresolved, qsection),
                                         _origin_of(qresolved, qsection, name))
    for origin, layer in ((f"experiments.{name}", sets), (prof_exp, prof_sets)):
        for key in layer:
            if not key.startswith(("model.", "train.", "svq.", "quantizers.")):
                raise ConfigError(f"{origin}.set.{key}: only model.*, train.*, svq.* and "
                                  f"quantizers.<name>.* can be overridden per experiment")

    seeds = exp.seeds if exp.seeds is not None else params["seeds"]
    deps = {origin for _, origin in resolved.values()} | {origin for _, origin in qresolved.values()}
    deps |= {"profile", "seeds", f"experiments.{name}", f"datasets.{ds_name}.metrics"}
    return RunConfig(
        name=name, dataset=ds_name, profile=profile, seeds=tuple(seeds), tables=tuple(exp.tables),
        dataset_title=ds.get("title", ds_name), metrics=tuple(ds["metrics"]), model=model,
        quantizer=qsettings, train=train, deps=tuple(sorted(deps)),
        origins=tuple(sorted((k, o) for k, (_, o) in (resolved | qresolved).items())),
    )


def profile_experiment_sets(prof: dict[str, Any], profile: str, name: str) -> tuple[dict[str, Any], str]:
    """``profiles.<profile>.experiments.<name>.set`` (dotted keys, as ``experiments.<name>.set``)
    and its params.yaml key."""
    origin = f"profiles.{profile}.experiments.{name}"
    entry = parse(ProfileExperiment, ((prof.get("experiments") or {}).get(name)) or {}, origin)
    return entry.set or {}, origin


def run_deps_all_profiles(params: dict[str, Any], name: str) -> list[str]:
    """Keys an experiment reads under any profile, so switching profile needs no new dvc.yaml."""
    deps: set[str] = set()
    for profile in params["profiles"]:
        deps |= set(resolve_run(params, name, profile).deps)
    return sorted(_collapse(deps))


def dataset_deps(params: dict[str, Any], ds_name: str) -> list[str]:
    """Keys the download/preprocess stages of a dataset read (under any profile)."""
    deps = {"profile", "data.source", "data.root", f"datasets.{ds_name}.source", f"datasets.{ds_name}.raw",
            f"datasets.{ds_name}.data", f"datasets.{ds_name}.sample"}
    for profile, prof in params["profiles"].items():
        if "source" in ((prof or {}).get("data") or {}):
            deps.add(f"profiles.{profile}.data.source")
        deps.add(f"profiles.{profile}.datasets.{ds_name}")
    return sorted(k for k in deps if has_key(params, k))


def dataset_settings(params: dict[str, Any], ds_name: str) -> dict[str, Any]:
    """``datasets.<ds>`` with the active profile's ``profiles.<p>.datasets.<ds>`` merged over its
    ``data`` and ``sample`` blocks (a profile may shrink a dataset, e.g. fewer years; its ``model``
    and ``train`` blocks are applied to the dataset's runs by ``resolve_run``)."""
    if ds_name not in params["datasets"]:
        raise ConfigError(f"datasets.{ds_name}: no such dataset; known: {sorted(params['datasets'])}")
    out = copy.deepcopy(params["datasets"][ds_name])
    prof = params["profiles"][params["profile"]] or {}
    overlay = ((prof.get("datasets") or {}).get(ds_name)) or {}
    for block, values in overlay.items():
        if block in ("data", "sample"):  # model and train are the runs' (resolve_run)
            out[block] = {**(out.get(block) or {}), **(values or {})}
    return out


def data_source(params: dict[str, Any], ds_name: str | None = None) -> str:
    """Where raw files come from: ``datasets.<ds>.raw`` when set (own data: always your files),
    else ``data.source`` after the active profile."""
    if ds_name is not None and params["datasets"][ds_name].get("raw"):
        return params["datasets"][ds_name]["raw"]
    prof = params["profiles"][params["profile"]] or {}
    return (prof.get("data") or {}).get("source", params["data"]["source"])


def set_dotted(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``params`` with one dotted key replaced (used by tests and the CLI)."""
    out = copy.deepcopy(params)
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


# --------------------------------------------------------------------------------------------
def _check_profile(params, profile):
    if profile not in params["profiles"]:
        raise ConfigError(f"profile: {profile!r} is not defined under profiles "
                          f"(expected one of {sorted(params['profiles'])})")


def _overlay(resolved, section, values, origin_prefix):
    """Lay ``values`` over ``section``; a key the section does not have is kept, for the schema
    to refuse under its params.yaml key."""
    if values is None or values is MISSING:
        return
    if not isinstance(values, dict):
        raise ConfigError(f"{origin_prefix}: expected a mapping, got {values!r}")
    for key, value in values.items():
        resolved[f"{section}.{key}"] = (value, f"{origin_prefix}.{key}")


def _overlay_sets(resolved, sets, section, origin):
    for key, value in sets.items():
        if key.startswith(section + "."):
            resolved[key] = (value, origin)


def _origin_key(origin: str, key: str, exp_name: str) -> str:
    """``set`` entries are recorded under their experiment (or the profile's entry for it); errors
    name the entry."""
    return f"{origin}.set.{key}" if origin.endswith(f"experiments.{exp_name}") else origin


def _origin_of(resolved, section, exp_name):
    def origin(field: str) -> str:
        top, _, rest = field.partition(".")
        key = f"{section}.{top}"
        found = _origin_key(resolved[key][1], key, exp_name) if key in resolved else key
        return f"{found}.{rest}" if rest else found
    return origin


def _parse_section(cls, section, resolved, exp_name):
    """``cls`` built from one layered section; an error names the params.yaml key the value came
    from (``datasets.t2m.train.lr``, ``experiments.x.set.train.lr``), not just ``train.lr``."""
    return parse(cls, _section(resolved, section), section, _origin_of(resolved, section, exp_name))


def _section(resolved, section):
    n = len(section) + 1
    return {k[n:]: v for k, (v, _) in resolved.items() if k.startswith(section + ".")}


def _flatten(d, prefix, out):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            _flatten(v, key + ".", out)
        else:
            out[key] = v


def _collapse(keys: set[str]) -> set[str]:
    """Drop keys already covered by a declared parent key (DVC tracks a section whole)."""
    return {k for k in keys if not any(k.startswith(p + ".") for p in keys if p != k)}

