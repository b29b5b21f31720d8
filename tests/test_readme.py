"""Every command in the README's ```bash blocks works as written: cheap ones run here, the rest
are checked against what they name (make targets, dvc.yaml stages, params.yaml keys, CLI flags)
and the test that exercises them. A new README command without a check fails this test."""
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

BIN = ROOT / ".venv" / "bin"
# Commands whose behaviour a test proves end to end (the checks below only validate their words)
EXERCISED_BY = {
    "make repro": "the lead's `make repro`; tests/repro/test_progress.py (its progress wrapper)",
    "make test": "CI runs it",
    "dvc exp run -S svq.codebook_size=6000": "tests/repro/test_experiments.py::test_codebook_change_reruns_only_default_codebook_svq_runs",
    "dvc exp show --only-changed": "tests/repro/test_experiments.py::test_codebook_change_reruns_only_default_codebook_svq_runs",
    "dvc metrics diff": "tests/repro/test_experiments.py::test_codebook_change_reruns_only_default_codebook_svq_runs",
    "dvc plots show": "tests/training/test_forecast_plots_offline.py",
    "dvc repro -s report": "tests/report/test_results.py::test_report_is_a_pure_function_of_the_records",
    "dvc exp run -S profile=paper": "tests/config/test_run_config.py (the paper profile resolves)",
    ".venv/bin/dvc repro reference_t2m": "tests/training/test_reference_forecasts.py",
    ".venv/bin/dvc repro train_era5_eu_svq": "tests/test_own_data.py",
    ".venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --workers 1": "flags checked here",
    ".venv/bin/python -m pipeline.registry --table 1 --dataset t2m": "tests/tracking/test_logged_model.py",
    "make dvc.yaml": "tests/repro/test_experiments.py::test_committed_dvc_yaml_is_up_to_date",
    "dvc exp run -S profile=paper -S train.devices=4": "tests/training/test_distributed.py",
    ".venv/bin/torchrun --standalone --nproc_per_node 4 stages/train.py kth_svq": "tests/training/test_distributed.py",
    ".venv/bin/mlflow server --backend-store-uri postgresql://mlflow:secret@db-host:5432/mlflow "
    "--artifacts-destination s3://my-bucket/svq-artifacts --host 0.0.0.0 --port 5000": "tests/tracking/test_tracking_server.py",
    "export MLFLOW_TRACKING_URI=http://tracking-host:5000": "tests/tracking/test_tracking_server.py",
    "dvc exp run -S train.tracking=offline": "tests/tracking/test_sync.py::test_offline_training_lands_on_the_server_once",
    ".venv/bin/python -m pipeline.tracking.sync --to http://tracking-host:5000":
        "tests/tracking/test_sync.py::test_offline_training_lands_on_the_server_once",
    ".venv/bin/dvc exp run --queue -S svq.codebook_size=1000": "tests/training/test_job_slots.py",
    ".venv/bin/dvc exp run --queue -S svq.codebook_size=6000": "tests/training/test_job_slots.py",
    'PATH="$PWD/.venv/bin:$PATH" SVQ_JOBS=2 dvc queue start -j 2': "tests/repro/test_queue.py",
    ".venv/bin/dvc queue status": "tests/repro/test_queue.py",
    ".venv/bin/python -m pipeline.slurm submit t2m_simvp t2m_svq --time 06:00:00":
        "tests/slurm/test_slurm_cluster.py::test_jobs_requeued_mid_training_resume_to_the_same_metrics_and_collect_leaves_dvc_clean",
    ".venv/bin/python -m pipeline.slurm submit --table 4 --partition gpu --gpus-per-node 1 --dry-run":
        "tests/slurm/test_commands.py::test_dry_run_of_a_table_prints_one_script_per_experiment",
    ".venv/bin/python -m pipeline.slurm status":
        "tests/slurm/test_slurm_cluster.py::test_jobs_requeued_mid_training_resume_to_the_same_metrics_and_collect_leaves_dvc_clean",
    ".venv/bin/python -m pipeline.slurm collect --wait 3600":
        "tests/slurm/test_slurm_cluster.py::test_jobs_requeued_mid_training_resume_to_the_same_metrics_and_collect_leaves_dvc_clean",
    ".venv/bin/dvc repro report": "tests/report/test_results.py::test_report_is_a_pure_function_of_the_records",
    ".venv/bin/dvc remote add -d s3store s3://my-bucket/svq-dvc": "tests/repro/test_s3_remote.py",
    ".venv/bin/dvc remote modify s3store endpointurl https://s3.example.org": "tests/repro/test_s3_remote.py",
    ".venv/bin/dvc remote modify --local s3store access_key_id YOUR_KEY_ID": "tests/repro/test_s3_remote.py",
    ".venv/bin/dvc remote modify --local s3store secret_access_key YOUR_SECRET_KEY": "tests/repro/test_s3_remote.py",
    ".venv/bin/dvc push": "tests/repro/test_s3_remote.py::test_the_readmes_s3_remote_round_trips_a_store",
    ".venv/bin/dvc pull": "tests/repro/test_s3_remote.py::test_the_readmes_s3_remote_round_trips_a_store",
    ".venv/bin/python -m pipeline.forecast --run t2m_svq --input data/processed/t2m.zarr "
    "--output forecasts/t2m_svq.nc": "tests/test_forecast.py",
    ".venv/bin/python -m pipeline.forecast --run na_tas_svq --input '/data/cmip/tas_Ayr_*.nc' "
    "--output forecasts/na_tas.nc --init 2060 2080": "tests/test_forecast.py",
}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines are one command
            line = " ".join(line.split("  #")[0].split(" # ")[0].split())
            if line:
                cmds += [c.strip() for c in line.split("&&")]
    return cmds


def test_every_readme_command_has_a_check():
    cmds = readme_commands()
    assert cmds, "no ```bash blocks found in README.md"
    missing = [c for c in cmds if c not in EXERCISED_BY]
    assert not missing, f"README commands without a check in tests/test_readme.py: {missing}"


def test_every_check_names_a_test_that_exists():
    """The map moves with the tests: each check's test file (and test, where named) is there."""
    for cmd, check in EXERCISED_BY.items():
        path, _, test = check.split(" ")[0].partition("::")
        if not path.startswith("tests/"):
            continue
        assert (ROOT / path).is_file(), f"{cmd}: {path} does not exist"
        assert not test or f"def {test}(" in (ROOT / path).read_text(), f"{cmd}: {check} does not exist"


def _flags(cmd: list[str]) -> list[str]:
    return [a.split("=")[0] for a in cmd if a.startswith("--") or (a.startswith("-") and len(a) == 2)]


def _read_by_code(var: str) -> bool:
    return any(var in p.read_text() for p in (ROOT / "pipeline").rglob("*.py"))


def _help(cmd: list[str]) -> str:
    out = subprocess.run([*cmd, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("cmd", readme_commands())
def test_readme_command_names_real_things(cmd):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    words = shlex.split(cmd)
    while re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefix: a variable the code reads
        var, _, value = words.pop(0).partition("=")
        if var == "PATH":  # the venv's programs first (dvc queue start's workers run `dvc` by name)
            assert value.startswith("$PWD/.venv/bin:"), cmd
            continue
        assert _read_by_code(var)
    prog = words[0].replace(".venv/bin/", "")
    if prog == "make":
        targets = words[1:]  # `make dvc.yaml` is pipeline.repro.experiments: tests/repro/test_experiments.py
        makefile = (ROOT / "Makefile").read_text()
        for t in targets:
            assert re.search(rf"^{re.escape(t)}:", makefile, flags=re.M), f"Makefile has no target {t}"
    elif prog == "dvc" and words[1:2] == ["repro"]:
        from dvc.cli import parse_args

        parse_args(words[1:])
        names = [w for w in words[2:] if not w.startswith("-")]
        assert names and all(n in stages or n.startswith("train_era5_eu") for n in names), names
    elif prog == "dvc" and words[1:3] == ["exp", "run"]:
        from dvc.cli import parse_args

        parse_args(words[1:])
        for key, _ in (w.split("=", 1) for w in words[3:] if "=" in w):
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"params.yaml has no key {key}"
                node = node[part]
    elif prog == "dvc":
        from dvc.cli import parse_args  # DVC's own parser: unknown subcommands or flags exit

        parse_args(words[1:])
    elif prog == "mlflow":
        import click
        from mlflow.cli import cli  # MLflow's click command: unknown options raise

        cli.get_command(click.Context(cli), words[1]).make_context(words[1], words[2:])
    elif prog == "export":
        assert _read_by_code(words[1].split("=")[0])
    elif prog == "torchrun":
        script, exp = words[-2:]
        assert (ROOT / script).exists() and exp in params["experiments"], cmd
    elif prog == "python" and words[1] == "-m":
        help_text = _help([str(BIN / "python"), "-m", words[2]])
        assert all(f in help_text for f in _flags(words)), (cmd, _flags(words))
    else:
        pytest.fail(f"no rule checks {cmd!r}")


def test_inline_overrides_command_runs():
    """The README's `python -m pipeline.config.overrides t2m_svq` (Configuration section)."""
    assert "python -m pipeline.config.overrides t2m_svq" in (ROOT / "README.md").read_text()
    res = subprocess.run([sys.executable, "-m", "pipeline.config.overrides", "t2m_svq"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert "train.epochs = " in res.stdout and "from profiles.sample.train.epochs" in res.stdout
