"""Forecast pictures: persistence beside the model, colour bars with units, north up."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from pipeline.training import forecast_plots

PNG = b"\x89PNG\r\n\x1a\n"


def _sample(h=4, w=8):
    # row 0 cold, last row warm: with ascending latitudes row 0 is the south
    field = np.linspace(250, 300, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    frames = np.repeat(field[None, None], 3, axis=0)
    return frames, frames.copy(), frames + 1.0


def _drawn(monkeypatch):
    """Capture the imshow calls and colour-bar labels of the next picture."""
    shown, bars = [], []
    real_imshow, real_colorbar = plt.Axes.imshow, plt.Figure.colorbar

    def imshow(self, arr, **kw):
        shown.append((np.asarray(arr), kw.get("origin")))
        return real_imshow(self, arr, **kw)

    def colorbar(self, *a, **kw):
        cb = real_colorbar(self, *a, **kw)
        bars.append(cb)
        return cb

    monkeypatch.setattr(plt.Axes, "imshow", imshow)
    monkeypatch.setattr(plt.Figure, "colorbar", colorbar)
    return shown, bars


def test_north_up_follows_the_latitude_order():
    assert forecast_plots.north_up([-80.0, 0.0, 80.0])          # WeatherBench: ascending, flip
    assert not forecast_plots.north_up([80.0, 0.0, -80.0])      # ERA5 files: descending, as stored
    assert not forecast_plots.north_up(None)


@pytest.mark.parametrize("lat, origin", [([-60.0, -20.0, 20.0, 60.0], "lower"), ([60.0, 20.0, -20.0, -60.0], "upper"),
                                         (None, "upper")])
def test_forecast_figure_orientation_units_and_persistence(tmp_path, monkeypatch, lat, origin):
    shown, bars = _drawn(monkeypatch)
    x, y, pred = _sample()
    out = forecast_plots.forecast_figure(x, y, pred, tmp_path / "f.png", title="t2m", channels=["t2m"], units=["K"], lat=lat)
    assert out.read_bytes()[:8] == PNG
    assert {o for _, o in shown} == {origin}
    # 3 frames per row: input, truth, prediction, persistence, |error| prediction, |error| persistence
    assert len(shown) == 6 * 3
    persistence = shown[3 * 3][0]
    np.testing.assert_array_equal(persistence, x[-1, 0])
    assert [b.ax.get_ylabel() for b in bars] == ["value (K)", "|error| (K)"]


def test_persistence_repeats_the_last_input_frame():
    x = np.arange(3 * 2 * 2 * 2, dtype=float).reshape(3, 2, 2, 2)
    p = forecast_plots.persistence(x, 4)
    assert p.shape == (4, 2, 2, 2) and all((p[k] == x[-1]).all() for k in range(4))


def test_comparison_reads_units_lat_and_channel_names_from_the_npz(tmp_path, monkeypatch):
    shown, bars = _drawn(monkeypatch)
    x, y, pred = _sample()
    run = {"inputs": x, "truth": y, "prediction": pred, "units": np.asarray(["K"]), "channels": np.asarray(["t2m"]),
           "lat": np.asarray([-60.0, -20.0, 20.0, 60.0])}
    out = forecast_plots.forecast_comparison_figure(run, dict(run, prediction=pred - 2), tmp_path / "c.png", title="t2m")
    assert out.exists() and {o for _, o in shown} == {"lower"}
    assert len(shown) == 8 * 3  # input, truth, 2 models, persistence, 3 error rows
    assert bars[0].ax.get_ylabel() == "value (K)"
