"""params.yaml ``report:``: unknown keys refused by name, folders kept inside the repository, and
checked before the report stage or dvc.yaml's generation does anything."""
import pytest

from pipeline.core.errors import ConfigError
from pipeline.report.build import build_report
from pipeline.report.folders import report_dirs, report_settings
from pipeline.repro.experiments import render

FOLDER = "expected a folder inside the repository, relative to its root (e.g. reports/figures)"


def test_defaults_and_the_projects_values(params):
    assert report_dirs({}) == report_dirs({"report": None}) == report_dirs(params)
    assert [p.as_posix() for p in report_dirs(params)] == ["reports/tables", "reports/figures"]


def test_a_typo_is_refused_naming_it(params, tmp_path):
    bad = params | {"report": {"tables_dir": "reports/tables", "figure_dir": "reports/figures"}}
    message = "report.figure_dir: unknown key; expected one of ['figures_dir', 'tables_dir']"
    with pytest.raises(ConfigError) as err:
        report_settings(bad)
    assert str(err.value) == message
    with pytest.raises(ConfigError, match=r"^report\.figure_dir: unknown key"):
        render(bad)  # dvc.yaml is never written with it
    with pytest.raises(ConfigError, match=r"^report\.figure_dir: unknown key"):
        build_report(bad, runs_dir=tmp_path / "runs", readme=tmp_path / "r" / "README.md")
    assert not (tmp_path / "r").exists()  # refused before any work


@pytest.mark.parametrize("folder", ["/home/me/figures", "../figures", "reports/../../x", "", ".", ".git/x",
                                    ".dvc", "C:\\\\x"])
def test_a_folder_outside_the_repository_is_refused(params, folder):
    with pytest.raises(ConfigError) as err:
        report_settings(params | {"report": {"figures_dir": folder}})
    assert str(err.value) == f"report.figures_dir: {FOLDER}, got {folder!r}"


def test_a_link_out_of_the_repository_or_a_file_is_refused(tmp_path):
    repo, outside = tmp_path / "repo", tmp_path / "home"
    (repo / "reports").mkdir(parents=True)
    outside.mkdir()
    (repo / "reports" / "figures").symlink_to(outside)
    with pytest.raises(ConfigError) as err:
        report_dirs({}, repo)
    assert str(err.value) == f"report.figures_dir: 'reports/figures' resolves outside the repository {repo}"
    (repo / "notes").write_text("")
    with pytest.raises(ConfigError, match=r"^report\.tables_dir: 'notes' is a file; expected a folder$"):
        report_dirs({"report": {"tables_dir": "notes"}}, repo)
    assert report_dirs({"report": {"figures_dir": "my/figs"}}, repo)[1].as_posix() == "my/figs"
