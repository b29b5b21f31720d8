"""model.target: the decoder predicts frames, a change from the last input, or a correction to a
least-squares linear forecast of the inputs."""
import numpy as np
import pytest
import torch

from pipeline.config.run_config import resolve_run
from pipeline.models.simvp import SimVP
from pipeline.models.target import LinearSkip, fit_linear, resolve


def _changed(settings, **kw):
    return settings.model_copy(update=kw)


def test_auto_is_linear_for_own_data_and_frames_for_the_papers_datasets(params):
    assert resolve("auto", "custom") == "linear" and resolve("auto", "weatherbench") == "frames"
    assert resolve("residual", "custom") == "residual"
    assert params["model"]["target"] == "auto"
    assert resolve_run(params, "t2m_simvp").model.target == "frames"
    assert resolve_run(params, "kth_svq").model.target == "frames"
    p = {**params, "datasets": {**params["datasets"], "mine": {"source": "custom", "metrics": ["mse"], "data": {}}},
         "experiments": {"mine_svq": {"dataset": "mine", "tables": [], "set": {"model.quantizer": "svq"}}}}
    assert resolve_run(p, "mine_svq").model.target == "linear"
    assert resolve_run(p, "mine_svq").to_dict()["model"]["target"] == "linear"  # the record says what ran


def test_least_squares_recovers_weights_that_sum_to_one():
    rng = np.random.default_rng(0)
    T, C = 4, 2
    true = rng.normal(0, 0.5, (T, T, C))
    true[:, -1] = 1 - true[:, :-1].sum(axis=1)     # rows sum to one
    x = torch.from_numpy(rng.normal(0, 1, (64, T, C, 5, 6)))
    y = torch.einsum("ltc,btchw->blchw", torch.from_numpy(true), x)
    skip = LinearSkip(T, C).double()
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    fit_linear(skip, batches)
    np.testing.assert_allclose(skip.weight.detach().numpy(), true[:, :-1], atol=1e-5)  # the ridge: 1e-6
    torch.testing.assert_close(skip(x), y, atol=1e-4, rtol=0)
    # a field shifted by a constant gets a forecast shifted by it
    torch.testing.assert_close(skip(x + 3.0), skip(x) + 3.0)


def test_fewer_targets_than_frames_keep_persistence_for_the_rest():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(0, 1, (16, 3, 1, 4, 4)))
    y = x.mean(dim=1, keepdim=True)                 # one target: the input mean
    skip = LinearSkip(3, 1).double()
    w = fit_linear(skip, [(x, y)])
    np.testing.assert_allclose(w[0, :, 0], [1 / 3, 1 / 3], atol=1e-5)
    assert np.all(w[1:] == 0)                       # leads 2-3: the last input frame


@pytest.mark.parametrize("target", ["residual", "linear"])
def test_untrained_model_is_the_simple_forecast(params, target):
    cfg = resolve_run(params, "t2m_simvp")
    mcfg = _changed(cfg.model, hid_S=4, hid_T=8, N_T=2, target=target)
    torch.manual_seed(0)
    x = torch.randn(3, 4, 1, 8, 16)
    model = SimVP((4, 1, 8, 16), mcfg, {}).eval()
    if target == "linear":
        with torch.no_grad():
            model.linear.weight.normal_()
    y, _ = model(x)
    expected = x[:, -1:].expand_as(y) if target == "residual" else model.linear(x)
    torch.testing.assert_close(y, expected)
    # and it trains: the decoder's read-out gets a gradient
    model.train()
    loss = (model(x)[0] - torch.randn_like(x)).pow(2).mean()
    loss.backward()
    assert model.dec.readout.weight.grad.abs().sum() > 0


def test_frames_target_is_unchanged_and_auto_must_be_resolved(params):
    cfg = resolve_run(params, "t2m_simvp")
    mcfg = _changed(cfg.model, hid_S=4, hid_T=8, N_T=2)
    torch.manual_seed(0)
    model = SimVP((4, 1, 8, 16), mcfg, {})
    assert model.linear is None and model.dec.readout.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="auto"):
        SimVP((4, 1, 8, 16), _changed(mcfg, target="auto"), {})
