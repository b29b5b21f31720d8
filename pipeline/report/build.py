"""The report stage's work: results -> MLflow records -> tables, figures, README, metrics.json.

Everything is written into a scratch folder first and moved into place only once all of it
exists, so a failure leaves the previous report untouched rather than half-replaced.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import resolve_run
from pipeline.data.prepared import DataError
from pipeline.errors import ConfigError
from pipeline import plots
from pipeline.report import figures as fig
from pipeline.report.markdown import render_readme
from pipeline.report.paper import load_paper
from pipeline.report.records import RunRecord, download_artifact, load_records, metric_history
from pipeline.report.references import beats_table, read_references
from pipeline.report.tables import build_all

log = logging.getLogger(__name__)

# <dataset>_<suffix>: the three models every dataset trains (Tables 1, 2, 14)
MAIN_VARIANTS = (("simvp", "SimVP"), ("svq_frozen", "SimVP+SVQ (frozen)"), ("svq", "SimVP+SVQ (learnable)"))
# Figure 4: codebook sizes of SVQ and grouped residual VQ (sizes are read from each run's params)
CODEBOOK_SERIES = {"SVQ": ("t2m_svq_n10", "t2m_svq_n1000", "t2m_svq_1024", "t2m_svq"),
                   "Grouped residual VQ": ("t2m_grvq_256", "t2m_grvq", "t2m_grvq_4096")}
# Figure 5: regression weights and codebook of three SVQ settings
WEIGHT_RUNS = {"learnable, MAE loss": "t2m_svq", "learnable, MSE loss": "t2m_svq_mse",
               "frozen, MAE loss": "t2m_svq_frozen"}
# Figure 1: codebooks of classic VQ and SVQ
TSNE_RUNS = {"VQ (k-means / EMA)": "t2m_vq", "SVQ (learnable)": "t2m_svq"}


def read_results(params: Mapping[str, Any], runs_dir: Path) -> dict[str, dict[str, Any]]:
    """``runs/<exp>/result.json`` of every catalogue experiment that has one, for the active profile."""
    profile = params["profile"]
    out = {}
    for name in params["experiments"]:
        path = Path(runs_dir) / name / "result.json"
        if not path.exists():
            continue
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc}); re-run its stage (train_{name})") from exc
        ids = result.get("run_ids") if isinstance(result, dict) else None
        if not isinstance(ids, list) or not ids:
            raise DataError(f"{path}: expected a non-empty 'run_ids' list; re-run its stage (train_{name})")
        if result.get("profile") != profile:
            log.warning("%s: trained under profile %r, the report is for %r: left out",
                        path, result.get("profile"), profile)
            continue
        out[name] = result
    return out


def build_report(params: Mapping[str, Any], *, runs_dir: Path | str = "runs",
                 readme: Path | str = "reports/README.md", metrics: Path | str = "reports/metrics.json",
                 tables_dir: Path | str | None = None, figures_dir: Path | str | None = None,
                 tracking_uri: str | None = None, tsne_max_codes: int = 1000) -> dict[str, list[Path]]:
    """Write every table (CSV), the figures, the README and metrics.json; return what was written."""
    report_cfg = params.get("report") or {}
    tables_dir = Path(tables_dir or report_cfg.get("tables_dir", "reports/tables"))
    figures_dir = Path(figures_dir or report_cfg.get("figures_dir", "reports/figures"))
    readme, metrics = Path(readme), Path(metrics)
    profile = params["profile"]

    results = read_results(params, Path(runs_dir))
    records = {r.experiment: r for r in load_records({e: r["run_ids"] for e, r in results.items()}, tracking_uri)}
    log.info("report (%s): %d of %d experiments have runs", profile, len(records), len(params["experiments"]))
    paper = load_paper()
    references = read_references(params, Path(runs_dir))
    tables = build_all(records, profile=profile, paper=paper, references=references,
                       experiment_datasets={e: x["dataset"] for e, x in params["experiments"].items()
                                            if isinstance(x, dict) and "dataset" in x})
    beats = beats_table(records, references)

    readme.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=readme.parent))
    try:
        staged: dict[Path, Path] = {}  # staged file -> destination
        table_links = {}
        for number, df in tables.items():
            path = staging / "tables" / f"table{number}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(path, index=False)
            staged[path] = tables_dir / path.name
            table_links[number] = _rel(tables_dir / path.name, readme.parent)

        path = staging / "tables" / "references.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        beats.to_csv(path, index=False)
        staged[path] = tables_dir / path.name
        beats_link = _rel(tables_dir / path.name, readme.parent)

        made = make_figures(params, records, tables, staging / "figures", staging / "artifacts",
                            tracking_uri=tracking_uri, tsne_max_codes=tsne_max_codes, references=references)
        figure_links = {}
        for caption, path in made.items():
            staged[path] = figures_dir / path.name
            figure_links[caption] = _rel(figures_dir / path.name, readme.parent)

        missing = [e for e in params["experiments"] if e not in records]
        text = render_readme(tables, profile=profile, figures=figure_links, missing=missing,
                             n_experiments=len(records), paper=paper, table_links=table_links,
                             beats=beats, beats_link=beats_link, notes=padding_notes(records))
        (staging / "README.md").write_text(text)
        staged[staging / "README.md"] = readme
        (staging / "metrics.json").write_text(
            json.dumps(headline_metrics(records, tables, params, references), indent=2) + "\n")
        staged[staging / "metrics.json"] = metrics

        for src, dst in staged.items():
            dst.parent.mkdir(parents=True, exist_ok=True)
            _replace(src, dst)
        keep = {dst.name for dst in staged.values() if dst.parent == figures_dir}
        for old in figures_dir.glob("*.png"):  # a figure whose runs are gone must not linger
            if old.name not in keep:
                old.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = sorted(staged.values())
    log.info("wrote %d files: %s, %s, %s, %s", len(written), tables_dir, figures_dir, readme, metrics)
    return {"tables": [p for p in written if p.parent == tables_dir],
            "figures": [p for p in written if p.parent == figures_dir],
            "files": written}


def headline_metrics(records: Mapping[str, RunRecord], tables: Mapping[int, pd.DataFrame],
                     params: Mapping[str, Any], references: Mapping[str, Mapping] | None = None) -> dict[str, Any]:
    """For ``dvc metrics show/diff``: per dataset the test MSE/MAE of the three main models and of
    the reference forecasts, and the t2m improvement of SVQ over SimVP (Table 1), ours; only what
    has been measured."""
    out: dict[str, Any] = {"profile": params["profile"], "experiments_reported": len(records)}
    for ds in params["datasets"]:
        entry = {}
        for ref, rec in ((references or {}).get(ds) or {}).items():
            vals = {m: _finite(rec["metrics"].get(f"test_{m}")) for m in ("mse", "mae")}
            vals = {k: v for k, v in vals.items() if v is not None}
            if vals:
                entry[ref] = vals
        for suffix, _ in MAIN_VARIANTS:
            rec = records.get(f"{ds}_{suffix}")
            if rec is None:
                continue
            vals = {m: _finite(rec.metrics.get(f"test_{m}")) for m in ("mse", "mae")}
            vals = {k: v for k, v in vals.items() if v is not None}
            if vals:
                entry[suffix] = vals
        if entry:
            out[ds] = entry
    t1 = tables.get(1)
    if t1 is not None:
        imp = t1[(t1["kind"] == "derived") & t1["column"].isin(["t2m_mse", "t2m_mae"])]
        vals = {c.split("_")[1]: _finite(v) for c, v in zip(imp["column"], imp["ours"])}
        vals = {k: round(v, 3) for k, v in vals.items() if v is not None}
        if vals:
            out["t2m_improvement_pct"] = vals
    return out


# --------------------------------------------------------------------------------------------
def make_figures(params: Mapping[str, Any], records: Mapping[str, RunRecord], tables: Mapping[int, pd.DataFrame],
                 out_dir: Path, scratch: Path, *, tracking_uri: str | None = None,
                 tsne_max_codes: int = 1000, references: Mapping[str, Mapping] | None = None) -> dict[str, Path]:
    """Every figure whose runs exist: caption -> PNG path (under ``out_dir``). ``references``:
    dataset -> its reference forecasts' records (lines in the t2m noise / codebook figures)."""
    made: dict[str, Path] = {}

    def add(caption: str, path: Path | None) -> None:
        if path is not None:
            made[caption] = path

    def artifact(exp: str, stem: str) -> Path | None:
        rec = records.get(exp)
        if rec is None:
            return None
        seed = rec.seeds[0] if rec.seeds and rec.seeds[0] is not None else 0
        return download_artifact(rec.run_ids[0], f"{stem}-seed{seed}.{'pt' if stem == 'best' else 'npz'}",
                                 scratch / exp, tracking_uri)

    for ds, spec in params["datasets"].items():
        title = spec.get("title", ds)
        svq, base = f"{ds}_svq", f"{ds}_simvp"
        if svq in records and base in records:
            add(f"Forecast sample, {title}: SVQ vs SimVP",
                plots.forecast_comparison_figure(_npz(artifact(svq, "forecast")), _npz(artifact(base, "forecast")),
                                               out_dir / f"forecast_{ds}.png", title=f"{title}: {svq} vs {base}",
                                               labels=("SimVP+SVQ", "SimVP")))

    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for ds, spec in params["datasets"].items():
        for suffix, label in MAIN_VARIANTS:
            rec = records.get(f"{ds}_{suffix}")
            if rec is None:
                continue
            for run_id, seed in zip(rec.run_ids, rec.seeds or [None] * len(rec.run_ids)):
                name = label if rec.n_seeds == 1 else f"{label} seed {seed}"
                loss = training_loss(params, rec)  # MSE and MAE losses never share an axis
                group = f"{spec.get('title', ds)}: {loss.upper()} loss" if loss else spec.get("title", ds)
                curves.setdefault(group, {})[name] = metric_history(run_id, "val_loss", tracking_uri)
    add("Learning curves (validation loss per epoch) of the main runs",
        fig.learning_curves_figure(curves, out_dir / "learning_curves.png"))

    leads = lead_curves(params, records, tracking_uri)
    add("Latitude-weighted RMSE per lead time (WeatherBench 2 style): SimVP vs SVQ vs persistence and "
        "climatology", fig.learning_curves_figure(leads, out_dir / "lead_rmse.png", metric="RMSE (cos-lat weighted)",
                                                  xlabel="lead (frames)", dashed=tuple(REFERENCE_LABELS.values())))

    t2m_refs = _reference_lines((references or {}).get("t2m"))
    add("MSE vs injected noise, with and without SVQ (Table 5)",
        fig.noise_figure(tables[5], out_dir / "noise.png", references=t2m_refs))

    series, reference = {}, {}
    for label, exps in CODEBOOK_SERIES.items():
        for exp in exps:
            rec = records.get(exp)
            size = _codebook_size(rec) if rec is not None else None
            mse = _finite(rec.metrics.get("test_mse")) if rec is not None else None
            if size is None or mse is None:
                continue
            series.setdefault(label, []).append((size, mse))
            ref = _paper_for(tables, exp, "test_mse")
            if ref is not None:
                reference.setdefault(label, []).append((size, ref))
    add("MSE vs codebook size: SVQ vs grouped residual VQ (Figure 4)",
        fig.codebook_size_figure(series, out_dir / "codebook_size.png", reference=reference, references=t2m_refs))

    samples = {label: _npz(artifact(exp, "svq-weights")) for label, exp in WEIGHT_RUNS.items()}
    add("Regression weights and codebook distributions with kurtosis (Figure 5)",
        fig.weight_distribution_figure(samples, out_dir / "svq_weights.png"))

    codebooks = {label: _codebook(artifact(exp, "best")) for label, exp in TSNE_RUNS.items()}
    add("Codebook t-SNE: VQ vs SVQ (Figure 1)",
        fig.codebook_tsne_figure(codebooks, out_dir / "codebook_tsne.png", max_codes=tsne_max_codes))
    return made


def training_loss(params: Mapping[str, Any], rec: RunRecord) -> str:
    """The loss a run was trained with (mse / mae): its recorded parameter, else what the
    catalogue resolves to; "" when neither says."""
    loss = rec.params.get("train.loss")
    if loss:
        return str(loss)
    try:
        return resolve_run(dict(params), rec.experiment).loss
    except (ConfigError, KeyError, TypeError):
        return ""


def _reference_lines(refs: Mapping[str, Any] | None) -> dict[str, float]:
    """label -> test MSE of one dataset's reference forecasts."""
    out = {}
    for entry in (refs or {}).values():
        v = _finite(entry["metrics"].get("test_mse"))
        if v is not None:
            out[entry.get("label", "reference")] = v
    return out


REFERENCE_LABELS = {"persistence": "Persistence", "climatology": "Climatology"}


def lead_curves(params: Mapping[str, Any], records: Mapping[str, RunRecord],
                tracking_uri: str | None = None) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Per dataset and channel of the weather runs: the main runs' and the references' RMSE per lead
    (``pipeline.scores``'s ``lead_rmse_<ch>[_<reference>]``, first seed)."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    refs = tuple(f"_{r}" for r in ("persistence", "climatology", "climatology_hour"))
    for ds, spec in params["datasets"].items():
        for suffix, label in MAIN_VARIANTS:
            rec = records.get(f"{ds}_{suffix}")
            if rec is None:
                continue
            for key in sorted(k for k in rec.metrics if k.startswith("lead_rmse_") and not k.endswith(refs)):
                panel = out.setdefault(f"{spec.get('title', ds)}: {key[len('lead_rmse_'):]}", {})
                panel[label] = metric_history(rec.run_ids[0], key, tracking_uri)
                for ref, ref_label in REFERENCE_LABELS.items():
                    if f"{key}_{ref}" in rec.metrics and ref_label not in panel:
                        panel[ref_label] = metric_history(rec.run_ids[0], f"{key}_{ref}", tracking_uri)
    return out


def padding_notes(records: Mapping[str, RunRecord]) -> list[str]:
    """One line per run whose grid the model padded (``model.pad``): its scores are on the real grid."""
    return [f"`{exp}` padded its {pad} grid for the encoder's stride; outputs were cropped back, so its "
            f"scores are on the original grid." for exp, rec in records.items()
            if (pad := rec.params.get("model.grid_padding")) not in (None, "", "none")]


def _npz(path: Path | None) -> dict[str, np.ndarray] | None:
    if path is None:
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _codebook(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise DataError(f"{path}: expected a checkpoint with a 'state_dict' mapping")
    codebook = fig.codebook_from_state_dict(state)
    if codebook is None:
        log.info("%s: no codebook tensor in the checkpoint", path)
    return codebook


def _codebook_size(rec: RunRecord) -> int | None:
    raw = rec.params.get("quantizer.codebook_size")
    try:
        return int(float(raw)) if raw is not None else None
    except ValueError:
        return None


def _paper_for(tables: Mapping[int, pd.DataFrame], experiment: str, metric: str) -> float | None:
    """The paper's value of the first measured cell of ``experiment`` for ``metric`` in any table."""
    for df in tables.values():
        hit = df[(df["experiment"] == experiment) & (df["metric"] == metric) & df["paper"].notna()]
        if not hit.empty:
            return float(hit["paper"].iloc[0])
    return None


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _replace(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)  # atomic within a filesystem
    except OSError:  # another filesystem: copy beside the destination, then rename
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


__all__ = ["MAIN_VARIANTS", "read_results", "build_report", "headline_metrics", "make_figures"]
