import copy

import pytest

from conftest import ROOT
from pipeline.config.load import load_params, validate_params
from pipeline.config.run_config import resolve_run, run_deps_all_profiles
from pipeline.core.dotted import set_dotted
from pipeline.core.errors import ConfigError
from pipeline.data.dataset_params import dataset_deps


def test_project_params_validate():
    params = load_params(ROOT / "params.yaml")
    assert "t2m_svq" in params["experiments"]


def test_layers_dataset_experiment_profile(params):
    cfg = resolve_run(params, "kth_svq")
    assert cfg.model.translator == "incepu"           # datasets.kth.model
    assert cfg.quantizer.codebook_size == 6000     # datasets.kth.svq
    assert cfg.model.hid_S == params["profiles"]["sample"]["model"]["hid_S"]  # profile wins
    paper = resolve_run(params, "kth_svq", profile="paper")
    assert paper.model.hid_S == 64 and paper.train.epochs == 100 and paper.train.sched == "onecycle"


def test_loss_follows_the_paper(params):
    assert resolve_run(params, "t2m_simvp").loss == "mse"
    assert resolve_run(params, "t2m_svq").loss == "mae"
    assert resolve_run(params, "t2m_svq_mse").loss == "mse"
    assert resolve_run(params, "tcc_svq").loss == "mse"        # the public code's tcc setting
    assert resolve_run(params, "t2m_vq").loss == "mse"         # comparators ran with MSE


def test_deps_name_exactly_the_keys_read(params):
    svq = run_deps_all_profiles(params, "t2m_svq")
    base = run_deps_all_profiles(params, "t2m_simvp")
    kth = run_deps_all_profiles(params, "kth_svq")
    n10 = run_deps_all_profiles(params, "t2m_svq_n10")
    assert "svq.codebook_size" in svq
    assert not any(k.startswith("svq.") for k in base)          # a baseline reads no SVQ key
    assert "svq.codebook_size" not in kth and "datasets.kth.svq.codebook_size" in kth
    assert "svq.codebook_size" not in n10                       # overridden by its experiment
    assert "experiments.t2m_svq" in svq and "profile" in svq
    vq = run_deps_all_profiles(params, "t2m_vq")
    assert "quantizers.vq.codebook_size" in vq and not any(k.startswith("svq.") for k in vq)


def test_a_profile_may_set_keys_of_one_experiment(params):
    # the sample profile's smaller latent and codebook for a comparator; the paper profile untouched
    vq = resolve_run(params, "t2m_vq")
    assert (vq.model.N_S, vq.quantizer.codebook_size) == (6, 128)
    assert dict(vq.origins)["model.N_S"] == "profiles.sample.experiments.t2m_vq.set.model.N_S"
    assert "profiles.sample.experiments.t2m_vq" in run_deps_all_profiles(params, "t2m_vq")
    assert resolve_run(params, "t2m_svq").model.N_S == 2          # other runs keep the profile's
    paper = resolve_run(params, "t2m_grvq_256", profile="paper")
    assert (paper.model.N_S, paper.quantizer.codebook_size) == (2, 256)
    p = set_dotted(params, "profiles.sample.experiments.t2m_svq", {"set": {"train.lr": 1.0e-4}})
    assert resolve_run(p, "t2m_svq").train.lr == 1.0e-4            # the last word, over the profile's lr


@pytest.mark.parametrize("entry, message", [
    ({"set": {"svq.codebok_size": 1}}, r"profiles\.sample\.experiments\.t2m_svq\.set\.svq\.codebok_size"),
    ({"set": {"data.T_in": 4}}, r"profiles\.sample\.experiments\.t2m_svq\.set\.data\.T_in"),
    ({"model.N_S": 4}, r"^profiles\.sample\.experiments\.t2m_svq\.model\.N_S: unknown key; expected one of \['set'\]$"),
])
def test_bad_profile_experiment_settings_name_the_key(params, entry, message):
    with pytest.raises(ConfigError, match=message):
        validate_params(set_dotted(params, "profiles.sample.experiments.t2m_svq", entry))


def test_dataset_deps(params):
    deps = dataset_deps(params, "wbm")
    assert {"datasets.wbm.data", "datasets.wbm.sample", "profiles.sample.datasets.wbm", "profile"} <= set(deps)


@pytest.mark.parametrize("key, value, message", [
    ("model.translator", "transformerxl", "model.translator"),
    ("svq.codebook_size", 0, "svq.codebook_size"),
    ("svq.codebook_size", -5, "svq.codebook_size"),
    ("train.loss", "huber", "train.loss"),
    ("train.noise", 1.5, "train.noise"),
    ("profiles.sample.model.N_S", 3, "model.N_S"),
    ("data.source", "ftp", "data.source"),
    ("profile", "huge", "profile"),
    ("seeds", [], "seeds"),
    ("model.quantizer", "kmeans", "model.quantizer"),
])
def test_bad_settings_name_the_key(params, key, value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_params(set_dotted(params, key, value))


def test_bad_experiment_override(params):
    p = copy.deepcopy(params)
    p["experiments"]["t2m_svq"]["set"]["svq.codebok_size"] = 10
    with pytest.raises(ConfigError, match="experiments.t2m_svq.set.svq.codebok_size"):
        validate_params(p)
    p = copy.deepcopy(params)
    p["experiments"]["t2m_bad"] = {"dataset": "mars", "tables": [], "set": {}}
    with pytest.raises(ConfigError, match="experiments.t2m_bad.dataset"):
        validate_params(p)


def test_unknown_dataset_key_and_missing_file(params, tmp_path):
    p = set_dotted(params, "datasets.t2m.colour", "red")
    with pytest.raises(ConfigError, match="datasets.t2m"):
        validate_params(p)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_flat_params_record_what_ran(params):
    flat = resolve_run(params, "t2m_svq").flat_params()
    assert flat["quantizer.codebook_size"] == 10000
    assert flat["train.loss"] == "mae"
    assert flat["model.translator"] == "gsta"


@pytest.mark.parametrize("key, value, message", [
    ("train.weight_decay", -1, "train.weight_decay: expected a value >= 0"),
    ("train.min_lr", -1, "train.min_lr: expected a value >= 0"),
    ("profiles.sample.train.warmup_epochs", -3, "profiles.sample.train.warmup_epochs: expected a value >= 0"),
    ("experiments.t2m_svq.tables", "abc", "experiments.t2m_svq.tables: expected a list of paper table numbers"),
    ("experiments.t2m_svq.tables", [1, "x"], "experiments.t2m_svq.tables"),
    ("datasets.t2m.train.lr", "fast", "datasets.t2m.train.lr: expected a number"),
    ("datasets.t2m.train.lr", -0.1, "datasets.t2m.train.lr: expected a value > 0.0, got -0.1"),
    ("experiments.t2m_svq.set", {"model.quantizer": "svq", "train.weight_decay": -2},
     "experiments.t2m_svq.set.train.weight_decay: expected a value >= 0"),
])
def test_bad_values_name_the_exact_key(params, key, value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_params(set_dotted(params, key, value))


def test_batch_larger_than_the_split_refused_before_training(params, tiny_store, mlflow_uri, tmp_path):
    from pipeline.training.fit import run_experiment

    p = set_dotted(params, "datasets.t2m.train.batch_size", 64)
    p["profiles"]["sample"]["train"].pop("batch_size")
    with pytest.raises(ConfigError, match=r"datasets\.t2m\.train\.batch_size: 64 is larger than the 37 training windows"):
        run_experiment(resolve_run(p, "t2m_simvp"), tiny_store, tmp_path / "out")
    assert not (tmp_path / "mlflow.db").exists()  # nothing ran


def test_translator_aliases_and_case_are_accepted_as_build_translator_accepts_them(params):
    for written, canonical in (("moga", "moganet"), ("mlp", "mlpmixer"), ("GSTA", "gsta")):
        cfg = resolve_run(set_dotted(params, "datasets.t2m.model", {"translator": written}), "t2m_svq")
        assert cfg.model.translator == canonical
    with pytest.raises(ConfigError, match=r"^datasets\.t2m\.model\.translator: expected one of .*gsta.*"
                                          r"\(aliases mlp=mlpmixer, moga=moganet\), got 'resnet'$"):
        resolve_run(set_dotted(params, "datasets.t2m.model", {"translator": "resnet"}), "t2m_svq")


def test_quantizer_settings_are_typed_with_the_class_defaults(params):
    from pipeline.svq import SVQSettings

    # params.yaml's svq block states the schema's defaults (the public code's): one set of values
    assert SVQSettings(**params["svq"]) == SVQSettings()
    vq = resolve_run(params, "t2m_vq")
    assert vq.quantizer.rotation_trick is False and vq.quantizer.decay == 0.8  # class default, YAML value
    assert not any(k.endswith("rotation_trick") for k in vq.deps)              # defaults are no params deps
    with pytest.raises(ConfigError, match=r"^datasets\.t2m\.quantizers\.vq\.decay: expected a value <= 1.0, got 2$"):
        resolve_run(set_dotted(params, "datasets.t2m.quantizers", {"vq": {"decay": 2}}), "t2m_vq")


@pytest.mark.parametrize("key, value, message", [
    # numpy's generators take seeds in [0, 2**32)
    ("seeds", [0, -1], "seeds: expected a non-empty list of distinct integers in [0, 2**32), got [0, -1]"),
    ("experiments.t2m_svq.seeds", [2**32], "experiments.t2m_svq.seeds: expected a non-empty list of distinct "
                                           "integers in [0, 2**32), got [4294967296]"),
    ("datasets.t2m.train.lr", 1e300, "datasets.t2m.train.lr: expected a value <= 10.0, got 1e+300"),
    ("train.min_lr", 1e300, "train.min_lr: expected a value <= 10.0, got 1e+300"),
    ("train.device", "cuda:x", "train.device: expected auto, cpu or cuda[:N], got 'cuda:x'"),
    # widths and depths that would allocate terabytes
    ("model.hid_T", 10**9, "model.hid_T: expected a value <= 4096, got 1000000000"),
    ("model.hid_S", 2**20, "model.hid_S: expected a value <= 1024, got 1048576"),
    ("model.N_T", 10**6, "model.N_T: expected a value <= 64, got 1000000"),
    ("svq.codebook_size", 10**12, "svq.codebook_size: expected a value <= 1048576, got 1000000000000"),
])
def test_out_of_range_values_are_one_line_naming_the_key(params, key, value, message):
    with pytest.raises(ConfigError) as err:
        validate_params(set_dotted(params, key, value))
    assert str(err.value) == message
