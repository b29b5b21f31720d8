"""train.tracking and train.offline_dir: where a run logs, a bad value refused in one line."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeline.config.load import validate_params
from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError


def _with(params: dict, **train) -> dict:
    p = copy.deepcopy(params)
    p["train"].update(train)
    return p


def test_server_by_default_offline_below_the_repository_or_absolute(params, tmp_path):
    assert resolve_run(params, "t2m_svq").train.offline_store() is None  # server: where tracking_uri() points
    cfg = resolve_run(_with(params, tracking="offline"), "t2m_svq").train
    assert cfg.offline_store() == Path(__file__).resolve().parents[2] / "mlruns-offline"
    assert cfg.offline_folder(tmp_path) == tmp_path / "mlruns-offline"
    cfg = resolve_run(_with(params, tracking="offline", offline_dir=str(tmp_path / "scratch")), "t2m_svq").train
    assert cfg.offline_store() == tmp_path / "scratch"
    assert resolve_run(_with(params, offline_dir="logs/./offline"), "t2m_svq").train.offline_dir == "logs/./offline"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("tracking", "cloud", "train.tracking: expected one of 'server' or 'offline', got 'cloud'"),
    ("tracking", None, "train.tracking: expected one of 'server' or 'offline', got None"),
    ("offline_dir", "../elsewhere", "train.offline_dir: expected a folder inside the repository (e.g. "
                                    "mlruns-offline) or an absolute path, got '../elsewhere'"),
    ("offline_dir", "logs/../..", "train.offline_dir: expected a folder inside the repository"),
    ("offline_dir", ".", "train.offline_dir: expected a folder inside the repository"),
    ("offline_dir", "", "train.offline_dir: expected a folder inside the repository"),
    ("offline_dir", 7, "train.offline_dir: expected a string, got 7"),
])
def test_bad_tracking_settings_are_one_line(params, key, value, message):
    with pytest.raises(ConfigError) as err:
        validate_params(_with(params, **{key: value}))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_profile_may_send_its_runs_offline(params):
    p = copy.deepcopy(params)
    p["profiles"]["sample"]["train"]["tracking"] = "offline"
    assert resolve_run(p, "t2m_svq").train.tracking == "offline"
    p["profiles"]["sample"]["train"]["tracking"] = "nowhere"
    with pytest.raises(ConfigError, match=r"^profiles\.sample\.train\.tracking: expected one of 'server' or 'offline'"):
        validate_params(p)
