"""The fidelity ledger: every catalogue run's paper-profile settings against the public config file
of that run, key by key, with every deliberate difference and its reason.

Inputs: the catalogue (params.yaml, resolved under ``profile: paper``) and the committed facts table
``pipeline/report/public_configs.yaml`` (values transcribed from the public repository's files, in
their key names, plus the parser/library defaults a file leaves implicit). Output:
``reports/fidelity.md``, generated and committed like dvc.yaml:

    python -m pipeline.report.fidelity            # rewrite reports/fidelity.md
    python -m pipeline.report.fidelity --check    # exit 1 if stale or if a difference is undocumented

The comparators' rows assume the installed vector-quantize-pytorch is the version the public code
pinned (``source.vector_quantize_pytorch``): later versions compute them differently under the same
arguments. Another installed version is refused when writing, and an undocumented difference
under ``--check``.
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.load import load_params
from pipeline.config.params_file import typed
from pipeline.config.run_config import RunConfig, resolve_run
from pipeline.core.errors import ConfigError, ProjectError, exit_status
from pipeline.core.outputs import write_or_check
from pipeline.core.paths import FIDELITY

FACTS = Path(__file__).with_name("public_configs.yaml")
MODEL_KEYS = ("translator", "hid_S", "hid_T", "N_S", "N_T", "spatio_kernel_enc", "spatio_kernel_dec",
              "mlp_ratio", "drop_path")
TRAIN_KEYS = ("lr", "batch_size", "epochs", "patience", "sched", "warmup_epochs", "warmup_lr", "min_lr",
              "final_div_factor", "weight_decay", "loss", "noise", "val_every")
# ours -> theirs (file / parser key names)
TRAIN_NAMES = {"epochs": "epoch", "warmup_epochs": "warmup_epoch", "val_every": "log_step"}
SVQ_NAMES = {"codebook_size": "codebook_size", "hidden": "middim", "init": "init_method",
             "freeze_codebook": "freeze_codebook", "nonlinear": "nonlinear", "out_relu": "out_relu"}
VQ_FAMILY = {"vq", "residual_vq", "residual_vq_stochastic", "grouped_residual_vq", "multihead_vq"}
NO_FILE = "—"
LIBRARY = "vector-quantize-pytorch"
ASK = object()   # ``installed`` argument: look the installed version up


@dataclass(frozen=True)
class Row:
    key: str
    ours: Any
    theirs: Any
    status: str          # same | documented | DIFFERS | no public value
    reason: str = ""


def load_facts(path: Path = FACTS) -> dict[str, Any]:
    facts = yaml.safe_load(path.read_text())
    for name, run in facts["runs"].items():
        f = run.get("file")
        if f is not None and f not in facts["files"]:
            raise ConfigError(f"{path}: runs.{name}.file {f!r} is not transcribed under files")
        if f is None and not run.get("note"):
            raise ConfigError(f"{path}: runs.{name}: a run without a file needs a note saying why")
    return facts


def theirs_for(facts: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The public run's settings in OUR key names (file values over parser/library defaults)."""
    run = facts["runs"][name]
    if run.get("file") is None:
        return None
    f = {**facts["files"][run["file"]]}
    f["vq_kwargs"] = dict(f.get("vq_kwargs") or {})
    for dotted, value in (run.get("changes") or {}).items():
        if dotted.startswith("vq_kwargs."):
            f["vq_kwargs"][dotted.split(".", 1)[1]] = value
        else:
            f[dotted] = value
    p = facts["parser_defaults"]
    get = lambda k: f.get(k, p.get(k))  # noqa: E731
    out: dict[str, Any] = {"translator": facts["model_types"][f["model_type"]]}
    for k in ("hid_S", "hid_T", "N_S", "N_T"):
        out[k] = f[k]
    out |= facts["model_defaults"]
    out["drop_path"] = get("drop_path")
    for k in TRAIN_KEYS:
        out[k] = get(TRAIN_NAMES.get(k, k))
    out["batch_size"] = f.get("batch_size", p["batch_size"]) * run.get("gpus", 1)
    if f["method"] == "SimVP":
        out |= {"quantizer": "none", "quantizer_position": NO_FILE}
        out["loss"] = f.get("loss", "mse")  # OpenSTL's SimVP trains with MSE
        return out
    kw = f["vq_kwargs"]
    quantizer = facts["vq_types"][f["vq_type"]]
    if quantizer == "residual_vq" and kw.get("stochastic_sample_codes"):
        quantizer = "residual_vq_stochastic"
    out["quantizer"] = quantizer
    out["quantizer_position"] = "post" if get("post_vq") else "pre"
    if quantizer == "svq":
        d = facts["svq_defaults"]
        for ours, theirs in SVQ_NAMES.items():
            out[f"q.{ours}"] = kw.get(theirs, d.get(theirs))
        out["q.freeze_projection"] = get("freeze_projection")
        out["q.hid_relu"] = kw.get("hid_relu", True)
    else:
        lib = facts["library_defaults"]
        family = lib["vq_family"] if quantizer in VQ_FAMILY else lib.get(quantizer, {})
        for k, v in {**family, **facts.get("wrapper_defaults", {}).get(quantizer, {}), **kw}.items():
            out[f"q.{k}"] = f["hid_S"] if v == "hid_S" else v
    return out


def ours_for(cfg: RunConfig) -> dict[str, Any]:
    m, t = cfg.model, cfg.train
    out: dict[str, Any] = {k: getattr(m, k) for k in MODEL_KEYS}
    out |= {k: getattr(t, k) for k in TRAIN_KEYS}
    out["loss"] = cfg.loss
    out["quantizer"] = m.quantizer
    out["quantizer_position"] = m.quantizer_position if m.quantizer != "none" else NO_FILE
    # what the quantizer is built with: params.yaml's block over the class defaults
    for k, v in cfg.quantizer.model_dump().items():
        if k == "codebook_dim" and v is None:
            v = m.hid_S  # the library's default: the latent's channels
        out[f"q.{k}"] = v
    if m.quantizer == "svq":
        out["q.hid_relu"] = True  # the hidden ReLU is always there; the public ablation can drop it
    return out


# ---------------------------------------------------------------------------------------------
# What a run computes beyond its file's model/training keys: seed, validation batch, the loss the
# method really uses, BatchNorm's batch, the validation/test scaling and the RMSE the tables read.
# Facts: public_configs.yaml `semantics` (with parser_defaults and each run's `gpus`).


def _by_prefix(table: dict[str, Any], path: str) -> Any:
    """The value of the longest prefix of ``path`` in ``table`` (``default`` when none matches)."""
    best = max((k for k in table if k != "default" and path.startswith(k)), key=len, default="default")
    return table[best]


def semantics_theirs(facts: dict[str, Any], name: str) -> dict[str, Any]:
    run = facts["runs"][name]
    f = {**facts["files"][run["file"]], **(run.get("changes") or {})}
    p, sem, gpus = facts["parser_defaults"], facts["semantics"], run.get("gpus", 1)
    out = {"seed": f.get("seed", p["seed"]),
           "val_batch_size": f.get("val_batch_size", p["val_batch_size"]) * gpus,
           # per process: the public code never converts BatchNorm to SyncBatchNorm
           "batchnorm_batch": f.get("batch_size", p["batch_size"]),
           "split_scaling": _by_prefix(sem["split_scaling"], run["file"])}
    rmse = _by_prefix(sem["rmse"], run["file"])
    if rmse is not None:
        out["rmse"] = rmse
    if f["method"] in sem["fixed_loss"]:  # the method's own criterion, whatever the file says
        out["loss"] = sem["fixed_loss"][f["method"]]
    return out


def semantics_ours(cfg: RunConfig) -> dict[str, Any]:
    t = cfg.train
    out = {"seed": list(cfg.seeds), "val_batch_size": t.val_batch_size,
           "batchnorm_batch": t.batch_size if t.sync_batchnorm else t.batch_size // t.devices,
           "split_scaling": t.split_scaling}
    if "rmse" in cfg.metrics:  # test_rmse: one RMSE over all channels (rmse_per_variable is recorded apart)
        out["rmse"] = "global"
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _deviation(facts: dict[str, Any], name: str, key: str) -> str | None:
    for d in facts.get("deviations") or []:
        if d.get("key") == key and any(fnmatch.fnmatchcase(name, pat) for pat in d["runs"]):
            return d["reason"]
    return None


def ledger_rows(params: dict[str, Any], facts: dict[str, Any], name: str) -> list[Row]:
    cfg = resolve_run(params, name, "paper")
    ours = ours_for(cfg) | semantics_ours(cfg)
    theirs = theirs_for(facts, name)
    if theirs is not None:
        theirs |= semantics_theirs(facts, name)
    rows = []
    keys = list(ours) + [k for k in (theirs or {}) if k not in ours]
    for key in keys:
        a = ours.get(key, NO_FILE)
        if theirs is None:
            rows.append(Row(key, a, NO_FILE, "no public value"))
            continue
        b = theirs.get(key, NO_FILE)
        if _same(a, b):
            rows.append(Row(key, a, b, "same"))
            continue
        reason = _deviation(facts, name, key)
        rows.append(Row(key, a, b, "documented" if reason else "DIFFERS", reason or ""))
    return rows


def installed_library() -> str | None:
    try:
        return importlib.metadata.version(LIBRARY)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_note(facts: dict[str, Any], installed: str | None) -> tuple[str, bool]:
    """(the ledger's line on the comparators' library, whether the installed version is the pinned one)."""
    pinned = str(facts["source"]["vector_quantize_pytorch"])
    if installed == pinned:
        return (f"{pinned} is installed, the version the public code pinned, and the only one the comparators "
                f"build with (later versions compute them differently: EMA code counts, shared-codebook updates, "
                f"ResidualFSQ); tests/models/test_comparators_1125.py holds their outputs, losses, indices, input "
                f"gradients and EMA buffers to values recorded from {pinned} as the public wrapper called it. "
                f"{pinned} has only the straight-through estimator (rotation_trick true is refused); LFQ's "
                f"commitment_loss_weight 0.25 is passed explicitly"), True
    return (f"DIFFERS: {installed or 'no version'} is installed, the public code pinned {pinned}, whose semantics "
            f"this ledger documents"), False


def undocumented(params: dict[str, Any], facts: dict[str, Any], installed: Any = ASK) -> list[str]:
    """``experiment.key: ours != theirs`` for every difference no deviation entry explains, and the
    library version when it is not the pinned one."""
    installed = installed_library() if installed is ASK else installed
    out = [] if library_note(facts, installed)[1] else \
        [f"{LIBRARY}: installed {installed} != pinned {facts['source']['vector_quantize_pytorch']}"]
    for name in params["experiments"]:
        if name not in facts["runs"]:
            out.append(f"{name}: not in {FACTS.name} runs (name its public file, or null with a note)")
            continue
        out += [f"{name}.{r.key}: ours {r.ours!r} != theirs {r.theirs!r}"
                for r in ledger_rows(params, facts, name) if r.status == "DIFFERS"]
    out += [f"{name}: in {FACTS.name} runs but not in the catalogue" for name in facts["runs"]
            if name not in params["experiments"]]
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "null"
    return str(v)


def render(params: dict[str, Any], facts: dict[str, Any], installed: Any = ASK) -> str:
    src = facts["source"]
    installed = installed_library() if installed is ASK else installed
    lines = ["# Fidelity ledger: the paper profile against the public configs", "",
             "Generated by `python -m pipeline.report.fidelity` from params.yaml (each experiment resolved",
             "under `profile: paper`) and `pipeline/report/public_configs.yaml` (values transcribed from",
             f"{src['repository']} @ {src['commit'][:12]}). Do not edit by hand; `make test` fails when it is stale.",
             "", "Status: `same`; `documented` (a deliberate difference, reason given); `no public value` (the",
             "public repository has no file for this run). `DIFFERS` would be an undocumented difference.", "",
             "## Deliberate differences shared by every run", ""]
    for note in facts.get("general") or []:
        lines.append(f"* **{note['what']}**: {note['reason']}")
    lines.append(f"* **{LIBRARY}**: {library_note(facts, installed)[0]}")
    lines += ["", "## Summary", "", "| experiment | tables | public config | same | documented | no public value | undocumented |",
              "|---|---|---|---|---|---|---|"]
    per_run = {}
    for name, exp in typed(params).experiments.items():
        rows = ledger_rows(params, facts, name) if name in facts["runs"] else []
        per_run[name] = rows
        count = lambda s: sum(r.status == s for r in rows)  # noqa: E731
        f = facts["runs"].get(name, {}).get("file") or NO_FILE
        lines.append(f"| [{name}](#{name}) | {', '.join(map(str, exp.tables)) or NO_FILE} | `{f}` | "
                     f"{count('same')} | {count('documented')} | {count('no public value')} | {count('DIFFERS')} |")
    for name, rows in per_run.items():
        run = facts["runs"].get(name, {})
        lines += ["", f"### {name}", "", f"Public config: `{run.get('file') or NO_FILE}`"
                  + (f" (x{run['gpus']} GPUs)" if run.get("gpus") else "")]
        if run.get("changes"):
            lines.append(f"with {', '.join(f'{k} = {_fmt(v)}' for k, v in run['changes'].items())}")
        if run.get("note"):
            lines.append(f"Note: {run['note']}.")
        lines += ["", "| key | ours | theirs | status |", "|---|---|---|---|"]
        for r in rows:
            status = f"{r.status}: {r.reason}" if r.reason else r.status
            lines.append(f"| {r.key} | {_fmt(r.ours)} | {_fmt(r.theirs)} | {status} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=str(FIDELITY))
    ap.add_argument("--check", action="store_true", help="fail if stale or if a difference is undocumented")
    args = ap.parse_args(argv)

    def run() -> int:
        params, facts = load_params(args.params), load_facts()
        installed = installed_library()
        if not args.check and not library_note(facts, installed)[1]:
            pinned = facts["source"]["vector_quantize_pytorch"]
            raise ProjectError(f"{LIBRARY} {installed} is installed; the ledger documents {pinned} (the public "
                               f"code's pin): pip install -c constraints.txt {LIBRARY}=={pinned}")
        text = render(params, facts, installed)
        bad = undocumented(params, facts, installed) if args.check else []
        for line in bad:
            print(f"undocumented difference: {line}", file=sys.stderr)
        rc = write_or_check(Path(args.out), text, check=args.check, command="python -m pipeline.report.fidelity",
                            summary=f"{len(params['experiments'])} experiments")
        return max(rc, int(bool(bad)))

    return exit_status("fidelity", run)


if __name__ == "__main__":
    raise SystemExit(main())
