"""Progress lines of `python -m pipeline.repro.progress` and the training stage's one-line summary."""
import json
import re
import time

from pipeline.repro.progress import Tracker, chatter, planned_stages
from pipeline.training.summary_line import fmt_duration, one_line_summary


def test_plan_from_dry_run_and_estimates(tmp_path):
    dry = ["Running stage 'download_t2m':", "> sh stages/python stages/download.py t2m", "",
           "Running stage 'train_t2m_svq':", "Running stage 'report':", "Use `dvc push` to send your updates"]
    plan = planned_stages(dry)
    assert plan == ["download_t2m", "train_t2m_svq", "report"]
    (tmp_path / "t2m_svq").mkdir()
    (tmp_path / "t2m_svq" / "result.json").write_text(json.dumps({"elapsed_s": 100}))
    now = [0.0]
    tr = Tracker(plan, runs_dir=tmp_path, clock=lambda: now[0])
    assert tr.start("download_t2m") == \
        "[progress] stage 1 of 3: download_t2m | elapsed 0s | time left unknown until a stage has finished"
    now[0] = 20.0
    # the download took 20 s (the mean so far), the training took 100 s last time, the report ~20 s
    assert tr.start("train_t2m_svq") == "[progress] stage 2 of 3: train_t2m_svq | elapsed 20s | ~2m00s left"
    now[0] = 130.0
    assert tr.start("report").endswith("elapsed 2m10s | ~1m05s left")


def test_a_skipped_stage_counts_as_done_and_chatter_is_left_out():
    now = [0.0]
    tr = Tracker(["a", "b", "c"], clock=lambda: now[0])
    assert tr.start("a").startswith("[progress] stage 1 of 3: a |")
    tr.skip("b")  # DVC found it unchanged: the total stays 3
    assert tr.start("c").startswith("[progress] stage 3 of 3 (1 unchanged, skipped): c |")
    for line in ("", "Updating lock file 'dvc.lock'", "\tgit add dvc.lock", "Running stage 'train_x':",
                 "Use `dvc push` to send your updates to remote storage."):
        assert chatter(line), line
    for line in ("> sh stages/python stages/train.py x", "ERROR: failed to reproduce 'x'", "params: error: y"):
        assert not chatter(line), line


def test_one_line_summary():
    result = {"experiment": "t2m_svq", "seeds": [0, 1],
              "metrics": {"test_mse": 1.234567, "test_lpips": None, "epochs_run": 2.0, "best_val_loss": 0.5},
              "metrics_std": {"test_mse": 0.01}}
    line = one_line_summary(result, 62.4)
    assert line == "train_t2m_svq done in 1m02s: 2 seeds, 2 epochs, test_mse 1.235 ± 0.01, best val_loss 0.5"
    assert "\n" not in line and fmt_duration(7322) == "2h02m"
    result["references"] = {"persistence": {"mse": 0.98765, "skill_mse": -0.25, "leads_lost": [1, 2], "leads": 2}}
    assert one_line_summary(result, 1).endswith("best val_loss 0.5, LOSES TO persistence (-25.0%)")  # where it stands


# ------------------------------------------------------------------ stages two at a time (--jobs)
import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from pipeline.core.errors import EXIT_CODE  # noqa: E402
from pipeline.repro import experiments, progress  # noqa: E402


# per dataset a slow prep -> a slow train; a report reading both (dvc.yaml of the shape ours has).
# Start and end times go beside the repository, so that they are no outputs.
def _timed(name: str, body: str) -> str:
    return f"date +%s.%N > ../{name}.start; sleep 1; {body}; date +%s.%N > ../{name}.end"


PIPELINE = {"stages": {
    "prep_a": {"cmd": _timed("pa", "cat src_a.txt > in_a.txt"), "deps": ["src_a.txt"], "outs": ["in_a.txt"]},
    "prep_b": {"cmd": _timed("pb", "cat src_b.txt > in_b.txt"), "deps": ["src_b.txt"], "outs": ["in_b.txt"]},
    "train_a": {"cmd": _timed("a", "cat in_a.txt > a.txt"), "deps": ["in_a.txt"], "outs": ["a.txt"]},
    "train_b": {"cmd": _timed("b", "cat in_b.txt > b.txt"), "deps": ["in_b.txt"], "outs": ["b.txt"]},
    "report": {"cmd": "cat a.txt b.txt > report.txt", "deps": ["a.txt", "b.txt"], "outs": ["report.txt"]},
}}


def _dvc_repo(path: Path) -> Path:
    path.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    subprocess.run(["git", "init", "-q"], cwd=path, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=path, check=True, env=env)
    (path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    for src in ("src_a.txt", "src_b.txt"):
        (path / src).write_text(src)
    return path


def test_phases_and_lanes():
    graph = {"download": set(), "preprocess": {"download"}, "reference": {"preprocess"},
             "train_x": {"preprocess"}, "train_y": {"preprocess"}, "report": {"train_x", "train_y", "reference"}}
    plan = ["download", "preprocess", "reference", "train_x", "train_y", "report"]
    assert progress.phases(plan, graph) == (["download", "preprocess"], ["reference", "train_x", "train_y"],
                                            ["report"])
    assert progress.lanes(["a", "b", "c", "d"], 2, {"a": 10, "b": 6, "c": 5, "d": None}) == [["a", "c"], ["d", "b"]]  # d: the mean, 7


def test_estimate_from_recorded_durations(tmp_path):
    for name, elapsed in (("x", 100), ("y", 60), ("z", 20)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps({"elapsed_s": elapsed}))
    graph = {"prep": set(), "train_x": {"prep"}, "train_y": {"prep"}, "train_z": {"prep"}, "train_w": {"prep"},
             "report": {"train_x", "train_y", "train_z", "train_w"}}
    line = progress.estimate(list(graph), 2, graph, runs_dir=tmp_path)
    # w counts at the mean (60 s): 240 s in all; lanes x+z (120 s) and w+y (120 s)
    assert "4 independent stage(s), 3 with a recorded duration" in line
    assert "4m00s one at a time, 2m00s in 2 lane(s)" in line


def _overlap(tmp_path: Path, x: str, y: str) -> bool:
    x0, x1, y0, y1 = (float((tmp_path / f).read_text()) for f in (f"{x}.start", f"{x}.end", f"{y}.start", f"{y}.end"))
    return x0 < y1 and y0 < x1


def test_two_at_a_time_records_what_a_sequential_repro_records(tmp_path, monkeypatch):
    """~20 s of DVC start-ups: the one proof that dvc.lock ends as a sequential `dvc repro` leaves it,
    with the data stages in the lanes too."""
    dvc = str(Path(sys.executable).with_name("dvc"))
    par, seq = _dvc_repo(tmp_path / "par"), _dvc_repo(tmp_path / "seq")
    subprocess.run([dvc, "repro", "-q"], cwd=seq, check=True)
    monkeypatch.chdir(par)
    out = io.StringIO()
    assert progress.run(["--jobs", "2"], out=out) == 0  # DVC as make repro runs it: through lock_guard
    log = out.getvalue()
    assert "5 stage(s) to run, 2 at a time" in log and "[2] " in log
    # both preps overlapped, then both trainings; dvc.lock holds what the sequential repro wrote
    assert _overlap(tmp_path, "pa", "pb") and _overlap(tmp_path, "a", "b")
    assert yaml.safe_load((par / "dvc.lock").read_text()) == yaml.safe_load((seq / "dvc.lock").read_text())
    status = subprocess.run([dvc, "status", "-q"], cwd=par)
    assert status.returncode == 0  # nothing left to run
    # a changed source: the dry run sees prep_a only; what it feeds runs too, the rest is left alone
    (par / "src_a.txt").write_text("changed")
    out = io.StringIO()
    assert progress.run(["--jobs", "2"], out=out, dvc=dvc) == 0
    ran = re.findall(r"\[progress\] stage \d+ of 3: (\S+) \|", out.getvalue())
    assert ran == ["prep_a", "train_a", "report"], out.getvalue()
    assert "Updating lock file" not in out.getvalue() and "\n[1] \n" not in out.getvalue()  # DVC's chatter left out
    assert (par / "report.txt").read_text() == "changed" + "src_b.txt"
    assert subprocess.run([dvc, "status", "-q"], cwd=par).returncode == 0


def test_downstream_of_the_plan_runs_upstream_first():
    graph = {"code": set(), "dl_x": set(), "pre_x": {"dl_x"}, "dl_y": set(), "pre_y": {"dl_y"},
             "train_x": {"pre_x", "code"}, "train_y": {"pre_y", "code"}, "report": {"train_x", "train_y"}}
    order = list(graph)
    # the code stage changed: every train and the report may change with it, no data stage
    assert progress.with_downstream(["code"], graph, order) == ["code", "train_x", "train_y", "report"]
    assert progress.with_downstream(["pre_y", "dl_x"], graph, order) == \
        ["dl_x", "pre_x", "pre_y", "train_x", "train_y", "report"]
    with pytest.raises(ValueError, match="cycle"):
        progress.with_downstream(["a"], {"a": {"b"}, "b": {"a"}}, [])


def test_scheduler_runs_stages_once_their_inputs_are_done():
    graph = {"code": set(), "dl_x": set(), "pre_x": {"dl_x"}, "dl_y": set(), "pre_y": {"dl_y"},
             "train_x1": {"pre_x", "code"}, "train_x2": {"pre_x", "code"}, "train_y": {"pre_y", "code"},
             "report": {"train_x1", "train_x2", "train_y"}}
    todo = list(graph)
    cost = dict.fromkeys(todo, 1.0) | {"train_x1": 10.0, "train_x2": 4.0, "train_y": 6.0}
    s = progress.Scheduler(todo, graph, 2, cost)
    # ready: code and both downloads; those that unblock most first, half the ready work per lane
    assert s.next_batch() == ["code", "dl_x"]
    assert s.next_batch() == ["dl_y"]
    assert s.next_batch() == [] and not s.all_claimed()
    s.finished(["dl_y"])
    assert s.next_batch() == ["pre_y"]  # its download is done; the code stage is not: no training yet
    s.finished(["code", "dl_x", "pre_y"])
    # pre_x unblocks two stages: first; the lane reports it done as soon as train_y starts
    assert s.next_batch() == ["pre_x", "train_y"]
    assert s.next_batch() == []
    s.finished(["pre_x"])
    assert s.next_batch() == ["train_x1"]  # the longest first: 10 of the 14 s ready
    assert s.next_batch() == ["train_x2"]
    s.finished(["train_x1", "train_x2", "train_y"])
    assert s.next_batch() == ["report"] and s.all_claimed()
    # one lane: all that is ready in one batch, what unblocks most first (not dvc.yaml's order)
    s = progress.Scheduler(["a", "b", "c"], {"a": set(), "b": set(), "c": {"b"}}, 1, dict.fromkeys("abc", 1.0))
    assert s.next_batch() == ["b", "a"]


def test_an_alias_bomb_in_params_is_refused_before_dvc_reads_it(tmp_path, monkeypatch, capsys):
    """DVC expands params.yaml's aliases itself (10^7 leaves: 100 s, 5 GB); make repro's runner and
    its dvc.yaml check read it with the project's reader first, which refuses the first alias."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    (tmp_path / "params.yaml").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    called = tmp_path / "dvc-called"
    start = time.perf_counter()
    rc = progress.run([], out=io.StringIO(), dvc=[sys.executable, "-c", f"open({str(called)!r}, 'w')"])
    assert rc == EXIT_CODE and not called.exists()
    assert capsys.readouterr().err.splitlines() == [
        "progress: error: params.yaml: line 2: alias *a0 refused; write the value out instead of referring to "
        "an anchor (&a0)"]
    assert experiments.main(["--check", "--params", "params.yaml"]) == EXIT_CODE  # make repro's first step
    assert "experiments: error: params.yaml: line 2: alias *a0 refused" in capsys.readouterr().err
    assert time.perf_counter() - start < 2.0
