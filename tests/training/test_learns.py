"""The sample profile must learn: a model trained with params.yaml's sample settings (widths,
steps, batch, learning rate) on a tiny predictable store beats persistence on the test split.
A profile that trains too little, or training code that stops updating the model, fails here."""
import numpy as np
import pytest

from pipeline.config.run_config import resolve_run
from pipeline.data.prepared import Prepared, Split, window_starts
from pipeline.data.store import write_store
from pipeline.data.windows import WindowDataset
from pipeline.metrics.openstl import mse
from pipeline.training.fit import run_experiment

T_IN = T_OUT = 4


def advected_store(path, seed=0):
    """Waves moving east 1 px per step over a latitude gradient: persistence degrades with
    lead, while the motion is the same in every split, so it can be learned."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:16, 0:32]
    splits = {}
    for name, n in (("train", 160), ("val", 24), ("test", 40)):
        t0 = rng.integers(0, 1000)
        t = (t0 + np.arange(n))[:, None, None]
        field = (260 + 2 * y + 6 * np.sin(2 * np.pi * (x - t) / 16) * np.cos(np.pi * y / 16)
                 + 3 * np.sin(2 * np.pi * (x - t) / 8 + y / 4))
        frames = (field + rng.normal(0, 0.2, field.shape))[:, None].astype(np.float32)
        splits[name] = Split(frames=frames, starts=window_starts(n, T_IN, T_OUT))
    return write_store(Prepared(splits=splits, channels=["t2m"], T_in=T_IN, T_out=T_OUT, step=1,
                                scaling="zscore", metric_space="physical", attrs={"made_by": "tests"}), path)


def persistence_mse(store) -> float:
    test = WindowDataset(store, "test")
    xs, ys = zip(*(test[i] for i in range(len(test))))
    x, y = (test.to_metric_space(np.stack([a.numpy() for a in v])) for v in (xs, ys))
    return mse(np.repeat(x[:, -1:], T_OUT, axis=1), y, spatial_norm=True)


@pytest.mark.parametrize("name", ["t2m_simvp", "t2m_svq"])
def test_sample_profile_beats_persistence(params, mlflow_uri, tmp_path, name):
    store = advected_store(tmp_path / "advected.zarr")
    p = {**params, "experiments": {name: {**params["experiments"][name], "seeds": [0]}}}
    cfg = resolve_run(p, name)  # the sample profile exactly as params.yaml sets it
    assert cfg.train.max_eval_batches is None  # scored on the whole test split
    trained = run_experiment(cfg, store, tmp_path / "out")["metrics"]["test_mse"]
    reference = persistence_mse(store)
    assert trained < 0.5 * reference, f"{name}: test MSE {trained:.3g} vs persistence {reference:.3g}"
