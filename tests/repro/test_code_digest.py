"""Code digests: the `code` stage writes one md5 list per stage kind, and real DVC re-runs a
stage exactly when a file its script may load changes."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from pipeline.repro.code_digest import KINDS, digest_path, digest_text, write_digests
from pipeline.repro.experiments import build_stages

TRAIN_ONLY = "pipeline/training/fit.py"  # in the train closure, not the report's
REPORT_ONLY = "pipeline/report/build.py"  # in the report closure, not the train's


def _copy_code(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("pipeline", "stages"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    return dest


def test_digest_lists_the_closure_with_each_files_md5():
    lines = digest_text("train", ROOT).splitlines()
    files = [line.split("  ", 1)[1] for line in lines]
    assert files == sorted(files) and len(files) == len(set(files))
    for f in ("stages/train.py", "stages/python", TRAIN_ONLY, "pipeline/tracking/mlflow_runs.py",
              "pipeline/models/translators/transformers.py", "pipeline/models/quantizers/lucidrains.py"):
        assert f in files, f
    assert REPORT_ONLY not in files and "pipeline/forecast.py" not in files
    md5, path = lines[0].split("  ", 1)
    assert md5 == hashlib.md5((ROOT / path).read_bytes()).hexdigest()
    assert REPORT_ONLY in digest_text("report", ROOT) and TRAIN_ONLY not in digest_text("report", ROOT)
    assert "pipeline/training/reference_forecasts.py" in digest_text("reference", ROOT)


def test_an_edit_changes_the_digest_of_the_kinds_that_load_the_file(tmp_path):
    root = _copy_code(tmp_path)
    written = write_digests(root)
    assert [p.relative_to(root) for p in written] == [digest_path(k) for k in KINDS]
    before = {k: digest_path(k, root / "code_digests").read_text() for k in KINDS}
    assert write_digests(root) and before == {k: digest_path(k, root / "code_digests").read_text()
                                             for k in KINDS}  # deterministic
    assert not list((root / "code_digests").glob(".*"))  # no scratch left behind
    (root / REPORT_ONLY).write_text((root / REPORT_ONLY).read_text() + "\n# edited\n")
    write_digests(root)
    after = {k: digest_path(k, root / "code_digests").read_text() for k in KINDS}
    assert [k for k in KINDS if after[k] != before[k]] == ["report"]
    with pytest.raises(ValueError, match="unknown stage kind 'nope'"):
        digest_path("nope")


def test_every_stage_depends_on_its_kinds_digest_not_on_code_files(params):
    stages = build_stages(params)["stages"]
    assert list(stages)[0] == "code"
    code = stages["code"]
    assert code["cmd"] == "sh stages/python stages/code.py"
    assert [next(iter(o)) for o in code["outs"]] == [f"code_digests/{k}.md5" for k in KINDS]
    for name, stage in stages.items():
        if name == "code":
            continue
        code_deps = [d for d in stage["deps"] if d.startswith(("pipeline", "stages", "code_digests"))]
        kind = name if name == "report" else name.split("_", 1)[0]
        assert code_deps == [f"code_digests/{kind}.md5"], name
    assert stages["train_t2m_svq"]["deps"] == ["data/processed/t2m.zarr", "code_digests/train.md5",
                                               "run_params/t2m_svq.yaml"]


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([str(Path(sys.executable).with_name("dvc")), *args], cwd=repo, capture_output=True,
                         text=True)
    assert out.returncode == 0, f"dvc {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out


def test_dvc_reruns_train_for_a_train_file_and_only_the_report_for_a_report_file(tiny_params, tmp_path):
    """The real `code` stage in a repository holding a copy of the code; the train and report
    commands only log their name and write their outputs."""
    repo = _copy_code(tmp_path / "repo")
    stages = build_stages(tiny_params)["stages"]
    log = tmp_path / "ran.log"
    fake = tmp_path / "fake.py"
    fake.write_text("import pathlib, sys, time\nlog, name, out = sys.argv[1:]\n"
                    "pathlib.Path(log).open('a').write(name + '\\n')\n"
                    "p = pathlib.Path(out); p.parent.mkdir(parents=True, exist_ok=True)\n"
                    "p.write_text(str(time.time_ns()))\n")
    keep = {"code": stages["code"]}
    keep["code"]["cmd"] = f"{sys.executable} stages/code.py"  # the copy has no venv of its own
    for name, dep, out in (("train_t2m_svq", "code_digests/train.md5", "runs/t2m_svq/result.json"),
                           ("report", "code_digests/report.md5", "reports/metrics.json")):
        keep[name] = {"cmd": f"{sys.executable} {fake} {log} {name} {out}",
                      "deps": [d for d in stages[name]["deps"] if d.startswith(("runs", "code_digests"))],
                      "outs": [{out: {"cache": False}}]}
    assert keep["train_t2m_svq"]["deps"] == ["code_digests/train.md5"]
    assert keep["report"]["deps"] == ["runs", "code_digests/report.md5"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": keep}, sort_keys=False))
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    _dvc(repo, "init", "-q")

    def repro() -> list[str]:
        log.write_text("")
        _dvc(repo, "repro")
        return log.read_text().split()

    def edit(path: str) -> None:
        (repo / path).write_text((repo / path).read_text() + "\n# an edit\n")

    assert repro() == ["train_t2m_svq", "report"]
    assert "up to date" in _dvc(repo, "status").stdout
    edit(REPORT_ONLY)
    assert repro() == ["report"]  # the code stage ran; the train digest did not change
    edit(TRAIN_ONLY)
    assert repro() == ["train_t2m_svq", "report"]
    assert "up to date" in _dvc(repo, "status").stdout
    lock = (repo / "dvc.lock").read_text()
    assert "pipeline/training/fit.py" not in yaml.safe_load(lock)["stages"]["train_t2m_svq"].__repr__()


def test_dvc_parses_yaml_with_the_c_parser():
    """ruamel.yaml 0.19 made its C parser optional (ruamel.yaml.clib, pinned): without it DVC's
    safe loads of dvc.yaml / dvc.lock run in pure Python, several times slower."""
    from dvc.utils.serialize._yaml import parse_yaml
    from ruamel.yaml import YAML
    from ruamel.yaml.main import CParser

    assert CParser is not None
    assert YAML(typ="safe").Parser is CParser
    assert parse_yaml("a: [1, 2]\n", "x.yaml") == {"a": [1, 2]}
