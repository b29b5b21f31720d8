import pytest
import torch

from pipeline.training.schedule import CosineWarmup


@pytest.mark.parametrize("epochs,warmup", [(50, 5), (2, 1), (6, 0), (100, 0)])
def test_matches_timm_cosine_scheduler(epochs, warmup):
    from timm.scheduler import CosineLRScheduler

    import pipeline  # noqa: F401  (torchvision shim before timm)

    p = [torch.nn.Parameter(torch.zeros(1))]
    ours_opt, timm_opt = torch.optim.Adam(p, lr=5e-3), torch.optim.Adam(p, lr=5e-3)
    ours = CosineWarmup(ours_opt, epochs, min_lr=1e-6, warmup_epochs=warmup, warmup_lr=1e-5)
    ref = CosineLRScheduler(timm_opt, t_initial=epochs, lr_min=1e-6, warmup_lr_init=1e-5,
                            warmup_t=warmup, t_in_epochs=True)
    assert ours_opt.param_groups[0]["lr"] == pytest.approx(timm_opt.param_groups[0]["lr"])
    for epoch in range(1, epochs + 3):
        ours.step(epoch)
        ref.step(epoch)
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(timm_opt.param_groups[0]["lr"], rel=1e-12)
