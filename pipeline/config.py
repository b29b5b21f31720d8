"""Load and validate params.yaml, and resolve one experiment into its run configuration.

Resolution layers (later wins): section defaults <- ``datasets.<ds>`` <- ``experiments.<name>.set``
<- ``profiles.<profile>``. Every resolved value remembers which params.yaml key it came from, so
the DVC stage of an experiment can declare exactly the keys it reads (see ``RunConfig.deps``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin

from pipeline.dotted import has_key
from pipeline.errors import ConfigError
from pipeline.paths import check_name
from pipeline.yamlfile import read_yaml

TOP_LEVEL = ("profile", "seeds", "data", "model", "svq", "quantizers", "train", "datasets",
             "profiles", "experiments", "report")
DATASET_KEYS = {"source", "raw", "title", "metrics", "data", "sample", "model", "train", "svq", "quantizers"}
EXPERIMENT_KEYS = {"dataset", "tables", "set", "seeds"}
METRICS = ("mse", "mae", "rmse", "ssim", "psnr", "lpips")


@dataclass(frozen=True)
class ModelConfig:
    translator: str
    hid_S: int
    hid_T: int
    N_S: int
    N_T: int
    spatio_kernel_enc: int
    spatio_kernel_dec: int
    drop_path: float
    mlp_ratio: float
    quantizer: str
    quantizer_position: str
    pad: str

    def check(self) -> None:
        from pipeline.models.quantizers import QUANTIZERS
        from pipeline.models.translators import TRANSLATORS

        if self.translator.lower() not in TRANSLATORS:
            raise ConfigError(f"model.translator: unknown translator {self.translator!r}; "
                              f"expected one of {sorted(TRANSLATORS)}")
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"model.quantizer: unknown quantizer {self.quantizer!r}; "
                              f"expected one of {sorted(QUANTIZERS)}")
        _positive("model", hid_S=self.hid_S, hid_T=self.hid_T, N_S=self.N_S, N_T=self.N_T)
        if self.N_S % 2:
            raise ConfigError(f"model.N_S: expected an even number of encoder layers "
                              f"(every second one halves the resolution), got {self.N_S}")
        for key in ("spatio_kernel_enc", "spatio_kernel_dec"):
            k = getattr(self, key)
            if k < 1 or k % 2 == 0:
                raise ConfigError(f"model.{key}: expected a positive odd kernel size, got {k}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ConfigError(f"model.drop_path: expected a value in [0, 1), got {self.drop_path}")
        if self.quantizer_position not in ("pre", "post"):
            raise ConfigError(f"model.quantizer_position: expected 'pre' or 'post', "
                              f"got {self.quantizer_position!r}")
        if self.pad not in ("reflect", "edge"):
            raise ConfigError(f"model.pad: expected reflect or edge, got {self.pad!r}")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    val_batch_size: int
    lr: float
    sched: str
    warmup_epochs: int
    warmup_lr: float
    min_lr: float
    final_div_factor: float
    weight_decay: float
    patience: int
    loss: str
    noise: float
    max_steps_per_epoch: int | None
    max_eval_batches: int | None
    num_workers: int
    device: str
    precision: str
    devices: int
    sync_batchnorm: bool
    threads: int | None = None  # torch intra-op threads; null: torch's default (OMP_NUM_THREADS)
    fps_batch: int | None = None  # batch of the inference-speed (FPS) timing; null: OpenSTL's

    def check(self) -> None:
        _positive("train", epochs=self.epochs, batch_size=self.batch_size,
                  val_batch_size=self.val_batch_size, lr=self.lr, patience=self.patience,
                  final_div_factor=self.final_div_factor)
        for key in ("weight_decay", "min_lr", "warmup_lr", "warmup_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: expected a value >= 0, got {getattr(self, key)!r}")
        if self.sched not in ("cosine", "onecycle", "none"):
            raise ConfigError(f"train.sched: expected cosine, onecycle or none, got {self.sched!r}")
        if self.loss not in ("auto", "mse", "mae"):
            raise ConfigError(f"train.loss: expected auto, mse or mae, got {self.loss!r}")
        if not 0.0 <= self.noise < 1.0:
            raise ConfigError(f"train.noise: expected a proportion in [0, 1), got {self.noise}")
        for key in ("max_steps_per_epoch", "max_eval_batches", "threads", "fps_batch"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ConfigError(f"train.{key}: expected null or a positive integer, got {v}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"train.device: expected auto, cpu or cuda[:N], got {self.device!r}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"train.precision: expected fp32, bf16 or fp16, got {self.precision!r}")
        _positive("train", devices=self.devices)
        if self.batch_size % self.devices:
            raise ConfigError(f"train.batch_size: the global batch {self.batch_size} must split evenly "
                              f"across train.devices = {self.devices} processes")

    def loss_for(self, quantizer: str) -> str:
        """The paper trains SVQ models with MAE and everything else (comparators too) with MSE."""
        if self.loss != "auto":
            return self.loss
        return "mae" if quantizer == "svq" else "mse"


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
    model: ModelConfig
    quantizer: dict[str, Any]
    train: TrainConfig
    deps: tuple[str, ...] = field(compare=False)
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (key, params.yaml key)

    @property
    def loss(self) -> str:
        return self.train.loss_for(self.model.quantizer)

    def key_of(self, key: str) -> str:
        """The params.yaml key that set ``key`` (e.g. ``train.batch_size``), for error messages."""
        origin = dict(self.origins).get(key, key)
        return f"{origin}.set.{key}" if origin == f"experiments.{self.name}" else origin

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("deps")
        d.pop("origins")
        d["train"]["loss"] = self.loss  # record what ran, not "auto"
        return d

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
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    validate_params(params)
    return params


def validate_params(params: dict[str, Any]) -> None:
    unknown = set(params) - set(TOP_LEVEL)
    if unknown:
        raise ConfigError(f"params.yaml: unknown top-level key(s) {sorted(unknown)}; "
                          f"expected {list(TOP_LEVEL)}")
    for key in ("profile", "seeds", "data", "model", "svq", "train", "datasets", "profiles",
                "experiments"):
        if key not in params:
            raise ConfigError(f"params.yaml: missing top-level key {key!r}")
    if params["profile"] not in params["profiles"]:
        raise ConfigError(f"profile: {params['profile']!r} is not defined under profiles "
                          f"(expected one of {sorted(params['profiles'])})")
    seeds = params["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"seeds: expected a non-empty list of integers, got {seeds!r}")
    if params["data"].get("source") not in ("sample", "remote"):
        raise ConfigError(f"data.source: expected 'sample' or 'remote', got {params['data'].get('source')!r}")
    for name, ds in params["datasets"].items():
        check_name(f"datasets.{name}", name)
        if not isinstance(ds, dict):
            raise ConfigError(f"datasets.{name}: expected a mapping")
        bad = set(ds) - DATASET_KEYS
        if bad:
            raise ConfigError(f"datasets.{name}: unknown key(s) {sorted(bad)}; expected {sorted(DATASET_KEYS)}")
        for key in ("source", "data", "metrics"):
            if key not in ds:
                raise ConfigError(f"datasets.{name}.{key}: missing")
        if ds.get("raw") not in (None, "sample", "remote"):
            raise ConfigError(f"datasets.{name}.raw: expected sample, remote or null, got {ds['raw']!r}")
        for m in ds["metrics"]:
            if m not in METRICS:
                raise ConfigError(f"datasets.{name}.metrics: unknown metric {m!r}; expected {list(METRICS)}")
        from pipeline.data.sources import SOURCES

        if ds["source"] not in SOURCES:
            raise ConfigError(f"datasets.{name}.source: unknown source {ds['source']!r}; "
                              f"expected one of {sorted(SOURCES)}")
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
    exp = experiments[name]
    if not isinstance(exp, dict):
        raise ConfigError(f"experiments.{name}: expected a mapping with keys {sorted(EXPERIMENT_KEYS)}")
    bad = set(exp) - EXPERIMENT_KEYS
    if bad:
        raise ConfigError(f"experiments.{name}: unknown key(s) {sorted(bad)}; expected {sorted(EXPERIMENT_KEYS)}")
    ds_name = exp.get("dataset")
    if ds_name not in params["datasets"]:
        raise ConfigError(f"experiments.{name}.dataset: unknown dataset {ds_name!r}; "
                          f"expected one of {sorted(params['datasets'])}")
    ds = params["datasets"][ds_name]
    profile = profile or params["profile"]
    if profile not in params["profiles"]:
        raise ConfigError(f"profile: {profile!r} is not defined under profiles")
    prof = params["profiles"][profile] or {}
    sets = exp.get("set") or {}
    if not isinstance(sets, dict):
        raise ConfigError(f"experiments.{name}.set: expected a mapping of dotted keys to values")

    layers = [  # (values by section, origin prefix)
        ({s: ds.get(s, {}) for s in ("model", "train", "svq")}, f"datasets.{ds_name}"),
    ]
    resolved: dict[str, tuple[Any, str]] = {}  # "section.key" -> (value, origin)
    for section in ("model", "train"):
        for key, value in (params[section] or {}).items():
            resolved[f"{section}.{key}"] = (value, f"{section}.{key}")
    for values, prefix in layers:
        for section in ("model", "train"):
            _overlay(resolved, section, values[section] or {}, f"{prefix}.{section}", name)
    _overlay_sets(resolved, sets, ("model.", "train."), f"experiments.{name}")
    for section in ("model", "train"):
        _overlay(resolved, section, prof.get(section) or {}, f"profiles.{profile}.{section}", name)
    # and last the profile's own settings for this dataset (a twin may need wider or longer runs)
    prof_ds = ((prof.get("datasets") or {}).get(ds_name)) or {}
    for section in ("model", "train"):
        _overlay(resolved, section, prof_ds.get(section) or {},
                 f"profiles.{profile}.datasets.{ds_name}.{section}", name)
    # the very last word: the profile's settings for this one experiment (e.g. a smaller latent for
    # a comparator the sample scale cannot afford otherwise)
    prof_sets, prof_exp = profile_experiment_sets(prof, profile, name)
    _overlay_sets(resolved, prof_sets, ("model.", "train."), prof_exp)

    quantizer = resolved["model.quantizer"][0]
    from pipeline.models.quantizers import QUANTIZERS

    if quantizer not in QUANTIZERS:
        raise ConfigError(f"model.quantizer: unknown quantizer {quantizer!r} (experiment {name!r}); "
                          f"expected one of {sorted(QUANTIZERS)}")
    qsection = "svq" if quantizer == "svq" else f"quantizers.{quantizer}"
    qresolved: dict[str, tuple[Any, str]] = {}
    if quantizer != "none":
        base = params["svq"] if quantizer == "svq" else (params.get("quantizers") or {}).get(quantizer)
        if base is None:
            raise ConfigError(f"quantizers.{quantizer}: no settings block for quantizer {quantizer!r}")
        for key, value in base.items():
            qresolved[f"{qsection}.{key}"] = (value, f"{qsection}.{key}")
        ds_q = ds.get("svq") if quantizer == "svq" else (ds.get("quantizers") or {}).get(quantizer)
        _overlay(qresolved, qsection, ds_q or {}, f"datasets.{ds_name}.{qsection}", name)
        _overlay_sets(qresolved, sets, (qsection + ".",), f"experiments.{name}")
        prof_q = prof.get("svq") if quantizer == "svq" else (prof.get("quantizers") or {}).get(quantizer)
        _overlay(qresolved, qsection, prof_q or {}, f"profiles.{profile}.{qsection}", name)
        _overlay_sets(qresolved, prof_sets, (qsection + ".",), prof_exp)
    known_prefixes = ("model.", "train.", "svq.", "quantizers.")
    for origin, layer in ((f"experiments.{name}", sets), (prof_exp, prof_sets)):
        for key in layer:
            if not key.startswith(known_prefixes):
                raise ConfigError(f"{origin}.set.{key}: only model.*, train.*, svq.* and "
                                  f"quantizers.<name>.* can be overridden per experiment")

    model = _checked(ModelConfig, "model", resolved, name)
    train = _checked(TrainConfig, "train", resolved, name)
    qsettings = _section(qresolved, qsection) if quantizer != "none" else {}
    _check_quantizer(quantizer, qsection, qsettings)

    tables = exp.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                               for n in tables):
        raise ConfigError(f"experiments.{name}.tables: expected a list of paper table numbers, "
                          f"e.g. [1, 3], got {tables!r}")
    tables = tuple(tables)
    # an experiment's own seeds (where a claim needs a spread) win over the global list
    seeds = exp.get("seeds", params["seeds"])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ConfigError(f"experiments.{name}.seeds: expected a non-empty list of distinct integers, got {seeds!r}")
    deps = {origin for _, origin in resolved.values()} | {origin for _, origin in qresolved.values()}
    deps |= {"profile", "seeds", f"experiments.{name}", f"datasets.{ds_name}.metrics"}
    return RunConfig(
        name=name, dataset=ds_name, profile=profile, seeds=tuple(seeds), tables=tables,
        dataset_title=ds.get("title", ds_name), metrics=tuple(ds["metrics"]), model=model,
        quantizer=qsettings, train=train, deps=tuple(sorted(deps)),
        origins=tuple(sorted((k, o) for k, (_, o) in (resolved | qresolved).items())),
    )


def profile_experiment_sets(prof: dict[str, Any], profile: str, name: str) -> tuple[dict[str, Any], str]:
    """``profiles.<profile>.experiments.<name>.set`` (dotted keys, as ``experiments.<name>.set``)
    and its params.yaml key. Entries for experiments a catalogue does not have are not read: an
    own catalogue need not prune them."""
    origin = f"profiles.{profile}.experiments.{name}"
    entry = (prof.get("experiments") or {}).get(name) or {}
    if not isinstance(entry, dict) or set(entry) - {"set"} or not isinstance(entry.get("set", {}), dict):
        raise ConfigError(f"{origin}: expected a mapping with one key, set (dotted keys to values), got {entry!r}")
    return entry.get("set") or {}, origin


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
        if block not in ("data", "sample", "model", "train"):
            raise ConfigError(f"profiles.{params['profile']}.datasets.{ds_name}.{block}: a profile may "
                              f"override only the data, sample, model and train blocks of a dataset")
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
def _overlay(resolved, section, values, origin_prefix, exp_name):
    if not isinstance(values, dict):
        raise ConfigError(f"{origin_prefix}: expected a mapping, got {values!r}")
    for key, value in values.items():
        full = f"{section}.{key}"
        if full not in resolved:
            raise ConfigError(f"{origin_prefix}.{key}: unknown key (resolving experiment "
                              f"{exp_name!r}); expected one of {sorted(k.split('.')[-1] for k in resolved)}")
        resolved[full] = (value, f"{origin_prefix}.{key}")


def _overlay_sets(resolved, sets, prefixes, origin):
    for key, value in sets.items():
        if key.startswith(prefixes):
            if key not in resolved:
                raise ConfigError(f"{origin}.set.{key}: unknown key; expected one of {sorted(resolved)}")
            resolved[key] = (value, origin)


def _checked(cls, section, resolved, exp_name):
    """Build and check one section; an error names the params.yaml key the value came from
    (``datasets.t2m.train.lr``, ``experiments.x.set.train.lr``), not just ``train.lr``."""
    try:
        obj = _build(cls, section, _section(resolved, section))
        obj.check()
        return obj
    except ConfigError as err:
        key, sep, rest = str(err).partition(":")
        origin = resolved.get(key, (None, key))[1]
        if not sep or origin == key:
            raise
        if origin == f"experiments.{exp_name}":
            origin = f"{origin}.set.{key}"
        raise ConfigError(f"{origin}{sep}{rest}") from None


def _section(resolved, section):
    n = len(section) + 1
    return {k[n:]: v for k, (v, _) in resolved.items() if k.startswith(section + ".")}


def _build(cls, section, values):
    names = {f.name for f in fields(cls)}
    missing = names - set(values)
    if missing:
        raise ConfigError(f"{section}: missing key(s) {sorted(missing)}")
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{section}: unknown key(s) {sorted(unknown)}; expected {sorted(names)}")
    out = {}
    for f in fields(cls):
        out[f.name] = _coerce(f"{section}.{f.name}", values[f.name], f.type)
    return cls(**out)


def _coerce(key, value, annotation):
    types = {"int": int, "float": float, "str": str, "bool": bool}
    optional = isinstance(annotation, str) and annotation.endswith("| None")
    base = annotation.replace("| None", "").strip() if isinstance(annotation, str) else annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: must not be null")
    target = types.get(base, None) if isinstance(base, str) else base
    if target is None or get_origin(target) is not None or get_args(target):
        return value
    if target is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if target is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if target is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if target is str and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _check_quantizer(quantizer, qsection, settings):
    if quantizer == "none":
        return
    from pipeline.models.quantizers import QUANTIZERS

    cls = QUANTIZERS[quantizer]
    unknown = set(settings) - set(cls.defaults)
    if unknown:
        raise ConfigError(f"{qsection}: unknown setting(s) {sorted(unknown)} for quantizer "
                          f"{quantizer!r}; expected {sorted(cls.defaults)}")
    for key in ("codebook_size", "hidden", "iterations", "num_quantizers"):
        if key in settings:
            v = settings[key]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{qsection}.{key}: expected a positive integer, got {v!r}")


def _positive(section, **values):
    for key, v in values.items():
        if v is None or v <= 0:
            raise ConfigError(f"{section}.{key}: expected a positive value, got {v!r}")


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
