"""Overrides apply where they can and say where they cannot.

A run's value of a key comes from the last layer that sets it (the order: ``pipeline.core.layers``).
Datasets and experiments specialise a default on purpose (``-S svq.codebook_size=6000`` leaves
``t2m_svq_n10`` at its own 10), and a profile pins values for its whole catalogue (the sample
profile's 1024-code WB-M runs). So a change to params.yaml reaches some runs and not others, and
the ``params`` stage says which before any training (``plan``, compared with the committed
params.yaml, ``git show HEAD:params.yaml``):

* a changed key some run takes: those runs' values change (their run_params files, so DVC re-runs
  exactly them); the runs that keep another value are listed with the key that gives it;
* a changed key that no run takes (every run that reads it keeps another value), or one that a
  stage named on the command line keeps (``dvc exp run -S train.epochs=3 train_t2m_svq`` under the
  sample profile): refused, naming the winning key, before any work.

    python -m pipeline.config.overrides t2m_svq     # which layer gives each key of an experiment
"""
from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.load import load_params
from pipeline.config.run_config import resolve_run
from pipeline.core.dotted import MISSING, lookup
from pipeline.core.errors import ConfigError, exit_status
from pipeline.core.layers import run_layers
from pipeline.core.yamlfile import parse_yaml
from pipeline.models.quantizers import settings_key


def layers(params: dict[str, Any], name: str, profile: str | None = None) -> dict[str, list[tuple[str, Any]]]:
    """Resolved key -> ``[(params.yaml key, value), ...]`` of every layer that sets it, in
    resolution order (the last one wins; the order: ``pipeline.core.layers``)."""
    cfg = resolve_run(params, name, profile)  # validates, and says which quantizer block applies
    sections = ["model", "train"] + ([settings_key(cfg.model.quantizer)] if cfg.model.quantizer != "none" else [])
    out: dict[str, list[tuple[str, Any]]] = {}
    for section in sections:
        found: dict[str, list[tuple[str, Any]]] = {}
        for layer in run_layers(params, section, dataset=cfg.dataset, profile=cfg.profile, experiment=name):
            for key, value in layer.values.items():
                found.setdefault(f"{section}.{key}", []).append((layer.origin(key), value))
        out |= dict(sorted(found.items()))
    return out


def layer_keys(params: dict[str, Any]) -> dict[str, set[str]]:
    """Per experiment, the params.yaml keys of every layer it reads under any profile, shadowed ones
    too (``pipeline.repro.run_params.train_keys``)."""
    out: dict[str, set[str]] = {}
    for name in params["experiments"]:
        keys: set[str] = set()
        for profile in params["profiles"]:
            for found in layers(params, name, profile).values():
                if not found[-1][0].startswith("profiles."):
                    continue  # no profile in the way: config's own deps (the winners) suffice
                keys |= {_param_key(origin, name, profile) for origin, _ in found}
        out[name] = keys
    return out


def _param_key(origin: str, name: str, profile: str) -> str:
    """The params.yaml key DVC can track for a layer: a ``set`` block's dotted keys are not paths."""
    for block in (f"experiments.{name}", f"profiles.{profile}.experiments.{name}"):
        if origin.startswith(block + ".set."):
            return block
    return origin


NAMES_SHOWN = 8  # experiments named per line of a change's description


@dataclass(frozen=True)
class Change:
    """A params.yaml key whose value differs from the committed params.yaml, and where it lands."""

    key: str                                   # as it appears in params.yaml, e.g. svq.codebook_size
    value: Any
    before: Any                                # MISSING: not in the committed file
    reached: tuple[str, ...]                   # experiments whose run takes the new value
    kept: tuple[tuple[str, str, Any], ...]     # (experiment, the params.yaml key that wins, its value)
    already: tuple[str, ...] = ()              # experiments whose own value is the new one: nothing changes

    def describe(self) -> list[str]:
        """``svq.codebook_size = 6000 (was 10000): 11 runs take it; 6 keep their own value:`` and
        one indented line per winning key, the experiments that follow it."""
        was = "" if self.before is MISSING else f" (was {_short(self.before)})"
        head = f"{self.key} = {_short(self.value)}{was}: {_count(len(self.reached))} take{'s' * (len(self.reached) == 1)} it"
        if self.already:
            head += f" ({', '.join(self.already[:NAMES_SHOWN])}{' ...' * (len(self.already) > NAMES_SHOWN)} have it already)"
        if not self.kept:
            return [head]
        lines = [f"{head}; {_count(len(self.kept))} keep{'s' * (len(self.kept) == 1)} another value:"]
        groups: dict[tuple[str, str], list[str]] = {}
        for name, origin, value in self.kept:
            groups.setdefault((origin.replace(f".{name}.", ".<name>."), _short(value)), []).append(name)
        for (origin, value), names in groups.items():
            more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
            lines.append(f"  {', '.join(names[:NAMES_SHOWN])}{more}: {value} from {origin}")
        return lines


def plan(params: dict[str, Any], baseline: dict[str, Any] | None) -> list[Change]:
    """Every key a run reads whose value changed since ``baseline`` (the committed params.yaml; None:
    nothing to compare with), and per key the runs that take the new value and those that keep
    another one (under the active profile)."""
    if baseline is None:
        return []
    found: dict[str, tuple[Any, Any, list[str], list[tuple[str, str, Any]]]] = {}
    for name in params["experiments"]:
        for chain in layers(params, name).values():
            win_origin, win_value = chain[-1]
            for origin, value in chain:
                before = _value_at(baseline, origin)
                if before == value:
                    continue
                entry = found.setdefault(origin, (value, before, [], [], []))
                if origin == win_origin:
                    entry[2].append(name)
                elif value != win_value:
                    entry[3].append((name, win_origin, win_value))
                else:  # its own value is the new one: nothing changes for it
                    entry[4].append(name)
    return [Change(key, value, before, tuple(dict.fromkeys(reached)), tuple(dict.fromkeys(kept)),
                   tuple(dict.fromkeys(already)))
            for key, (value, before, reached, kept, already) in sorted(found.items()) if reached or kept]


def refusal(changes: list[Change], named: set[str] | None = None) -> str | None:
    """Why the changes must not run (None: they may): a change no run takes, or one that a run of
    ``named`` (experiments whose train stage the command names) keeps from the active profile or
    its own settings."""
    for change in changes:
        kept = [k for k in change.kept if k[0] in (named or ())]
        if not change.kept or (change.reached and not kept):
            continue
        name, win_origin, win_value = (kept if change.reached else change.kept)[0]
        scope = (f"train_{name} keeps {win_origin}={_short(win_value)}" if change.reached else
                 f"no run takes it: every run that reads it keeps another value, e.g. {name} "
                 f"{win_origin}={_short(win_value)}")
        # a set block's keys are dotted names, which `-S` would read as a path: edit those by hand
        how = (f"edit {win_origin} in params.yaml" if ".set." in win_origin else
               f"dvc exp run -S '{win_origin}={_cli_value(change.value)}'")
        return (f"{change.key}: changed to {_short(change.value)}, but {scope}; to change it: {how}. "
                f"Nothing ran; `git checkout HEAD -- params.yaml` restores the committed params.yaml")
    return None


def _value_at(params: dict[str, Any], origin: str) -> Any:
    """The value of a layer's key (an origin of ``layers``) in ``params``: a ``set`` block's keys are
    dotted names, not paths."""
    block, sep, dotted = origin.partition(".set.")
    if not sep:
        return lookup(params, origin)
    sets = lookup(params, f"{block}.set")
    return sets.get(dotted, MISSING) if isinstance(sets, dict) else MISSING


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _count(n: int) -> str:
    return f"{n} run{'s' * (n != 1)}"


def committed_params(path: str | Path = "params.yaml") -> dict[str, Any] | None:
    """params.yaml as of git HEAD; None outside a git checkout or when it is not committed."""
    path = Path(path).resolve()
    try:
        out = subprocess.run(["git", "show", f"HEAD:./{path.name}"], cwd=path.parent, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:  # the project's reader: a committed alias bomb is refused, not expanded
        data = parse_yaml(out.stdout, "HEAD:params.yaml")
    except ConfigError:
        return None
    return data if isinstance(data, dict) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)

    def run() -> int:
        params = load_params(args.params)
        for key, found in layers(params, args.experiment).items():
            shadowed = "".join(f"  (over {o}={v!r})" for o, v in found[:-1])
            print(f"{key} = {found[-1][1]!r}  from {found[-1][0]}{shadowed}")
        changes = plan(params, committed_params(args.params))
        for change in changes:
            if args.experiment in change.reached or any(k[0] == args.experiment for k in change.kept):
                print("\n".join(change.describe()))
        why = refusal(changes, {args.experiment})
        if why:
            raise ConfigError(why)
        return 0

    return exit_status("overrides", run)


if __name__ == "__main__":
    raise SystemExit(main())
