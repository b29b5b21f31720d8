"""The run record's files: windows.npz (per-window test errors) and result.json's software entry."""
import re

import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.metrics import openstl
from pipeline.training import record_files


def _record(run_dir, windows=None, software=None):
    result = record_files.summary(experiment=run_dir.name, dataset="t2m", profile="sample", tables=[1], params={},
                                  seeds=[{"seed": 0, "run_id": "r0", "metrics": {"test_mse": 1.0}}],
                                  software=software)
    record_files.write(run_dir, result, [], None, windows)
    return result


def test_windows_round_trip_as_float32(tmp_path):
    rng = np.random.default_rng(0)
    windows = {0: {"mse": rng.random((5, 3)), "mae": rng.random((5, 3))}, 2: {"mse": rng.random((5, 3))}}
    _record(tmp_path / "t2m_svq", windows)
    assert record_files.WINDOWS in record_files.RECORD_FILES
    with np.load(tmp_path / "t2m_svq" / record_files.WINDOWS) as data:
        assert sorted(data.files) == ["seed0.mae", "seed0.mse", "seed2.mse"]
    back = record_files.read_windows(tmp_path / "t2m_svq")
    assert sorted(back) == [0, 2] and sorted(back[0]) == ["mae", "mse"] and list(back[2]) == ["mse"]
    for seed, arrays in windows.items():
        for metric, a in arrays.items():
            assert back[seed][metric].dtype == np.float32
            np.testing.assert_array_equal(back[seed][metric], a.astype(np.float32))


def test_a_record_without_windows_reads_as_empty(tmp_path):
    _record(tmp_path / "old")
    assert not (tmp_path / "old" / record_files.WINDOWS).exists()
    assert record_files.read_windows(tmp_path / "old") == {}


def _bad_windows(tmp_path, **arrays):
    run = tmp_path / "t2m_svq"
    run.mkdir()
    np.savez(run / record_files.WINDOWS, **arrays)
    return run


def test_pickled_arrays_are_refused(tmp_path):
    run = _bad_windows(tmp_path, **{"seed0.mse": np.array([{"rows": 1}, None], dtype=object)})
    with pytest.raises(DataError, match=rf"{re.escape(str(run / 'windows.npz'))}: .*pickle.*"
                                        r"dvc repro -f train_t2m_svq"):
        record_files.read_windows(run)


@pytest.mark.parametrize("arrays, problem", [
    ({"seed0.rmse": np.zeros((4, 2), np.float32)}, "unexpected array 'seed0.rmse'"),
    ({"mse": np.zeros((4, 2), np.float32)}, "unexpected array 'mse'"),
    ({"seed0.mse": np.zeros(4, np.float32)}, r"'seed0.mse' is float32 \(4,\)"),
    ({"seed0.mse": np.zeros((4, 2), np.int64)}, r"'seed0.mse' is int64"),
    ({"seed0.mse": np.zeros((4, 2), np.float32), "seed1.mse": np.zeros((3, 2), np.float32)}, "different shapes"),
])
def test_malformed_windows_are_refused(tmp_path, arrays, problem):
    run = _bad_windows(tmp_path, **arrays)
    with pytest.raises(DataError, match=rf"windows\.npz: .*{problem}.*dvc repro -f train_t2m_svq"):
        record_files.read_windows(run)


def test_a_corrupt_windows_file_is_refused(tmp_path):
    run = tmp_path / "t2m_svq"
    _record(run, {0: {"mse": np.ones((4, 2))}})
    path = run / record_files.WINDOWS
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"windows\.npz: not a readable npz"):
        record_files.read_windows(run)


def test_window_metrics_are_the_accumulators_kept_values(monkeypatch):
    monkeypatch.setattr(openstl, "lpips_available", lambda: False)  # LPIPS kept as NaN: no weights needed
    acc = openstl.MetricAccumulator(list(openstl.METRIC_NAMES), spatial_norm=True, keep_frames=True)
    acc.update(np.zeros((1, 2, 1, 8, 8)), np.ones((1, 2, 1, 8, 8)))
    assert tuple(acc.frame_values()) == record_files.WINDOW_METRICS


def test_software_is_recorded_and_optional(tmp_path):
    software = {"torch": "2.0", "vector_quantize_pytorch": None, "python": "3.11.7"}
    assert _record(tmp_path / "new", software=software)["software"] == software
    assert record_files.read(tmp_path / "new")["software"] == software
    assert "software" not in _record(tmp_path / "old")
    assert record_files.read(tmp_path / "old")["experiment"] == "old"  # older records still read
