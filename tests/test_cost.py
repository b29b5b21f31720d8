import time

import pytest
import torch
from torch import nn

from pipeline.cost import Timer, count_parameters, flops_per_sample, inference_fps, macs_per_sample
from pipeline.errors import ConfigError

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
