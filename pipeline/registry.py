"""Register the best trained model of a paper table in the MLflow model registry.

    python -m pipeline.registry --table 1                 # best test_mse among Table 1's runs
    python -m pipeline.registry --table 14 --metric test_ssim --name kth-best

The candidates are the table's experiments (``tables`` in the catalogue) that have a committed
record (``runs/<exp>/result.json``); every seed's run counts on its own. Lower is better, except
for SSIM and PSNR. The registered version points at the run's logged model (``runs:/<id>/model``).
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


def best_run(params: dict[str, Any], table: int, metric: str, runs_dir: Path | str = RUNS) -> dict[str, Any]:
    """``{experiment, seed, run_id, value}`` of the best run of ``table`` by ``metric``."""
    names = typed(params).experiments_in(table)
    if not names:
        raise ConfigError(f"--table {table}: no experiment in params.yaml lists table {table}")
    candidates = []
    for name in names:
        if not (run_dir(name, Path(runs_dir)) / record_files.RESULT).exists():
            continue
        result = record_files.read(run_dir(name, Path(runs_dir)))
        for run in result["runs"]:
            value = run["metrics"].get(metric)
            if value is not None and run.get("run_id"):
                candidates.append({"experiment": name, "seed": run["seed"], "run_id": run["run_id"], "value": value})
    if not candidates:
        raise DataError(f"table {table}: no record in {runs_dir}/ has {metric!r} "
                        f"(train its experiments first, e.g. dvc repro train_{names[0]})")
    sign = -1 if metric in HIGHER_IS_BETTER else 1
    return min(candidates, key=lambda c: sign * c["value"])


def register_best(params: dict[str, Any], table: int, metric: str = "test_mse", name: str | None = None,
                  runs_dir: Path | str = RUNS) -> tuple[dict[str, Any], Any]:
    import mlflow

    from pipeline.tracking.logged_model import ARTIFACT_PATH

    best = best_run(params, table, metric, runs_dir)
    mlflow.set_tracking_uri(mlflow_runs.tracking_uri())
    name = name or f"svq-{typed(params).profile}-table{table}"
    version = mlflow.register_model(f"runs:/{best['run_id']}/{ARTIFACT_PATH}", name,
                                    tags={"table": str(table), "metric": metric, "value": str(best["value"]),
                                          "experiment": best["experiment"], "seed": str(best["seed"])})
    return best, version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", type=int, required=True)
    ap.add_argument("--metric", default="test_mse")
    ap.add_argument("--name", help="registered model name (default svq-<profile>-table<N>)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs", default=str(RUNS))
    args = ap.parse_args(argv)

    def run() -> int:
        best, version = register_best(load_params(args.params), args.table, args.metric, args.name, args.runs)
        print(f"registered {version.name} version {version.version}: {best['experiment']} seed {best['seed']} "
              f"({args.metric} {best['value']:.6g}), run {best['run_id']}")
        return 0

    return exit_status("registry", run)


if __name__ == "__main__":
    raise SystemExit(main())
