"""Every registered SimVP translator builds, keeps the latent shape, back-propagates and trains."""
import pytest
import torch

from pipeline.core.errors import ConfigError
from pipeline.models.translators import TRANSLATORS, build_translator
from pipeline.models.translators.base import MetaBlock
from pipeline.models.translators.transformers import swin_window_size

torch.set_num_threads(1)

NAMES = sorted(TRANSLATORS)
# Different widths so the first/last blocks really reduce and expand (4 frames x hid_S 8 = 32).
IN_CH, HIDDEN = 32, 48


def make(name, resolution, depth=3, **kw):
    torch.manual_seed(0)
    return build_translator(name, in_channels=IN_CH, hidden=HIDDEN, depth=depth,
                            input_resolution=resolution, **kw)


def test_registry_holds_every_simvp_model_type():
    assert set(TRANSLATORS) == {"incepu", "gsta", "tau", "convmixer", "convnext", "hornet", "moganet",
                                "vit", "swin", "uniformer", "poolformer", "van", "mlpmixer"}


@pytest.mark.parametrize("resolution", [(16, 32), (8, 8), (32, 40)], ids=lambda r: f"{r[0]}x{r[1]}")
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_two_adam_steps(name, resolution):
    model = make(name, resolution, drop_path=0.1)
    x = torch.randn(2, IN_CH, *resolution, requires_grad=True)
    y = model(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    target = torch.randn_like(x)
    for _ in range(2):
        opt.zero_grad()
        loss = (model(x.detach()) - target).abs().mean()
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert changed >= len(before) // 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in NAMES if n != "incepu"])
def test_metaformer_layout_and_drop_path_schedule(name):
    depth, drop_path = 4, 0.2
    model = make(name, (8, 8), depth=depth, drop_path=drop_path)
    expected = torch.linspace(1e-2, drop_path, depth).tolist()
    assert model.drop_path_rates == pytest.approx(expected)
    blocks = list(model.blocks)
    assert len(blocks) == depth and all(isinstance(b, MetaBlock) for b in blocks)
    # 1x1 reduction T*hid_S -> hid_T after the first block, expansion back after the last only.
    first, last = blocks[0].reduction, blocks[-1].reduction
    assert (first.in_channels, first.out_channels, first.kernel_size) == (IN_CH, HIDDEN, (1, 1))
    assert (last.in_channels, last.out_channels) == (HIDDEN, IN_CH)
    assert all(isinstance(b.reduction, torch.nn.Identity) for b in blocks[1:-1])
    for block, rate in zip(blocks, expected):
        assert block.drop_path_rate == pytest.approx(rate)
        probs = [m.drop_prob for m in block.modules() if type(m).__name__ == "DropPath"]  # ours or timm's
        # OpenSTL's ConvMixer block takes no drop path; every other block uses its own rate.
        assert (name == "convmixer") == (not probs)
        assert probs == pytest.approx([rate] * len(probs))


def test_drop_path_starts_at_one_percent_even_when_off():
    model = make("gsta", (8, 8), depth=3, drop_path=0.0)
    assert model.drop_path_rates == pytest.approx([0.01, 0.005, 0.0])


def test_eval_mode_is_deterministic_and_drop_path_is_train_only():
    model = make("gsta", (8, 8), drop_path=0.5).eval()
    x = torch.randn(2, IN_CH, 8, 8)
    torch.testing.assert_close(model(x), model(x))


def test_lookup_is_case_insensitive_and_accepts_openstl_aliases():
    assert type(make("gSTA", (8, 8))) is type(make("gsta", (8, 8)))
    moga = make("Moga", (8, 8))
    assert moga.name == "moganet"


def test_unknown_name_lists_known_names():
    with pytest.raises(ConfigError, match="unknown translator 'resnet'") as err:
        make("resnet", (8, 8))
    for name in NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("kwargs, key", [
    (dict(depth=1), "depth"),
    (dict(hidden=0), "hidden"),
    (dict(drop_path=1.5), "drop_path"),
    (dict(drop=-0.1), "drop"),
    (dict(mlp_ratio=1.0), "mlp_ratio"),
    (dict(input_resolution=(8,)), "input_resolution"),
])
def test_bad_settings_raise_config_error_naming_the_key(kwargs, key):
    args = dict(in_channels=IN_CH, hidden=HIDDEN, depth=2, input_resolution=(8, 8)) | kwargs
    with pytest.raises(ConfigError, match=key):
        build_translator("gsta", **args)


@pytest.mark.parametrize("name", ["vit", "swin", "hornet", "moganet", "uniformer"])
def test_widths_the_blocks_cannot_split_are_rejected(name):
    with pytest.raises(ConfigError, match="multiple of"):
        build_translator(name, in_channels=IN_CH, hidden=36, depth=3, input_resolution=(8, 8))


def test_wrong_input_shape_names_the_settings():
    model = make("mlpmixer", (8, 8))
    with pytest.raises(ConfigError, match="input_resolution"):
        model(torch.randn(1, IN_CH, 8, 16))
    with pytest.raises(ConfigError, match="in_channels"):
        make("incepu", (8, 8))(torch.randn(1, IN_CH + 1, 8, 8))


@pytest.mark.parametrize("resolution, window", [
    ((8, 8), 4), ((16, 32), 4), ((32, 32), 4), ((32, 40), 4), ((64, 64), 4),  # paper latents
    ((7, 14), 7), ((128, 128), 8), ((12, 18), 3), ((5, 7), 4),
])
def test_swin_window_follows_openstl_and_tiles_the_latent(resolution, window):
    assert swin_window_size(resolution) == window


def test_swin_shifts_odd_blocks_and_runs_on_untileable_latent():
    model = make("swin", (5, 7), depth=3)
    shifts = [b.block.block.shift_size for b in model.blocks]
    assert shifts[0] == (0, 0) and shifts[1] == (2, 2) and shifts[2] == (0, 0)
    x = torch.randn(1, IN_CH, 5, 7)
    assert model(x).shape == x.shape


def test_shifted_swin_windows_attend_without_mask_as_openstl():
    model = make("swin", (8, 8), depth=2)
    assert all(b.block.block.attn_mask is None for b in model.blocks)
