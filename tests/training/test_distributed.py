"""Mixed precision, and torchrun + DDP on CPU (gloo): two processes train and test exactly as one."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, make_prepared
from pipeline.config.run_config import resolve_run
from pipeline.core.errors import ConfigError
from pipeline.data.prepare import store_path
from pipeline.data.store import write_store
from pipeline.training import distributed
from pipeline.training.fit import build_model, run_experiment
from pipeline.training.record_files import read_windows


@pytest.mark.parametrize("n", [0, 1, 5, 17, 32])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_eval_shards_cover_every_window_once(n, world):
    for limit in (None, 4):
        shards = [distributed.eval_indices(n, distributed.Ranks(r, world, r), limit) for r in range(world)]
        covered = [i for s in shards for i in s]
        assert covered == list(range(n if limit is None else min(n, limit)))  # disjoint, in order, no padding


def test_global_batch_must_split_evenly(tiny_params):
    batch = resolve_run(tiny_params, "t2m_svq").train.batch_size  # the profile's, whatever it is
    tiny_params["train"].update(devices=batch + 1)
    with pytest.raises(ConfigError, match=rf"^train\.devices: expected a number of processes that splits "
                                          rf"train\.batch_size = {batch} evenly, got {batch + 1}$"):
        resolve_run(tiny_params, "t2m_svq")
    with pytest.raises(ConfigError, match="train.batch_size"):
        distributed.per_rank_batch(4, distributed.Ranks(0, 3, 0))


def test_precision_is_validated(tiny_params):
    tiny_params["train"]["precision"] = "fp8"
    with pytest.raises(ConfigError, match=r"^train\.precision: expected one of 'fp32', 'bf16' or 'fp16', got 'fp8'$"):
        resolve_run(tiny_params, "t2m_svq")


def test_bf16_training_on_cpu(tiny_params, tiny_store, mlflow_uri, tmp_path, monkeypatch):
    import pipeline.training.fit as train

    seen = set()
    build = train.build_model

    def spy(cfg, in_shape):
        model = build(cfg, in_shape)
        model.dec.register_forward_hook(lambda m, i, out: seen.add((m.training, out.dtype)))
        return model

    monkeypatch.setattr(train, "build_model", spy)
    tiny_params["train"]["precision"] = "bf16"
    summary = run_experiment(resolve_run(tiny_params, "t2m_svq"), tiny_store, tmp_path / "out")
    assert (True, torch.bfloat16) in seen and (False, torch.bfloat16) in seen  # training and evaluation
    assert np.isfinite(summary["metrics"]["test_mse"]) and np.isfinite(summary["metrics"]["best_val_loss"])
    state = torch.load(tmp_path / "out" / "best-seed0.pt", weights_only=False)["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())  # master weights


def test_fp16_uses_a_gradient_scaler():
    assert distributed.grad_scaler("fp16", torch.device("cpu")).is_enabled()
    assert not distributed.grad_scaler("bf16", torch.device("cpu")).is_enabled()
    assert not distributed.grad_scaler("fp32", torch.device("cpu")).is_enabled()


def _tiny_project(root, params):
    """A working directory the train stage runs in: params.yaml and the processed store."""
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # 17 test windows: two ranks get 8 and 9, so any padding or loss would change the metrics
    write_store(make_prepared(n_frames=(40, 20, 20)), store_path(params, "t2m", root))


def test_two_processes_match_one(tiny_params, mlflow_uri, tmp_path):
    """torchrun with 2 gloo ranks (through train.devices: 2) takes the same optimiser step on the
    same global batch as one process, and tests every window exactly once (17 windows, split 8/9:
    a padded or dropped window would move the metrics)."""
    tiny_params["seeds"] = [0]
    tiny_params["profiles"]["sample"]["train"].update(max_eval_batches=None, batch_size=4, epochs=1,
                                                      max_steps_per_epoch=1, sched="none")
    # batch norm (gSTA's) normalises per rank, as the public code, so the equality holds for a
    # translator without it; stochastic depth draws per rank
    tiny_params["profiles"]["sample"]["model"].update(translator="incepu", drop_path=0.0)
    one = tmp_path / "one"
    _tiny_project(one, tiny_params)
    cfg = resolve_run(tiny_params, "t2m_svq")
    ref = run_experiment(cfg, store_path(tiny_params, "t2m", one), one / "out")

    two_params = json.loads(json.dumps(tiny_params))
    two_params["profiles"]["sample"]["train"]["devices"] = 2
    two = tmp_path / "two"
    _tiny_project(two, two_params)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "t2m_svq"], cwd=two, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    result = json.loads((two / "runs" / "t2m_svq" / "result.json").read_text())
    assert len(result["run_ids"]) == 1 and result["run_ids"][0]  # rank 0 alone opened a run
    for key in ("test_mse", "test_mae", "best_val_loss"):
        assert result["metrics"][key] == pytest.approx(ref["metrics"][key], rel=1e-5), key
    # rank 0's shard, then rank 1's: every window's errors where one process puts them
    windows, one_windows = read_windows(two / "runs" / "t2m_svq"), read_windows(one / "out")
    assert windows[0]["mse"].shape == (17, 2)
    for metric in ("mse", "mae"):
        np.testing.assert_allclose(windows[0][metric], one_windows[0][metric], rtol=1e-4, err_msg=metric)
    a = torch.load(one / "out" / "best-seed0.pt", weights_only=False)["state_dict"]
    b = torch.load(two / "runs" / "t2m_svq" / "artifacts" / "best-seed0.pt", weights_only=False)["state_dict"]
    # Adam's first step is lr * g / (|g| + eps): about +-lr where |g| >> eps, but a gradient that is
    # zero in exact arithmetic (a conv bias right before GroupNorm) is rounding noise that Adam
    # rescales; so weights agree to 2 % of the step (lr 5e-3), a wrong batch moves them by ~2 lr
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-4, msg=k)
    torch.manual_seed(0)  # fit_one's seeding, then the model: the weights before the step
    init = build_model(cfg, (2, 1, 16, 16)).state_dict()
    assert max((a[k] - init[k]).abs().max().item() for k in a if a[k].is_floating_point()) > 1e-3
    assert not (two / "runs" / ".t2m_svq.tmp").exists()


def test_a_gpu_index_the_machine_lacks_is_refused_naming_the_key(monkeypatch):
    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(distributed.torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError) as err:
        distributed.check_device("cuda:2", "profiles.gpu.train.device")
    assert str(err.value) == ("profiles.gpu.train.device: 'cuda:2', but torch sees 2 GPU(s); expected cuda:0 to "
                              "cuda:1, auto or cpu")
    distributed.check_device("cuda:1")
    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^train\.device: 'cuda' needs a GPU"):
        distributed.pick_device("cuda")
    assert distributed.pick_device("auto").type == "cpu" and distributed.pick_device("cpu").type == "cpu"
