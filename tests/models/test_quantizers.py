"""Quantizer registry: contract of every entry, settings handling, diagnostics, LISTA behaviour."""
import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.core.errors import ConfigError
from pipeline.core.schema import Settings
from pipeline.models.quantizers import QUANTIZERS, build_quantizer
from pipeline.models.quantizers.diagnostics import (kurtosis, mean_column_perplexity, perplexity_from_counts,
                                                    perplexity_from_indices, regression_weight_stats)
from pipeline.svq import SVQSettings

torch.set_num_threads(1)

DIM = 16
EXPECTED_KEYS = {
    "none": set(),
    "svq": {"perplexity_theta2", "perplexity_theta3", "kurtosis_weights", "kurtosis_codebook"},
    "svq_raw": {"perplexity", "sparsity", "active_codes_per_token"},
}
NO_AUX = {"none", "svq", "residual_fsq"}


def latent(seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, DIM, 8, 16, generator=g).requires_grad_(requires_grad)


def test_registry_names():
    assert set(QUANTIZERS) == {"none", "svq", "svq_raw", "vq", "residual_vq", "grouped_residual_vq", "multihead_vq",
                               "residual_vq_stochastic", "residual_fsq", "lfq", "residual_lfq"}
    for name in QUANTIZERS:
        cls = QUANTIZERS.get(name)
        assert cls.name == name and isinstance(cls.Settings(), Settings)  # every setting has a default


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_contract_of_every_quantizer(name):
    torch.manual_seed(0)
    q = build_quantizer(name, DIM, {})
    q.train()
    z = latent(requires_grad=True)
    out, aux = q(z)
    assert out.shape == z.shape
    assert aux.dim() == 0 and torch.isfinite(aux)
    if name in NO_AUX:
        assert aux.item() == 0.0
    # The gradient must reach the encoder, through straight-through estimators too.
    (F.mse_loss(out, torch.zeros_like(out)) + aux).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0

    stats = q.diagnostics(latent(seed=1))
    assert set(stats) == EXPECTED_KEYS.get(name, {"perplexity"})
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    if "perplexity" in stats and name != "svq_raw":
        assert 1.0 <= stats["perplexity"] <= q._perplexity_codebook_size


@pytest.mark.parametrize("name", ["vq", "residual_vq_stochastic", "grouped_residual_vq"])
def test_diagnostics_leave_the_codebook_state_unchanged(name):
    torch.manual_seed(0)
    q = build_quantizer(name, DIM, {}).train()
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.diagnostics(latent())
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())
    q(latent())  # a training forward does move the EMA codebook: the check above can fail
    assert not all(torch.equal(before[k], v) for k, v in q.state_dict().items())


def test_missing_settings_take_defaults_and_overrides_apply():
    q = build_quantizer("svq", DIM, {"codebook_size": 64, "init": "kaiming"})
    assert q.settings == SVQSettings(codebook_size=64, init="kaiming")
    assert q.svq.codebook.shape == (64, DIM) and q.svq.hidden == 64
    bucket = build_quantizer("svq", DIM, {"hidden": 1280, "codebook_size": 1280})
    assert bucket.svq.linear1.out_features == 1280 and bucket.svq.codebook.shape == (1280, DIM)
    frozen = build_quantizer("svq", DIM, {"freeze_codebook": True, "codebook_size": 100})
    assert not frozen.svq.codebook.requires_grad
    assert build_quantizer("svq", DIM, None).settings == SVQSettings()


def test_table11_defaults_reach_the_library():
    rvq = build_quantizer("residual_vq_stochastic", DIM, {}).vq
    assert rvq.num_quantizers == 8 and rvq.layers[0].codebook_size == 1024
    assert rvq.layers[0]._codebook is rvq.layers[7]._codebook   # shared
    assert rvq.layers[0]._codebook.sample_codebook_temp == 0.1
    grvq = build_quantizer("grouped_residual_vq", DIM, {}).vq
    assert grvq.groups == 2 and len(grvq.rvqs) == 2
    mh = build_quantizer("multihead_vq", DIM, {}).vq
    assert mh.heads == 8 and not mh.separate_codebook_per_head and mh.codebook_size == 1024
    assert build_quantizer("vq", DIM, {}).vq.codebook_size == 1024   # the public ablation_vq/VQ.py
    lfq = build_quantizer("lfq", DIM, {}).vq
    assert lfq.codebook_dim == 13 and lfq.entropy_loss_weight == 0.1 and lfq.has_projections
    assert lfq.commitment_loss_weight == 0.25   # 1.12.5's default; later versions turned it off
    fsq = build_quantizer("residual_fsq", DIM, {}).vq
    assert fsq.levels == [8, 5, 5, 3] and fsq.num_quantizers == 8 and fsq.has_projections
    rlfq = build_quantizer("residual_lfq", DIM, {}).vq
    assert rlfq.num_quantizers == 8 and rlfq.layers[0].codebook_dim == 8   # 256 codes


def test_aux_reduction_sum_is_quantizers_times_mean():
    z = latent()
    losses = {}
    for reduction in ("sum", "mean"):
        torch.manual_seed(3)
        q = build_quantizer("residual_vq", DIM, {"aux_reduction": reduction}).train()
        losses[reduction] = q(z)[1]
    torch.testing.assert_close(losses["sum"], 8 * losses["mean"])


def test_lista_reconstruction_improves_with_iterations():
    torch.manual_seed(0)
    q = build_quantizer("svq_raw", DIM, {"codebook_size": 64, "iterations": 4})
    x = q.tokens(latent())
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    for _ in range(10):
        opt.zero_grad()
        out, aux = q(latent())
        (F.mse_loss(out, latent()) + aux).backward()
        opt.step()
    with torch.no_grad():
        errors = [F.mse_loss(q.codes(x, k) @ q.dictionary, x).item() for k in (1, 2, 4)]
    assert errors[2] < errors[1] < errors[0]


def test_lista_codes_are_sparse_and_diagnostics_match():
    torch.manual_seed(1)
    q = build_quantizer("svq_raw", DIM, {"codebook_size": 64, "threshold": 1.0})
    with torch.no_grad():
        codes = q.codes(q.tokens(latent()))
    zero_fraction = (codes == 0).double().mean().item()
    stats = q.diagnostics(latent())
    assert 0.0 < stats["sparsity"] < 1.0
    assert stats["sparsity"] == pytest.approx(zero_fraction)
    assert stats["active_codes_per_token"] == pytest.approx(64 * (1 - zero_fraction))
    assert 1.0 < stats["perplexity"] <= 64


def test_svq_diagnostics_follow_the_public_code_formula():
    torch.manual_seed(2)
    q = build_quantizer("svq", DIM, {"codebook_size": 300, "init": "kaiming"})
    z = latent()
    stats = q.diagnostics(z)
    with torch.no_grad():
        w = q.svq.regression_weights(z)
    normed = ((w - w.mean()) / w.std()).abs()
    for theta in (2, 3):
        used = (normed > theta).float().reshape(-1, 300)
        p = used.sum(0) / used.sum()
        expected = torch.exp(-torch.sum(p * torch.log(p + 1e-10))).item()
        assert stats[f"perplexity_theta{theta}"] == pytest.approx(expected, rel=1e-4)
    w = w.double()
    x = (w - w.mean()) / w.std(unbiased=False)
    assert stats["kurtosis_weights"] == pytest.approx(x.pow(4).mean().item() - 3, rel=1e-9)
    # Kaiming-uniform codebook: uniform distribution, Fisher kurtosis -1.2.
    assert stats["kurtosis_codebook"] == pytest.approx(-1.2, abs=0.1)


def test_streamed_weight_statistics_do_not_depend_on_chunking():
    w = torch.randn(500, 40) ** 3
    whole = regression_weight_stats(lambda: [w])
    chunked = regression_weight_stats(lambda: w.split(37))
    assert whole == pytest.approx(chunked, rel=1e-9)


def test_perplexity_and_kurtosis_helpers():
    assert perplexity_from_indices(torch.tensor([0, 1, 2, 3] * 5), 10) == pytest.approx(4.0, rel=1e-6)
    assert perplexity_from_indices(torch.tensor([7, 7, 7, -1]), 10) == pytest.approx(1.0, rel=1e-6)
    assert perplexity_from_counts(torch.zeros(5)) == 0.0
    columns = torch.stack([torch.tensor([0, 1] * 4), torch.tensor([3] * 8)], dim=1)
    assert mean_column_perplexity(columns, 4) == pytest.approx(1.5, rel=1e-6)
    two_point = torch.tensor([-1.0, 1.0] * 50)
    assert kurtosis(two_point) == pytest.approx(-2.0)
    assert kurtosis(two_point, fisher=False) == pytest.approx(1.0)
    assert kurtosis(torch.randn(200000, generator=torch.Generator().manual_seed(0))) == pytest.approx(0.0, abs=0.05)


def test_unknown_name_raises():
    with pytest.raises(ConfigError, match=r"^model\.quantizer: unknown quantizer 'vqvae'; expected one of grouped_residual_vq, (.*), svq_raw, vq$"):
        build_quantizer("vqvae", DIM, {})


@pytest.mark.parametrize("name,settings,words", [
    ("svq", {"codebook": 10}, ["svq", "codebook"]),
    ("vq", {"num_quantizers": 2}, ["vq", "num_quantizers"]),
    ("none", {"codebook_size": 3}, ["none", "codebook_size"]),
    ("lfq", {"codebook_size": 1000}, ["lfq", "codebook_size", "power of two", "1024"]),
    ("residual_lfq", {"codebook_size": 200}, ["residual_lfq", "codebook_size", "power of two"]),
    ("svq", {"init": "glorot"}, ["svq", "init", "glorot"]),
    ("svq", {"codebook_size": 0}, ["svq", "codebook_size"]),
    ("svq", {"freeze_codebook": "yes"}, ["svq", "freeze_codebook"]),
    ("grouped_residual_vq", {"groups": 3}, ["grouped_residual_vq", "groups", "16"]),
    ("residual_fsq", {"levels": [8, 1]}, ["residual_fsq", "levels"]),
    ("residual_vq", {"aux_reduction": "max"}, ["residual_vq", "aux_reduction"]),
    ("vq", {"decay": 1.5}, ["vq", "decay"]),
    ("svq_raw", {"iterations": 0}, ["svq_raw", "iterations"]),
])
def test_bad_settings_raise_config_error(name, settings, words):
    with pytest.raises(ConfigError) as info:
        build_quantizer(name, DIM, settings)
    for word in words:
        assert word in str(info.value)


def test_bad_dim_and_settings_type_raise():
    with pytest.raises(ConfigError, match="dim"):
        build_quantizer("svq", 0, {})
    with pytest.raises(ConfigError, match="mapping"):
        build_quantizer("svq", DIM, [("codebook_size", 3)])


def test_eval_outputs_carry_no_graphless_leaves():
    """A constant aux loss flagged requires_grad without a graph breaks autograd hooks."""
    import torch

    from pipeline.models.quantizers import QUANTIZERS, build_quantizer

    for name in QUANTIZERS:
        q = build_quantizer(name, 4, {"codebook_size": 256} if "codebook_size" in QUANTIZERS.get(name).Settings.model_fields else {})
        z = torch.randn(2, 4, 4, 4, requires_grad=True)
        zq, aux = q(z)
        (zq.sum() + aux).backward()
        q.eval()
        with torch.no_grad():
            zq, aux = q(torch.randn(2, 4, 4, 4))
        assert not aux.requires_grad or aux.grad_fn is not None, name


@pytest.mark.parametrize("name", ["vq", "residual_vq", "grouped_residual_vq", "multihead_vq", "residual_vq_stochastic"])
def test_vq_family_uses_the_straight_through_estimator(name):
    """As the public code's vector-quantize-pytorch 1.12.5: d(output)/d(input) is the identity.
    Residual variants sum their stages and each stage is straight-through, so theirs is
    num_quantizers x identity. Multihead is checked with one head of the latent's width: no
    projection around the codebook. The rotation trick (later versions) is refused by name."""
    torch.manual_seed(0)
    q = build_quantizer(name, DIM, {"codebook_size": 32} if name != "multihead_vq" else
                        {"codebook_size": 32, "heads": 1, "codebook_dim": DIM})
    q.train()
    z = latent(requires_grad=True)
    z_q, _ = q(z)
    g = torch.randn_like(z_q)
    (grad,) = torch.autograd.grad(z_q, z, g)
    stages = getattr(q.settings, "num_quantizers", 1)
    assert torch.allclose(grad, stages * g, atol=1e-5)
    refused = rf"^quantizers\.{name}\.rotation_trick: expected false \(.*1\.12\.5.*got True$"
    with pytest.raises(ConfigError, match=refused):
        build_quantizer(name, DIM, {"rotation_trick": True})


def test_comparators_refuse_another_library_version(monkeypatch):
    import importlib.metadata

    from pipeline.core.errors import ProjectError
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda dist: "1.32.0" if dist == "vector-quantize-pytorch" else real(dist))
    with pytest.raises(ProjectError, match=r"^vector-quantize-pytorch 1\.32\.0 is installed; .* need 1\.12\.5"):
        build_quantizer("vq", DIM, {})


def test_lfq_commitment_loss_is_on():
    q = build_quantizer("lfq", DIM, {"codebook_size": 64, "entropy_loss_weight": 0.0})
    q.train()
    _, aux = q(latent())
    assert aux > 0   # entropy off: what is left is the commitment term (later versions' default weight is 0)
