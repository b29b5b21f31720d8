"""Progress lines of `python -m pipeline.progress` and the training stage's one-line summary."""
import json

from pipeline.progress import Tracker, fmt_duration, one_line_summary, planned_stages


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


def test_one_line_summary():
    result = {"experiment": "t2m_svq", "seeds": [0, 1],
              "metrics": {"test_mse": 1.234567, "test_lpips": None, "epochs_run": 2.0, "best_val_loss": 0.5},
              "metrics_std": {"test_mse": 0.01}}
    line = one_line_summary(result, 62.4)
    assert line == "train_t2m_svq done in 1m02s: 2 seeds, 2 epochs, test_mse 1.235 ± 0.01, best val_loss 0.5"
    assert "\n" not in line and fmt_duration(7322) == "2h02m"
