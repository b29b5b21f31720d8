import time

import pytest
import torch
from torch import nn

from pipeline.core.errors import ConfigError
from pipeline.metrics.cost import Timer, count_parameters, flops_per_sample, inference_fps, macs_per_sample

torch.set_num_threads(1)


def test_count_parameters_linear_and_frozen():
    lin = nn.Linear(10, 20)
    assert count_parameters(lin) == {"total": 220, "trainable": 220}
    lin.bias.requires_grad_(False)
    assert count_parameters(lin) == {"total": 220, "trainable": 200}


def test_flops_linear_per_sample():
    lin = nn.Linear(10, 20)
    # batch of 4 in, counted for one sample; a multiply-add is 2 FLOPs here
    assert flops_per_sample(lin, torch.rand(4, 10)) == 2 * 10 * 20
    assert macs_per_sample(lin, torch.rand(4, 10)) == 10 * 20


def test_flops_conv_and_mode_restored():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Dropout(0.5))
    model.train()
    # 8 output channels x 16x16 positions x (3*3*3) multiply-adds
    assert macs_per_sample(model, torch.rand(2, 3, 16, 16)) == 8 * 16 * 16 * 27
    assert model.training


def test_inference_fps_positive_and_checks():
    model = nn.Linear(10, 20).train()
    fps = inference_fps(model, torch.rand(8, 10), repeats=3, warmup=1)
    assert fps > 0
    assert model.training
    with pytest.raises(ConfigError, match="repeats"):
        inference_fps(model, torch.rand(8, 10), repeats=0)
    with pytest.raises(ConfigError, match="warmup"):
        inference_fps(model, torch.rand(8, 10), repeats=1, warmup=-1)
    with pytest.raises(ConfigError, match="example_input"):
        flops_per_sample(model, torch.rand(0, 10))


def test_timer_measures_block():
    with Timer() as t:
        time.sleep(0.05)
    first = t.seconds
    assert 0.05 <= first < 1.0
    assert t.minutes == pytest.approx(first / 60)
    time.sleep(0.01)
    assert t.seconds == first  # frozen after the block
    with pytest.raises(RuntimeError):
        Timer().seconds


def test_literal_flops_count_w_at_m_as_the_paper_and_equal_without_svq():
    from pipeline.metrics.cost import flops_per_sample_literal, literal_svq, openstl_fps_batch
    from pipeline.svq import SVQ

    torch.manual_seed(0)
    svq, C, N, h, tokens = SVQ(8, 100, hidden=16), 8, 100, 16, 4 * 6
    z = torch.randn(2, C, 4, 6)
    executed, literal = flops_per_sample(svq, z), flops_per_sample_literal(svq, z)
    # torch's counter: 2 per multiply-add; the paper's code builds W (tokens x N) and multiplies by M
    assert literal == 2 * tokens * (C * h + h * N + N * C)
    assert executed == 2 * (tokens * C * h + N * h * C + N * C + tokens * h * C)   # M^T A2, b2 M once
    with literal_svq(svq) as switched:
        assert switched == 1 and torch.allclose(svq(z), SVQ.forward(svq, z), atol=1e-5)
    assert "forward" not in vars(svq)   # restored afterwards
    plain = nn.Sequential(nn.Conv2d(1, 4, 3))
    x = torch.randn(1, 1, 8, 8)
    assert flops_per_sample_literal(plain, x) == flops_per_sample(plain, x)
    assert openstl_fps_batch((32, 64)) == 100 and openstl_fps_batch((128, 160)) == 10
