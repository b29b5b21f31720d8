"""Every stage script reports the project's own errors as one line, exit code 2, no traceback."""
import runpy
import subprocess
import sys

import pytest
import yaml

from pipeline.core.dotted import set_dotted
from pipeline.core.errors import EXIT_CODE
from tests.conftest import ROOT


def _write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_stage_error_is_one_line_without_traceback(params, tmp_path):
    path = _write(tmp_path, set_dotted(params, "train.weight_decay", -1))
    out = subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "t2m_svq", "--params", str(path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == EXIT_CODE
    assert out.stderr.splitlines() == ["train: error: train.weight_decay: expected a value >= 0.0, got -1"]


@pytest.mark.parametrize("stage, args, key, value, message", [
    ("train", ["t2m_svq"], "train.min_lr", -1, "train: error: train.min_lr: expected a value >= 0"),
    ("train", ["../escape"], None, None, "train: error: experiments.../escape: invalid name"),
    ("train", ["nope"], None, None, "train: error: experiments.nope: no such experiment"),
    ("download", ["a/b"], None, None, "download: error: datasets.a/b: invalid name"),
    ("download", ["nope"], None, None, "download: error: datasets.nope: no such dataset"),
    ("preprocess", ["t2m"], "datasets.t2m.data.T_in", 0, "preprocess: error: "),
    ("reference", ["x;true"], None, None, "reference x;true: error: dataset: invalid name"),
    ("report", [], "experiments.t2m_svq.tables", "abc", "report: error: experiments.t2m_svq.tables"),
])
def test_every_stage_reports_one_line(params, tmp_path, monkeypatch, capsys, stage, args, key, value, message):
    p = set_dotted(params, key, value) if key else params
    path = _write(tmp_path, p)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [f"{stage}.py", *args, "--params", str(path)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(ROOT / "stages" / f"{stage}.py"), run_name="__main__")
    assert exit_.value.code == EXIT_CODE
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("module, args, message", [
    ("registry", ["--table", "99"], "registry: error: --table 99: no experiment in params.yaml lists table 99"),
    ("config.overrides", ["nope"], "overrides: error: experiments.nope: no such experiment"),
    ("report.fidelity", ["--check", "--params", "missing.yaml"],
     "fidelity: error: missing.yaml: parameters file not found"),
])
def test_every_command_reports_one_line(monkeypatch, capsys, module, args, message):
    """The commands besides the stages answer bad input the same way (forecast: tests/test_forecast.py)."""
    import importlib

    monkeypatch.chdir(ROOT)
    rc = importlib.import_module(f"pipeline.{module}").main(args)
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_CODE and err.startswith(message) and "\n" not in err, err


def test_a_long_message_is_cut_on_its_one_line(capsys):
    from pipeline.core.errors import MESSAGE_LIMIT, ConfigError, exit_status

    def main():
        raise ConfigError("k: expected a name, got " + "y" * 10**5 + "\n(second line)")
    assert exit_status("cmd", main) == EXIT_CODE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < MESSAGE_LIMIT + 100
    assert err.startswith("cmd: error: k: expected a name, got yyy") and err.endswith(" characters)\n")
