"""One experiment's run configuration: params.yaml's layers (``pipeline.core.layers``) resolved
key by key and each section validated by its component's own schema:
:class:`~pipeline.models.settings.ModelSettings`, :class:`~pipeline.config.train.TrainSettings`
and each quantizer's ``Settings`` (:mod:`pipeline.models.quantizers`).

Every resolved value remembers which params.yaml key it came from, so a bad value is reported
under that key and the DVC stage of an experiment knows exactly the keys it reads
(``RunConfig.deps``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.config.params_file import ExperimentEntry, ProfileExperiment, check_profile
from pipeline.config.train import TrainSettings
from pipeline.core.errors import ConfigError
from pipeline.core.layers import run_layers
from pipeline.core.paths import check_name
from pipeline.core.schema import Settings, parse
from pipeline.models.quantizers import parse_settings as parse_quantizer_settings
from pipeline.models.quantizers import settings_key as quantizer_key
from pipeline.models.settings import ModelSettings
from pipeline.models.target import resolve as resolve_target

OVERRIDABLE = ("model.", "train.", "svq.", "quantizers.")


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
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (key, the params.yaml key that set it)

    @property
    def loss(self) -> str:
        return self.train.loss_for(self.model.quantizer)

    def key_of(self, key: str) -> str:
        """The params.yaml key that set ``key`` (e.g. ``train.batch_size``), for error messages."""
        return dict(self.origins).get(key, key)

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
    check_profile(params, profile)
    prof_sets, prof_exp = profile_experiment_sets(params, profile, name)
    for origin, layer in ((f"experiments.{name}", exp.set or {}), (prof_exp, prof_sets)):
        for key in layer:
            if not key.startswith(OVERRIDABLE):
                raise ConfigError(f"{origin}.set.{key}: only model.*, train.*, svq.* and "
                                  f"quantizers.<name>.* can be overridden per experiment")

    def layered(section: str) -> dict[str, tuple[Any, str, str]]:
        """``section.key -> (value, params.yaml key, the block DVC tracks)``, the last layer winning."""
        resolved: dict[str, tuple[Any, str, str]] = {}
        for layer in run_layers(params, section, dataset=ds_name, profile=profile, experiment=name):
            for key, value in layer.values.items():
                resolved[f"{section}.{key}"] = (value, layer.origin(key),
                                                layer.block if layer.dotted else layer.origin(key))
        return resolved

    resolved = layered("model") | layered("train")
    model = _parse_section(ModelSettings, "model", resolved)
    model = model.model_copy(update={"target": resolve_target(model.target, ds.get("source", ""))})
    train = _parse_section(TrainSettings, "train", resolved)
    # the quantizer's block: svq.* for SVQ, quantizers.<name>.* for the others
    qsection = quantizer_key(model.quantizer)
    qresolved = layered(qsection) if model.quantizer != "none" else {}
    qsettings = parse_quantizer_settings(model.quantizer, _section(qresolved, qsection),
                                         _origin_of(qresolved, qsection))

    seeds = exp.seeds if exp.seeds is not None else params["seeds"]
    deps = {dep for _, _, dep in (resolved | qresolved).values()}
    deps |= {"profile", "seeds", f"experiments.{name}", f"datasets.{ds_name}.metrics"}
    return RunConfig(
        name=name, dataset=ds_name, profile=profile, seeds=tuple(seeds), tables=tuple(exp.tables),
        dataset_title=ds.get("title", ds_name), metrics=tuple(ds["metrics"]), model=model,
        quantizer=qsettings, train=train, deps=tuple(sorted(deps)),
        origins=tuple(sorted((k, o) for k, (_, o, _) in (resolved | qresolved).items())),
    )


def profile_experiment_sets(params: dict[str, Any], profile: str, name: str) -> tuple[dict[str, Any], str]:
    """``profiles.<profile>.experiments.<name>.set`` (dotted keys, as ``experiments.<name>.set``)
    and its params.yaml key."""
    origin = f"profiles.{profile}.experiments.{name}"
    prof = params["profiles"][profile] or {}
    entry = parse(ProfileExperiment, ((prof.get("experiments") or {}).get(name)) or {}, origin)
    return entry.set or {}, origin


def run_deps_all_profiles(params: dict[str, Any], name: str) -> list[str]:
    """Keys an experiment reads under any profile, so switching profile needs no new dvc.yaml."""
    deps: set[str] = set()
    for profile in params["profiles"]:
        deps |= set(resolve_run(params, name, profile).deps)
    return sorted(collapse(deps))


def collapse(keys: set[str]) -> set[str]:
    """Drop keys already covered by a declared parent key (DVC tracks a section whole)."""
    return {k for k in keys if not any(k.startswith(p + ".") for p in keys if p != k)}


# --------------------------------------------------------------------------------------------
def _origin_of(resolved, section):
    def origin(field: str) -> str:
        top, _, rest = field.partition(".")
        key = f"{section}.{top}"
        found = resolved[key][1] if key in resolved else key
        return f"{found}.{rest}" if rest else found
    return origin


def _parse_section(cls, section, resolved):
    """``cls`` built from one layered section; an error names the params.yaml key the value came
    from (``datasets.t2m.train.lr``, ``experiments.x.set.train.lr``), not just ``train.lr``."""
    return parse(cls, _section(resolved, section), section, _origin_of(resolved, section))


def _section(resolved, section):
    n = len(section) + 1
    return {k[n:]: v for k, (v, _, _) in resolved.items() if k.startswith(section + ".")}


def _flatten(d, prefix, out):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            _flatten(v, key + ".", out)
        else:
            out[key] = v
