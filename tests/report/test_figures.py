"""Each figure function writes a PNG from small synthetic inputs and returns None without them."""
import time

import numpy as np
import pytest

from pipeline.report.figures import (codebook_size_figure, codebook_tsne_figure, learning_curves_figure, noise_figure,
                                     weight_distribution_figure)
from pipeline.report.results import ExperimentResult
from pipeline.report.tables import build_table5
from pipeline.training.forecast_plots import forecast_comparison_figure

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    return path is not None and path.exists() and path.read_bytes()[:8] == PNG


def forecast(seed, t_in=4, t_out=3, c=2, h=8, w=16):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(t_out, c, h, w)).astype(np.float32)
    return {"inputs": rng.normal(size=(t_in, c, h, w)).astype(np.float32), "truth": truth,
            "prediction": truth + 0.1 * rng.normal(size=truth.shape).astype(np.float32)}


def test_forecast_comparison(tmp_path):
    out = forecast_comparison_figure(forecast(0), forecast(1), tmp_path / "f.png", title="t2m")
    assert is_png(out)
    assert forecast_comparison_figure(None, forecast(1), tmp_path / "g.png") is None
    assert forecast_comparison_figure(forecast(0), None, tmp_path / "g.png") is None
    assert not (tmp_path / "g.png").exists()
    bad = forecast(0)
    del bad["truth"]
    with pytest.raises(ValueError, match="truth"):
        forecast_comparison_figure(bad, forecast(1), tmp_path / "h.png")


def test_learning_curves(tmp_path):
    curves = {"WeatherBench-S temperature": {"SimVP": [(1, 1.0), (2, 0.7), (3, 0.6)], "SimVP+SVQ": [(1, 0.9), (2, 0.5)]},
              "TaxiBJ": {"SimVP": [(1, 0.2), (2, 0.1)]}}
    assert is_png(learning_curves_figure(curves, tmp_path / "lc.png"))
    assert learning_curves_figure({}, tmp_path / "x.png") is None
    assert learning_curves_figure({"TaxiBJ": {"SimVP": []}}, tmp_path / "x.png") is None


def test_learning_curves_mark_validation_on_the_training_line_without_an_offset(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    saved = []
    monkeypatch.setattr("pipeline.report.figures._save", lambda fig, path: saved.append(fig) or path)
    train = {"t2m: MAE loss": {"SimVP+SVQ": [(e, 0.40221 + 1e-5 * e) for e in range(1, 11)]}}
    val = {"t2m: MAE loss": {"SimVP+SVQ": [(5, 0.40226), (10, 0.40231)]}}
    learning_curves_figure(train, tmp_path / "lc.png", metric="loss", points=val)
    ax = saved[0].axes[0]
    line, marks = ax.lines[0], ax.lines[1]
    assert list(line.get_xdata()) == list(range(1, 11)) and list(marks.get_xdata()) == [5, 10]
    assert marks.get_color() == line.get_color() and marks.get_linestyle() == "None"
    saved[0].canvas.draw()
    assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e-5+4.022e-1" above the axis
    plt.close(saved[0])


def test_noise_figure_from_table5(tmp_path):
    def rec(exp, mse):
        return ExperimentResult(exp, "t2m", "sample", (5,), 1, {"test_mse": mse}, {"test_mse": 0.0}, {}, ("id",))
    t5 = build_table5([rec("t2m_simvp", 1.0), rec("t2m_svq", 0.9), rec("t2m_simvp_noise20", 1.4),
                       rec("t2m_svq_noise20", 1.0)])
    assert is_png(noise_figure(t5, tmp_path / "noise.png"))
    assert is_png(noise_figure(t5, tmp_path / "noise_refs.png", references={"Persistence": 1.2, "Climatology": 0.8}))
    assert noise_figure(build_table5([]), tmp_path / "none.png") is None


def test_codebook_size_figure(tmp_path):
    series = {"SVQ": [(10, 1.1), (1000, 1.05), (10000, 1.0)], "Grouped residual VQ": [(256, 1.3), (1024, 1.2)]}
    out = codebook_size_figure(series, tmp_path / "cb.png", reference={"SVQ": [(10, 1.06), (10000, 1.018)]},
                               references={"Persistence": 1.4})
    assert is_png(out)
    assert codebook_size_figure({"SVQ": []}, tmp_path / "x.png") is None


def test_weight_distribution(tmp_path):
    rng = np.random.default_rng(0)
    laplace = {"weights": rng.laplace(size=5000), "codebook": rng.normal(size=(100, 8))}
    samples = {"learnable, MAE loss": laplace, "learnable, MSE loss": None,
               "frozen, MAE loss": {"weights": rng.normal(size=5000), "codebook": rng.uniform(size=(100, 8))}}
    assert is_png(weight_distribution_figure(samples, tmp_path / "w.png"))
    assert weight_distribution_figure({"a": None}, tmp_path / "x.png") is None


def test_codebook_tsne(tmp_path):
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    out = codebook_tsne_figure({"VQ": rng.normal(size=(300, 8)), "SVQ": rng.normal(size=(40, 8)), "none": None},
                               tmp_path / "tsne.png", max_codes=60)
    assert is_png(out)
    assert time.perf_counter() - start < 20
    assert codebook_tsne_figure({"VQ": None}, tmp_path / "x.png") is None
