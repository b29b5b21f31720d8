"""The report stage's work: committed run records -> tables, figures, README, metrics.json.

Everything is written into a scratch folder first and moved into place only once all of it
exists, so a failure leaves the previous report untouched rather than half-replaced. The figures
folder keeps a list of the figures the report put there (FIGURE_MANIFEST): a figure whose runs are
gone is deleted only when that list names it, so a file the report did not write survives.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config.params_file import typed
from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError
from pipeline.core.outputs import atomic, clean_stale, scratch, write_text_atomic
from pipeline.core.paths import REPORT_METRICS, REPORT_README, RUNS
from pipeline.report import figures as fig
from pipeline.report.beats import beats_table, read_references
from pipeline.report.folders import report_dirs
from pipeline.report.markdown import render_readme
from pipeline.report.paper import load_paper
from pipeline.report.results import ExperimentResult, load_results
from pipeline.report.tables import build_all
from pipeline.report.verdicts import claim_verdicts, verdict_counts
from pipeline.training import forecast_plots

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
# in the figures folder: the names of the figures the last build wrote there, one a line
FIGURE_MANIFEST = ".written-by-report"


def build_report(params: Mapping[str, Any], *, runs_dir: Path | str = RUNS,
                 readme: Path | str = REPORT_README, metrics: Path | str = REPORT_METRICS,
                 tables_dir: Path | str | None = None, figures_dir: Path | str | None = None,
                 tsne_max_codes: int = 1000) -> dict[str, list[Path]]:
    """Write every table (CSV), the figures, the README and metrics.json; return what was written."""
    folders = report_dirs(params)  # params.yaml's report: checked before any work, even where overridden
    tables_dir = Path(tables_dir or folders[0])
    figures_dir = Path(figures_dir or folders[1])
    readme, metrics = Path(readme), Path(metrics)
    catalogue = typed(params)
    profile = catalogue.profile

    # an experiment's paper tables as the catalogue says now: editing the tag re-runs this stage,
    # not the training (pipeline/repro/experiments.py), so the record's copy may be older
    records = {name: replace(rec, tables=tuple(catalogue.experiments[name].tables))
               for name, rec in load_results(runs_dir, list(catalogue.experiments), profile).items()}
    log.info("report (%s): %d of %d experiments have runs", profile, len(records), len(catalogue.experiments))
    paper = load_paper()
    references = read_references(list(catalogue.datasets), profile, Path(runs_dir))
    tables = build_all(records, profile=profile, paper=paper, references=references,
                       experiment_datasets={e: x.dataset for e, x in catalogue.experiments.items()})
    beats = beats_table(records, references)
    claims = claim_verdicts(tables, records, paper, profile=profile,
                            experiment_datasets={e: x.dataset for e, x in catalogue.experiments.items()})
    log.info("claims: %s", verdict_counts(claims))

    readme.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(readme.parent / "report")  # the staging folder of a killed run
    staging = scratch(readme.parent / "report")
    staging.mkdir()
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

        path = staging / "tables" / "claims.csv"
        claims.to_csv(path, index=False)
        staged[path] = tables_dir / path.name
        claims_link = _rel(tables_dir / path.name, readme.parent)

        made = make_figures(params, records, tables, staging / "figures", tsne_max_codes=tsne_max_codes,
                            references=references)
        figure_links = {}
        for caption, path in made.items():
            staged[path] = figures_dir / path.name
            figure_links[caption] = _rel(figures_dir / path.name, readme.parent)

        missing = [e for e in catalogue.experiments if e not in records]
        text = render_readme(tables, profile=profile, figures=figure_links, missing=missing,
                             n_experiments=len(records), paper=paper, table_links=table_links,
                             beats=beats, beats_link=beats_link, notes=padding_notes(records),
                             claims=claims, claims_link=claims_link)
        (staging / "README.md").write_text(text)
        staged[staging / "README.md"] = readme
        (staging / "metrics.json").write_text(
            json.dumps(headline_metrics(records, tables, profile, references, claims), indent=2) + "\n")
        staged[staging / "metrics.json"] = metrics

        earlier = _manifest(figures_dir)
        for src, dst in staged.items():
            dst.parent.mkdir(parents=True, exist_ok=True)
            _replace(src, dst)
        keep = sorted(dst.name for dst in staged.values() if dst.parent == figures_dir)
        figures_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(figures_dir / FIGURE_MANIFEST, "".join(f"{name}\n" for name in keep))
        for name in earlier - set(keep):  # a figure whose runs are gone must not linger
            (figures_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = sorted(staged.values())
    log.info("wrote %d files: %s, %s, %s, %s", len(written), tables_dir, figures_dir, readme, metrics)
    return {"tables": [p for p in written if p.parent == tables_dir],
            "figures": [p for p in written if p.parent == figures_dir],
            "files": written}


def headline_metrics(records: Mapping[str, ExperimentResult], tables: Mapping[int, pd.DataFrame],
                     profile: str, references: Mapping[str, Mapping] | None = None,
                     claims: pd.DataFrame | None = None) -> dict[str, Any]:
    """The only DVC metrics file (``dvc metrics show/diff``, ``dvc exp show``): the claims' verdict
    counts and a few key cells per table, ours: the first two recomputed improvement rows where the
    table has them, else its best value of its first column. Per-run numbers stay in
    runs/<exp>/result.json; reference forecasts in the tables and runs/reference_<ds>/result.json."""
    out: dict[str, Any] = {"profile": profile, "experiments_reported": len(records)}
    if claims is not None and not claims.empty:
        out["claims"] = verdict_counts(claims)
    for number, df in sorted(tables.items()):
        cells = {}
        derived = df[(df["kind"] == "derived") & df["ours"].notna()]
        for _, row in derived.head(2).iterrows():
            cells[f"{_slug(row['row'])}_{row['column']}"] = round(float(row["ours"]), 6)
        if not cells:
            measured = df[(df["kind"] == "measured") & df["ours"].notna()]
            if not measured.empty:
                col = measured["column"].iloc[0]
                vals = measured[measured["column"] == col]
                pick = vals["ours"].idxmax() if vals["better"].iloc[0] == "higher" else vals["ours"].idxmin()
                cells[f"best_{col}"] = round(float(vals.loc[pick, "ours"]), 6)
        if cells:
            out[f"table{number}"] = cells
    return out


def _slug(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in str(text).lower()).split())[:40]


# --------------------------------------------------------------------------------------------
def make_figures(params: Mapping[str, Any], records: Mapping[str, ExperimentResult], tables: Mapping[int, pd.DataFrame],
                 out_dir: Path, *, tsne_max_codes: int = 1000,
                 references: Mapping[str, Mapping] | None = None) -> dict[str, Path]:
    """Every figure whose records exist: caption -> PNG path (under ``out_dir``). ``references``:
    dataset -> its reference forecasts' records (lines in the t2m noise / codebook figures)."""
    titles = {ds: d.title or ds for ds, d in typed(params).datasets.items()}
    made: dict[str, Path] = {}

    def add(caption: str, path: Path | None) -> None:
        if path is not None:
            made[caption] = path

    def data(exp: str) -> dict[str, np.ndarray]:
        rec = records.get(exp)
        return rec.figure_data() if rec is not None else {}

    for ds, title in titles.items():
        svq, base = f"{ds}_svq", f"{ds}_simvp"
        if svq in records and base in records:
            add(f"Forecast sample, {title}: SVQ vs SimVP",
                forecast_plots.forecast_comparison_figure(_forecast(data(svq)), _forecast(data(base)),
                                               out_dir / f"forecast_{ds}.png", title=f"{title}: {svq} vs {base}",
                                               labels=("SimVP+SVQ", "SimVP")))

    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    validation: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for ds, title in titles.items():
        for suffix, label in MAIN_VARIANTS:
            rec = records.get(f"{ds}_{suffix}")
            if rec is None:
                continue
            val = rec.history("val_loss")
            for seed, curve in rec.history("train_loss").items():
                name = label if rec.n_seeds == 1 else f"{label} seed {seed}"
                loss = training_loss(params, rec)  # MSE and MAE losses never share an axis
                group = f"{title}: {loss.upper()} loss" if loss else title
                curves.setdefault(group, {})[name] = curve
                validation.setdefault(group, {})[name] = val.get(seed, [])
    add("Learning curves of the main runs: training loss per epoch (lines), validation loss at the "
        "validated epochs (open markers)",
        fig.learning_curves_figure(curves, out_dir / "learning_curves.png", metric="loss", points=validation))

    leads = lead_curves(titles, records)
    add("Latitude-weighted RMSE per lead time (WeatherBench 2 style): SimVP vs SVQ vs persistence and "
        "climatology", fig.learning_curves_figure(leads, out_dir / "lead_rmse.png", metric="RMSE (cos-lat weighted)",
                                                  xlabel=lead_axis(records), dashed=tuple(REFERENCE_LABELS.values())))

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

    samples = {label: _weights(data(exp)) for label, exp in WEIGHT_RUNS.items()}
    add("Regression weights and codebook distributions with kurtosis (Figure 5)",
        fig.weight_distribution_figure(samples, out_dir / "svq_weights.png"))

    codebooks = {label: data(exp).get("codebook") for label, exp in TSNE_RUNS.items()}
    add("Codebook t-SNE: VQ vs SVQ (Figure 1)",
        fig.codebook_tsne_figure(codebooks, out_dir / "codebook_tsne.png", max_codes=tsne_max_codes))
    return made


def training_loss(params: Mapping[str, Any], rec: ExperimentResult) -> str:
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


def lead_curves(titles: Mapping[str, str],
                records: Mapping[str, ExperimentResult]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Per dataset and channel of the weather runs: the main runs' and the references' RMSE per lead
    (``pipeline.metrics.lead_scores``'s ``lead_rmse_<ch>[_<reference>]`` in the record, first seed)."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    refs = tuple(f"_{r}" for r in ("persistence", "climatology", "climatology_hour"))
    for ds, title in titles.items():
        for suffix, label in MAIN_VARIANTS:
            rec = records.get(f"{ds}_{suffix}")
            if rec is None:
                continue
            leads = rec.leads
            hours = leads.get("lead_hours")  # absent from older records: the lead index then
            for key in sorted(k for k in leads if k.startswith("lead_rmse_") and not k.endswith(refs)):
                panel = out.setdefault(f"{title}: {key[len('lead_rmse_'):]}", {})
                panel[label] = _series(leads[key], hours)
                for ref, ref_label in REFERENCE_LABELS.items():
                    if f"{key}_{ref}" in leads and ref_label not in panel:
                        panel[ref_label] = _series(leads[f"{key}_{ref}"], hours)
    return out


def lead_axis(records: Mapping[str, ExperimentResult]) -> str:
    """The per-lead figure's x label: hours after the last input when every weather record says
    them, else the lead index."""
    weather = [rec for rec in records.values() if any(k.startswith("lead_rmse_") for k in rec.leads)]
    if weather and all(rec.leads.get("lead_hours") for rec in weather):
        return "lead time (hours after the last input)"
    return "lead (frames)"


def padding_notes(records: Mapping[str, ExperimentResult]) -> list[str]:
    """One line per run whose grid the model padded (``model.pad``): its scores are on the real grid."""
    return [f"`{exp}` padded its {pad} grid for the encoder's stride; outputs were cropped back, so its "
            f"scores are on the original grid." for exp, rec in records.items()
            if (pad := rec.params.get("model.grid_padding")) not in (None, "", "none")]


def _series(values, hours=None) -> list[tuple[float, float]]:
    """(lead, value) from a per-lead list (lead 1 first; ``hours``: the leads in hours, where
    known); missing values left out."""
    xs = hours if hours and len(hours) == len(values) else range(1, len(values) + 1)
    return [(x, float(v)) for x, v in zip(xs, values) if v is not None]


def _forecast(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    keys = ("inputs", "truth", "prediction")
    if not all(f"forecast_{k}" in data for k in keys):
        return None
    out = {k: data[f"forecast_{k}"].astype(np.float32) for k in keys}
    return out | {k: data[f"forecast_{k}"] for k in ("channels", "units", "lat") if f"forecast_{k}" in data}


def _weights(data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    if "svq_weights" not in data or "codebook" not in data:
        return None
    return {"weights": data["svq_weights"], "codebook": data["codebook"]}


def _codebook_size(rec: ExperimentResult) -> int | None:
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


def _manifest(figures_dir: Path) -> set[str]:
    """The figures an earlier build wrote into ``figures_dir`` (none where it left no list): plain
    file names only, so an edited list cannot point the deletion anywhere else."""
    try:
        lines = (figures_dir / FIGURE_MANIFEST).read_text().splitlines()
    except OSError:
        return set()
    return {n for n in lines if n.endswith(".png") and n == Path(n).name and not n.startswith(".")}


def _replace(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)  # atomic within a filesystem
    except OSError:  # another filesystem: copy beside the destination, then rename
        with atomic(dst) as tmp:
            shutil.copyfile(src, tmp)


__all__ = ["MAIN_VARIANTS", "build_report", "headline_metrics", "make_figures"]
