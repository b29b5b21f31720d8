"""bench/parity.py refuses a --public-code folder that is not the paper's public repository, in one
line and before importing anything heavy (no public code is needed here)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "parity.py"
FILES = ("openstl/models/simvpvq_model.py", "openstl/modules/quantization_modules.py", "openstl/methods/simvpvq.py",
         "openstl/core/optim_scheduler.py", "openstl/utils/parser.py")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_refuses_a_folder_that_is_not_the_public_repository(tmp_path):
    (tmp_path / "openstl").mkdir()
    out = _run("--public-code", str(tmp_path))
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert str(tmp_path) in line and "Pachark/SVQ-Forecasting" in line
    assert "openstl/models/simvpvq_model.py is missing" in line
    assert out.stdout == ""


def test_names_the_first_missing_file_of_a_partial_checkout(tmp_path):
    for f in FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    line = _one_line(_run("--public-code", str(tmp_path)).stderr)
    assert "configs/weather/t2m_5_625/SimVPVQ_gSTA_learnable.py is missing" in line


def test_refuses_a_missing_folder(tmp_path):
    out = _run("--public-code", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "not a directory" in _one_line(out.stderr)


def test_refuses_an_uncovered_run_before_loading_the_public_code(tmp_path):
    for f in FILES + ("configs/weather/t2m_5_625/SimVPVQ_gSTA_learnable.py",):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")  # empty files: loading them would fail, so nothing is loaded
    out = _run("--public-code", str(tmp_path), "--runs", "t2m_simvp,t2m_nope")
    assert out.returncode == 2 and "--runs t2m_nope: not covered" in _one_line(out.stderr)
