"""The one line a train stage prints when it ends (``train_<exp> done in 1m02s: 3 seeds, ...``),
and the duration format the progress lines share. Apart from ``pipeline.repro.progress``, which runs
DVC, so that orchestration code stays out of the train stage's code digest."""
from __future__ import annotations

from typing import Any


def one_line_summary(result: dict[str, Any], elapsed_s: float) -> str:
    """``train_<exp> done in 1m02s: 1 seed, 2 epochs, test_mse 1.23 ± 0.01, test_mae ..., beats
    persistence (mse 2.5, skill +50.8%)``."""
    metrics, std = result.get("metrics") or {}, result.get("metrics_std") or {}
    seeds = result.get("seeds") or []
    parts = [f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"]
    epochs = metrics.get("epochs_run")
    if epochs is not None:
        parts.append(f"{epochs:g} epochs")
    for name in sorted(k for k in metrics if k.startswith("test_")):
        if metrics[name] is not None:
            sd = std.get(name)
            parts.append(f"{name} {metrics[name]:.4g}" + (f" ± {sd:.2g}" if sd and len(seeds) > 1 else ""))
    if metrics.get("best_val_loss") is not None:
        parts.append(f"best val_loss {metrics['best_val_loss']:.4g}")
    stage = result.get("stage_metrics") or {}
    if stage.get("skill_mse") is not None:  # the simplest forecast it must beat, on the same windows
        verdict = "beats" if stage["skill_mse"] > 0 else "LOSES TO"
        parts.append(f"{verdict} persistence (mse {stage['persistence_mse']:.4g}, skill {stage['skill_mse']:+.1%})")
    return f"train_{result.get('experiment', '?')} done in {fmt_duration(elapsed_s)}: {', '.join(parts)}"


def fmt_duration(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
