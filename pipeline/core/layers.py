"""The order in which params.yaml's layers set a value: written here once, read by the run
configuration (``pipeline.config.run_config``), the override report and check
(``pipeline.config.overrides``) and a dataset's own settings (``pipeline.data.dataset_params``).

A run's ``model``, ``train`` and quantizer (``svq``, ``quantizers.<name>``) keys, first to last,
the last one that sets a key winning::

    <section>                                      the defaults
    datasets.<ds>.<section>                        the dataset's own (e.g. its batch size)
    experiments.<exp>.set                          the experiment (dotted keys: train.lr: ...)
    profiles.<profile>.<section>                   the profile (sample: a CPU-sized run)
    profiles.<profile>.datasets.<ds>.<section>     the profile for this dataset (a twin's scale)
    profiles.<profile>.experiments.<exp>.set       the profile's word on this one experiment

A dataset's ``data`` and ``sample`` blocks (its reader's and twin's settings) are the dataset's
own, with the profile's word for the dataset over them::

    datasets.<ds>.<section>
    profiles.<profile>.datasets.<ds>.<section>
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core.dotted import MISSING, lookup
from pipeline.core.errors import ConfigError

RUN = ("{section}", "datasets.{dataset}.{section}", "experiments.{experiment}.set",
       "profiles.{profile}.{section}", "profiles.{profile}.datasets.{dataset}.{section}",
       "profiles.{profile}.experiments.{experiment}.set")
DATASET = ("datasets.{dataset}.{section}", "profiles.{profile}.datasets.{dataset}.{section}")


@dataclass(frozen=True)
class Layer:
    """One layer's values for one section. ``block`` is the params.yaml key DVC can track for it
    (a ``set`` block: the experiment's entry, whose dotted keys are no paths)."""

    block: str
    section: str
    values: Mapping[str, Any]   # section field -> value
    dotted: bool                # an ``...experiments.<exp>.set`` block

    def origin(self, field: str) -> str:
        """The params.yaml key that sets ``field``: ``datasets.t2m.train.lr``, or
        ``experiments.x.set.train.lr`` for a set block."""
        return f"{self.block}.set.{self.section}.{field}" if self.dotted else f"{self.block}.{field}"


def run_layers(params: Mapping[str, Any], section: str, *, dataset: str, profile: str,
               experiment: str) -> list[Layer]:
    """Every layer that sets keys of ``section`` for ``experiment`` (on ``dataset``, under
    ``profile``), first to last; layers that set nothing are left out."""
    return list(_layers(params, RUN, section, dataset=dataset, profile=profile, experiment=experiment))


def dataset_layers(params: Mapping[str, Any], section: str, *, dataset: str, profile: str) -> list[Layer]:
    """The layers of a dataset's own ``data`` or ``sample`` block, first to last."""
    return list(_layers(params, DATASET, section, dataset=dataset, profile=profile, experiment=""))


def merged(layers: list[Layer]) -> dict[str, Any]:
    """Field -> the last layer's value."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer.values)
    return out


def _layers(params, order, section, **names) -> Iterator[Layer]:
    for template in order:
        key = template.format(section=section, **names)
        node = lookup(params, key)
        if node is MISSING or node is None:
            continue
        if not isinstance(node, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {node!r}")
        if template.endswith(".set"):
            block = key[: -len(".set")]
            values = {k[len(section) + 1:]: v for k, v in node.items() if k.startswith(section + ".")}
            if values:
                yield Layer(block, section, values, dotted=True)
        elif node:
            yield Layer(key, section, dict(node), dotted=False)
