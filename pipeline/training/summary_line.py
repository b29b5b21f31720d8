"""The one line a train stage prints when it ends (``train_<exp> done in 1m02s: 3 seeds, ...``),
and the duration format the progress lines share. Apart from ``pipeline.repro.progress``, which runs
DVC, so that orchestration code stays out of the train stage's code digest."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def one_line_summary(result: dict[str, Any], elapsed_s: float) -> str:
    """``train_<exp> done in 1m02s: 1 seed, 2 epochs, test_mse 1.23 ± 0.01, test_mae ..., beats
    persistence (+50.8%), input mean (+20.1%), climatology (+60.2%)`` (skill in MSE, :func:`verdicts`)."""
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
    if result.get("references"):  # the simple forecasts it must beat, on the same windows
        parts.append(verdicts(result["references"]))
    return f"train_{result.get('experiment', '?')} done in {fmt_duration(elapsed_s)}: {', '.join(parts)}"


def verdicts(comparison: Mapping[str, Mapping[str, Any]]) -> str:
    """``beats persistence (+25.6%), input mean (+4.3%); LOSES TO climatology (-3.0%); per lead:
    loses to persistence at lead 1`` (skill in MSE on the same test windows)."""
    def skill(name):
        return f"{_label(name)} ({comparison[name]['skill_mse']:+.1%})"

    judged = [n for n, c in comparison.items() if c.get("skill_mse") is not None]
    won = [n for n in judged if comparison[n]["skill_mse"] > 0]
    lost = [n for n in judged if n not in won]
    parts = []
    if won:
        parts.append("beats " + ", ".join(skill(n) for n in won))
    if lost:
        parts.append("LOSES TO " + ", ".join(skill(n) for n in lost))
    per_lead = [f"{_label(n)} at lead{'s' if len(c['leads_lost']) > 1 else ''} {_spans(c['leads_lost'])}"
                for n, c in comparison.items() if n in won and c.get("leads_lost")]
    if per_lead:
        parts.append(f"per lead (of {max(c.get('leads', 0) for c in comparison.values())}) loses to " + ", ".join(per_lead))
    return "; ".join(parts)


def _label(name: str) -> str:
    return name.replace("_", " ")


def _spans(leads: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    out, start = [], None
    for i, k in enumerate(leads):
        if start is None:
            start = k
        if i + 1 == len(leads) or leads[i + 1] != k + 1:
            out.append(f"{start}-{k}" if k > start else f"{k}")
            start = None
    return ", ".join(out)


def fmt_duration(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
