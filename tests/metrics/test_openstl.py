import logging
import math

import numpy as np
import pytest
import torch

from pipeline.core.errors import ConfigError, DataError
from pipeline.metrics import openstl as M

torch.set_num_threads(1)

ALL = ["mse", "mae", "rmse", "ssim", "psnr", "lpips"]


@pytest.fixture(scope="module")
def rand_lpips():
    """LPIPS with a random AlexNet: exercises the code path offline, never for real numbers."""
    import warnings

    import lpips

    with warnings.catch_warnings():  # torchvision's deprecation notes on lpips' `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


def hand_pair():
    # sample 0: errors 0.5, 0, 0.5, 0 ; sample 1: error 0.1 everywhere
    pred = np.array([[[[[0.5, 0.25], [1.0, 0.0]]]], [[[[0.6, 0.6], [0.6, 0.6]]]]])
    true = np.array([[[[[0.0, 0.25], [0.5, 0.0]]]], [[[[0.5, 0.5], [0.5, 0.5]]]]])
    assert pred.shape == (2, 1, 1, 2, 2)
    return pred, true


def test_error_metrics_hand_values():
    pred, true = hand_pair()
    # per-frame sums: squared 0.5 and 0.04, absolute 1.0 and 0.4; two frames; C*H*W = 4
    assert M.mse(pred, true) == pytest.approx(0.27)
    assert M.mse(pred, true, spatial_norm=True) == pytest.approx(0.0675)
    assert M.mae(pred, true) == pytest.approx(0.7)
    assert M.mae(pred, true, spatial_norm=True) == pytest.approx(0.175)
    assert M.rmse(pred, true) == pytest.approx(math.sqrt(0.27))
    assert M.rmse(pred, true, spatial_norm=True) == pytest.approx(math.sqrt(0.0675))
    # per-frame mse 0.125 and 0.01 -> 10 log10(8) and 20 dB
    assert M.psnr(pred, true) == pytest.approx((10 * math.log10(8) + 20.0) / 2)


def test_error_metrics_match_openstl_formulas():
    rng = np.random.default_rng(0)
    pred, true = rng.normal(size=(3, 4, 2, 5, 6)), rng.normal(size=(3, 4, 2, 5, 6))
    norm = 2 * 5 * 6
    assert M.mse(pred, true) == pytest.approx(np.mean((pred - true) ** 2, axis=(0, 1)).sum())
    assert M.mae(pred, true) == pytest.approx(np.mean(np.abs(pred - true), axis=(0, 1)).sum())
    assert M.mse(pred, true, True) == pytest.approx(
        np.mean((pred - true) ** 2 / norm, axis=(0, 1)).sum())
    assert M.rmse(pred, true, True) == pytest.approx(
        np.sqrt(np.mean((pred - true) ** 2 / norm, axis=(0, 1)).sum()))


def test_psnr_exact_frame_is_inf_like_openstl():
    pred, true = hand_pair()
    assert M.psnr(true, true) == math.inf


def test_clipping_applies_to_image_metrics_only():
    true = np.full((1, 1, 1, 8, 8), 1.0)
    pred = np.full((1, 1, 1, 8, 8), 1.5)  # clips to exactly the target
    assert M.mse(pred, true) == pytest.approx(0.25 * 64)
    assert M.psnr(pred, true) == math.inf
    assert M.ssim(pred, true) == pytest.approx(1.0)
    low = np.full((1, 1, 1, 8, 8), -0.5)
    assert M.psnr(low, np.zeros_like(low)) == math.inf


def test_ssim_identical_and_different():
    rng = np.random.default_rng(1)
    true = rng.random((2, 3, 3, 16, 16))
    assert M.ssim(true, true) == pytest.approx(1.0)
    noisy = np.clip(true + rng.normal(scale=0.1, size=true.shape), 0, 1)
    s1 = M.ssim(noisy, true)
    assert 0 < s1 < 1
    # OpenSTL's old scikit-image default for floats (data_range 2) gives higher scores
    assert M.ssim(noisy, true, data_range=2.0) > s1


def test_ssim_layout_matches_openstl_call():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    p, t = rng.random((1, 1, 3, 12, 16)), rng.random((1, 1, 3, 12, 16))
    # OpenSTL passes (W, H, C) frames with the channel last
    ref = structural_similarity(p[0, 0].swapaxes(0, 2), t[0, 0].swapaxes(0, 2),
                                channel_axis=-1, data_range=1.0)
    assert M.ssim(p, t) == pytest.approx(ref, abs=1e-12)


def test_lpips_code_path(rand_lpips):
    rng = np.random.default_rng(3)
    true = rng.random((2, 2, 3, 32, 32))
    assert M.lpips(true, true, lpips_model=rand_lpips) == pytest.approx(0.0, abs=1e-6)
    assert M.lpips(rng.random(true.shape), true, lpips_model=rand_lpips) > 0
    grey = rng.random((1, 2, 1, 32, 32))
    assert M.lpips(grey, grey, lpips_model=rand_lpips) == pytest.approx(0.0, abs=1e-6)
    assert M.lpips(1 - grey, grey, lpips_model=rand_lpips) > 0
    with pytest.raises(ConfigError, match="C=2"):
        M.lpips(rng.random((1, 1, 2, 32, 32)), rng.random((1, 1, 2, 32, 32)),
                lpips_model=rand_lpips)


def test_lpips_nan_when_weights_unavailable(monkeypatch, caplog):
    monkeypatch.setattr(M, "lpips_available", lambda: False)
    monkeypatch.setattr(M, "_pretrained_lpips", lambda: pytest.fail("must not build LPIPS"))
    x = np.random.default_rng(4).random((1, 1, 3, 32, 32))
    with caplog.at_level(logging.WARNING, logger="pipeline.metrics.openstl"):
        assert math.isnan(M.lpips(x, 1 - x))
        res = M.compute_metrics(x, 1 - x, ["mse", "lpips"], spatial_norm=False)
    assert "LPIPS unavailable" in caplog.text
    assert math.isnan(res["lpips"]) and res["mse"] > 0


def test_lpips_available_checks_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert not M.lpips_available()
    ckpt = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    assert M.lpips_available()


def test_compute_metrics_names_and_values(rand_lpips):
    pred, true = hand_pair()
    res = M.compute_metrics(pred, true, ["rmse", "mse", "mse"], spatial_norm=True)
    assert list(res) == ["rmse", "mse"]
    assert res["mse"] == pytest.approx(0.0675) and res["rmse"] == pytest.approx(math.sqrt(0.0675))
    with pytest.raises(ConfigError, match="foo"):
        M.compute_metrics(pred, true, ["mse", "foo"], spatial_norm=False)
    with pytest.raises(ConfigError, match="list"):
        M.compute_metrics(pred, true, "mse", spatial_norm=False)
    with pytest.raises(ConfigError, match="ssim_data_range"):
        M.compute_metrics(pred, true, ["ssim"], spatial_norm=False, ssim_data_range=0)
    with pytest.raises(DataError, match="shape"):
        M.compute_metrics(pred, true[:1], ["mse"], spatial_norm=False)


def test_accumulator_equals_whole_array(rand_lpips):
    rng = np.random.default_rng(5)
    # values outside [0, 1] so that clipping matters; 7 samples in uneven batches
    pred = rng.normal(0.5, 0.4, size=(7, 2, 3, 32, 32))
    true = rng.random((7, 2, 3, 32, 32))
    for spatial_norm in (False, True):
        whole = M.compute_metrics(pred, true, ALL, spatial_norm, lpips_model=rand_lpips)
        acc = M.MetricAccumulator(ALL, spatial_norm, lpips_model=rand_lpips)
        for lo, hi in [(0, 3), (3, 3), (3, 4), (4, 7)]:  # includes an empty batch
            acc.update(pred[lo:hi], true[lo:hi])
        streamed = acc.compute()
        assert list(streamed) == ALL
        for name in ALL:
            assert streamed[name] == pytest.approx(whole[name], rel=1e-9), name
    assert whole["mse"] == pytest.approx(M.mse(pred, true, True))
    assert whole["ssim"] == pytest.approx(M.ssim(pred, true))
    assert whole["psnr"] == pytest.approx(M.psnr(pred, true))
    assert whole["lpips"] == pytest.approx(M.lpips(pred, true, lpips_model=rand_lpips), rel=1e-6)


def _kept(names, spatial_norm, batches, **kw):
    acc = M.MetricAccumulator(names, spatial_norm, keep_frames=True, **kw)
    for pred, true in batches:
        acc.update(pred, true)
    return acc


@pytest.mark.parametrize("spatial_norm", [True, False])  # physical units (weather); video-style per-frame sums
def test_kept_frame_values_average_to_the_metrics(rand_lpips, spatial_norm):
    rng = np.random.default_rng(7)
    pred = rng.normal(0.5, 0.4, size=(5, 3, 3, 32, 32))  # outside [0, 1]: the scores clip, the errors do not
    true = rng.random((5, 3, 3, 32, 32))
    batches = [(pred[:2], true[:2]), (pred[2:2], true[2:2]), (pred[2:], true[2:])]
    acc = _kept(ALL, spatial_norm, batches, lpips_model=rand_lpips)
    values, frames = acc.compute(), acc.frame_values()
    assert list(frames) == ["mse", "mae", "ssim", "psnr", "lpips"]  # rmse is sqrt of mse's mean
    assert all(a.dtype == np.float32 and a.shape == (5, 3) for a in frames.values())
    for name, a in frames.items():
        assert a.astype(np.float64).mean() == pytest.approx(values[name], rel=1e-6), name
    assert np.sqrt(frames["mse"].astype(np.float64).mean()) == pytest.approx(values["rmse"], rel=1e-6)
    # window 1, lead 2: its own error and score, in the order the windows were added
    diff = pred[1, 2] - true[1, 2]
    pixels = diff.size if spatial_norm else 1
    assert frames["mse"][1, 2] == pytest.approx(np.square(diff).sum() / pixels, rel=1e-6)
    assert frames["mae"][1, 2] == pytest.approx(np.abs(diff).sum() / pixels, rel=1e-6)
    assert frames["psnr"][1, 2] == pytest.approx(M.psnr(pred[1:2, 2:3], true[1:2, 2:3]), rel=1e-6)
    assert frames["ssim"][1, 2] == pytest.approx(M.ssim(pred[1:2, 2:3], true[1:2, 2:3]), rel=1e-6)
    # keeping frames leaves the metrics as they are
    plain = M.MetricAccumulator(ALL, spatial_norm, lpips_model=rand_lpips)
    for batch in batches:
        plain.update(*batch)
    assert plain.frame_values() == {}
    assert values == pytest.approx(plain.compute(), rel=1e-12)


def test_kept_frames_of_rmse_alone_and_of_unavailable_lpips(monkeypatch):
    monkeypatch.setattr(M, "lpips_available", lambda: False)
    pred, true = hand_pair()
    acc = _kept(["rmse", "lpips"], False, [(pred, true)])
    frames = acc.frame_values()
    assert list(frames) == ["mse", "lpips"]
    assert frames["mse"].ravel().tolist() == pytest.approx([0.5, 0.04])
    assert np.sqrt(frames["mse"].mean()) == pytest.approx(acc.compute()["rmse"])
    assert np.isnan(frames["lpips"]).all() and frames["lpips"].shape == (2, 1)  # NaN, as compute() reports it


def test_kept_frames_of_shards_concatenate_in_the_order_added():
    """Evaluation across ranks: contiguous shards, rank 0's first, give the single pass's arrays."""
    rng = np.random.default_rng(3)
    pred, true = rng.random((7, 2, 1, 8, 8)), rng.random((7, 2, 1, 8, 8))
    names = ["mse", "mae", "rmse", "psnr", "ssim"]
    whole = _kept(names, True, [(pred, true)])
    first = _kept(names, True, [(pred[:3], true[:3])])
    second = _kept(names, True, [(pred[3:5], true[3:5]), (pred[5:], true[5:])])
    empty = _kept(names, True, [])  # a rank with no windows
    for part in (empty, second):
        first.add_partial_sums(part.partial_sums())
    assert first.compute() == pytest.approx(whole.compute(), rel=1e-12)
    merged, single = first.frame_values(), whole.frame_values()
    assert list(merged) == list(single) == ["mse", "mae", "psnr", "ssim"]
    for name in single:
        np.testing.assert_array_equal(merged[name], single[name], err_msg=name)


def test_accumulator_rejects_mismatched_batches_and_empty_compute():
    acc = M.MetricAccumulator(["mse"], spatial_norm=False)
    with pytest.raises(DataError, match="before any"):
        acc.compute()
    acc.update(np.zeros((2, 1, 1, 4, 4)), np.zeros((2, 1, 1, 4, 4)))
    with pytest.raises(DataError, match="earlier batches"):
        acc.update(np.zeros((2, 1, 1, 4, 5)), np.zeros((2, 1, 1, 4, 5)))


def test_alexnet_checkpoint_name_is_torchvisions():
    from torchvision.models import AlexNet_Weights

    import pipeline  # noqa: F401  (the torchvision shim)
    from pipeline.metrics.openstl import ALEXNET_CHECKPOINT

    assert AlexNet_Weights.IMAGENET1K_V1.url.endswith("/" + ALEXNET_CHECKPOINT)


def test_rmse_per_variable_hand_value_and_streaming():
    # channels a, a, b, b with errors 1, 3, 2, 2 on one pixel of one frame: variable a's RMSE is
    # sqrt((1 + 9) / 2) = sqrt(5), b's sqrt((4 + 4) / 2) = 2; their mean (OpenSTL's WB-M rmse) is
    # (sqrt(5) + 2) / 2, where the global rmse is sqrt(18 / 4)
    true = np.zeros((1, 1, 4, 1, 1))
    pred = np.array([1.0, -3.0, 2.0, 2.0]).reshape(1, 1, 4, 1, 1)
    labels = ["a", "a", "b", "b"]
    assert M.rmse_per_variable(pred, true, True, labels) == pytest.approx((math.sqrt(5) + 2) / 2, rel=1e-12)
    assert M.rmse(pred, true, True) == pytest.approx(math.sqrt(4.5), rel=1e-12)
    # without labels every channel is a variable: mean of 1, 3, 2, 2; without spatial_norm a group's
    # squared errors are summed per frame: sqrt(10) and sqrt(8)
    assert M.rmse_per_variable(pred, true, True) == pytest.approx(2.0, rel=1e-12)
    assert M.rmse_per_variable(pred, true, False, labels) == pytest.approx((math.sqrt(10) + math.sqrt(8)) / 2)
    # streamed over two batches and through partial sums (ranks), it equals the whole-array value
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(6, 2, 4, 3, 5)), rng.normal(size=(6, 2, 4, 3, 5))
    names = ["rmse", "rmse_per_variable"]
    first = M.MetricAccumulator(names, spatial_norm=True, keep_frames=True, variables=labels)
    second = M.MetricAccumulator(names, spatial_norm=True, keep_frames=True, variables=labels)
    first.update(p[:4], t[:4])
    second.update(p[4:], t[4:])
    first.add_partial_sums(second.partial_sums())
    got = first.compute()
    assert got["rmse_per_variable"] == pytest.approx(M.rmse_per_variable(p, t, True, labels), rel=1e-12)
    assert got["rmse"] == pytest.approx(M.rmse(p, t, True), rel=1e-12)
    assert set(first.frame_values()) == {"mse"}  # a mean of per-variable RMSEs has no per-frame values
    with pytest.raises(DataError, match="3 channel variables given for 4 channels"):
        M.rmse_per_variable(pred, true, True, ["a", "a", "b"])


def test_channel_variables_drop_pressure_levels_only():
    assert M.channel_variables(["r150", "r500", "t850", "t2m", "tcc"]) == ["r", "r", "t", "t2m", "tcc"]
    acc = M.evaluation_accumulator(["rmse_per_variable"], "physical", channels=["r150", "r500", "t150"])
    assert acc.variables == ["r", "r", "t"]
