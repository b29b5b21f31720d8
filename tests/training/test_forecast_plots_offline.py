"""`dvc plots show` renders offline: the plots are static images, the page loads nothing remote
(checked in headless Chromium with name resolution disabled when chromium is installed)."""
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from matplotlib import image

from conftest import ROOT
from pipeline.config.load import load_params
from pipeline.repro.experiments import plots

PLOTS = plots(load_params(ROOT / "params.yaml"))


def test_declared_plots_are_the_reports_images():
    assert yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"] == PLOTS
    assert all(p.startswith("reports/figures/") and p.endswith(".png") for p in PLOTS)


def test_dvc_plots_page_renders_without_network(tmp_path):
    repo = tmp_path / "repo"
    (repo / "reports" / "figures").mkdir(parents=True)
    red = np.zeros((60, 80, 3), dtype=np.float32)
    red[..., 0] = 1.0
    for p in PLOTS:
        image.imsave(repo / p, red)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": list(PLOTS)}))
    run = dict(cwd=repo, capture_output=True, text=True, timeout=300)
    assert subprocess.run(["git", "init", "-q"], **run).returncode == 0
    out = subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], **run)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "dvc", "plots", "show"], **run)
    assert out.returncode == 0, out.stderr
    html = (repo / "dvc_plots" / "index.html").read_text()
    assert len(re.findall(r"<img ", html)) == len(PLOTS)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page loads something remote"

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed: the page has no remote reference, rendering not checked")
    shot = tmp_path / "page.png"
    out = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                          "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=800,900",
                          f"--screenshot={shot}", (repo / "dvc_plots" / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists(), out.stderr
    px = image.imread(shot)[..., :3]
    is_red = (px[..., 0] > 0.9) & (px[..., 1] < 0.1) & (px[..., 2] < 0.1)
    assert is_red.sum() > 60 * 80, "the plot images did not render"
