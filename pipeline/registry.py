"""Register the best trained model of a paper table on one dataset in the MLflow model registry.

    python -m pipeline.registry --table 1 --dataset t2m             # best test_mse of Table 1 on t2m
    python -m pipeline.registry --table 2 --dataset kth --metric test_ssim --name kth-best

Scores compare only within one dataset and metric (a cloud-cover MSE and a temperature MSE are in
different units), so ``--dataset`` is needed when the table spans several; the metric must be one
the dataset is scored with (``datasets.<ds>.metrics``). The candidates are the table's experiments
on that dataset (``tables`` in the catalogue) that have a committed record
(``runs/<exp>/result.json``). The best experiment is the one with the best mean over its seeds (a
lucky seed does not pick the configuration); of its seeds the best run is registered. Lower is
better, except for SSIM and PSNR. The version points at the run's logged model
(``runs:/<id>/<experiment>-seed<k>``), tagged with the table, dataset, metric, value, experiment and seed.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.config.load import load_params
from pipeline.config.params_file import typed
from pipeline.core.errors import ConfigError, DataError, exit_status
from pipeline.core.paths import RUNS, run_dir
from pipeline.tracking import mlflow_runs
from pipeline.training import record_files

HIGHER_IS_BETTER = ("test_ssim", "test_psnr")


def table_datasets(params: dict[str, Any], table: int) -> list[str]:
    """The datasets of ``table``'s experiments, in catalogue order."""
    names = typed(params).experiments_in(table)
    if not names:
        raise ConfigError(f"--table {table}: no experiment in params.yaml lists table {table}")
    return list(dict.fromkeys(params["experiments"][n]["dataset"] for n in names))


def best_run(params: dict[str, Any], table: int, metric: str, runs_dir: Path | str = RUNS,
             dataset: str | None = None) -> dict[str, Any]:
    """``{experiment, dataset, seed, run_id, value, mean}`` of the best run of ``table`` on
    ``dataset`` by ``metric`` (``dataset`` may be left out when the table has one)."""
    datasets = table_datasets(params, table)
    if dataset is None:
        if len(datasets) > 1:
            raise ConfigError(f"--dataset: table {table} spans {', '.join(datasets)}, whose scores do not "
                              f"compare; choose one, e.g. --dataset {datasets[0]}")
        dataset = datasets[0]
    if dataset not in datasets:
        raise ConfigError(f"--dataset {dataset}: not in table {table}; expected one of {', '.join(datasets)}")
    scored = [f"test_{m}" for m in params["datasets"][dataset]["metrics"]]
    if metric not in scored:
        raise ConfigError(f"--metric {metric}: {dataset} is scored with {', '.join(scored)}")
    sign = -1 if metric in HIGHER_IS_BETTER else 1
    names = [n for n in typed(params).experiments_in(table) if params["experiments"][n]["dataset"] == dataset]
    best = None
    for name in names:
        if not (run_dir(name, Path(runs_dir)) / record_files.RESULT).exists():
            continue
        result = record_files.read(run_dir(name, Path(runs_dir)))
        mean = (result.get("metrics") or {}).get(metric)
        runs = [r for r in result["runs"] if r["metrics"].get(metric) is not None and r.get("run_id")]
        if mean is None or not runs:
            continue
        run = min(runs, key=lambda r: sign * r["metrics"][metric])
        candidate = {"experiment": name, "dataset": dataset, "seed": run["seed"], "run_id": run["run_id"],
                     "value": run["metrics"][metric], "mean": mean}
        if best is None or sign * mean < sign * best["mean"]:
            best = candidate
    if best is None:
        raise DataError(f"table {table}, {dataset}: no record in {runs_dir}/ has {metric!r} "
                        f"(train its experiments first, e.g. dvc repro train_{names[0]})")
    return best


def register_best(params: dict[str, Any], table: int, metric: str = "test_mse", name: str | None = None,
                  runs_dir: Path | str = RUNS, dataset: str | None = None) -> tuple[dict[str, Any], Any]:
    import mlflow

    from pipeline.tracking.logged_model import model_name
    from pipeline.tracking.sync import located

    best = best_run(params, table, metric, runs_dir, dataset)
    mlflow.set_tracking_uri(mlflow_runs.tracking_uri())
    name = name or f"svq-{typed(params).profile}-table{table}-{best['dataset']}"
    best["run_id"] = located(best["run_id"])  # a run logged offline: its copy on the server
    version = mlflow.register_model(f"runs:/{best['run_id']}/{model_name(best['experiment'], best['seed'])}", name,
                                    tags={"table": str(table), "dataset": best["dataset"], "metric": metric,
                                          "value": str(best["value"]), "experiment_mean": str(best["mean"]),
                                          "experiment": best["experiment"], "seed": str(best["seed"])})
    return best, version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", type=int, required=True)
    ap.add_argument("--dataset", help="the dataset to choose within (needed when the table has several)")
    ap.add_argument("--metric", default="test_mse")
    ap.add_argument("--name", help="registered model name (default svq-<profile>-table<N>-<dataset>)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs", default=str(RUNS))
    args = ap.parse_args(argv)

    def run() -> int:
        best, version = register_best(load_params(args.params), args.table, args.metric, args.name, args.runs,
                                      args.dataset)
        print(f"registered {version.name} version {version.version}: {best['experiment']} seed {best['seed']} "
              f"({args.metric} {best['value']:.6g}; {best['mean']:.6g} over its seeds), run {best['run_id']}")
        return 0

    return exit_status("registry", run)


if __name__ == "__main__":
    raise SystemExit(main())
