"""Forecasts from a trained run on new inputs, written as a labelled netCDF or Zarr.

    python -m pipeline.forecast --run <MLflow run id | experiment name> \\
        --input <netCDF/Zarr file or glob> --output <forecast.nc | forecast.zarr> [--init DATE ...]

The run's best checkpoint carries the model, its configuration and the data card (channels,
normalisation, window offsets, how the files were read: variables, levels, lat/lon box, grid);
checkpoints from before the card read the normalisation from the dataset's store instead. An
experiment name takes ``runs/<name>/artifacts/best-seed<k>.pt`` (the first seed unless
``--seed``), or the newest MLflow run of that experiment when the folder is absent; a run id
downloads the checkpoint from MLflow.

Inputs: files in the layout the run was trained on (the same variables, any time span; the
lat/lon box is applied again), or a store written by the preprocess stage (``--split``, default
test), which is also how the video datasets' arrays are forecast. Without ``--init`` every
position with ``T_in`` input frames is forecast; ``--init`` picks the last frame at or before
each given date (in the file's calendar) as the initialisation. Values are in the input's units.

Output: one variable per channel ``(init_time, lead_time, lat, lon)`` (or ``y, x``), with the
channel's units, ``lead_time`` as durations (or calendar months for monthly/annual data),
``valid_time`` where it is a fixed duration, and attributes naming the run, experiment, seed,
checkpoint and input.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError, DataError, exit_status
from pipeline.core.outputs import atomic
from pipeline.core.paths import RUNS
from pipeline.data import calendar as cal


# ------------------------------------------------------------------------------------- the run
@dataclasses.dataclass
class Trained:
    model: Any
    card: dict[str, Any]
    config: dict[str, Any]
    run_id: str | None
    experiment: str
    seed: int | None
    checkpoint: str


def _download(run_id: str, name: str, dst: Path) -> Path:
    import mlflow

    from pipeline.tracking import mlflow_runs

    mlflow.set_tracking_uri(mlflow_runs.tracking_uri())
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(dst)))
    except Exception as exc:  # mlflow raises several types for a missing artifact
        raise DataError(f"--run {run_id}: the run has no artifact {name} ({type(exc).__name__})") from None


def _find_run(run: str, seed: int | None, runs_dir: Path, scratch: Path) -> tuple[Path, str | None, str, int | None]:
    """(checkpoint, run id, experiment, seed) for a run id or an experiment name."""
    from pipeline.tracking import mlflow_runs

    if re.fullmatch(r"[0-9a-f]{32}", run):
        import mlflow

        from pipeline.tracking.sync import located

        client = mlflow.tracking.MlflowClient(mlflow_runs.tracking_uri())
        run = located(run)  # an offline run's id finds its synced copy
        try:
            info = client.get_run(run)
        except Exception:
            raise DataError(f"--run {run}: no such MLflow run in {mlflow_runs.tracking_uri()}") from None
        tags = info.data.tags
        exp = tags.get(f"{mlflow_runs.TAG_PREFIX}experiment", run)
        s = int(tags.get(f"{mlflow_runs.TAG_PREFIX}seed", seed if seed is not None else 0))
        return _download(run, f"best-seed{s}.pt", scratch), run, exp, s
    folder = runs_dir / run
    result = folder / "result.json"
    if result.is_file():
        rec = json.loads(result.read_text())
        seeds, ids = list(rec.get("seeds") or [0]), list(rec.get("run_ids") or [])
        s = seed if seed is not None else seeds[0]
        if s not in seeds:
            raise ConfigError(f"--seed {s}: experiment {run} was trained with seeds {seeds}")
        ckpt = folder / "artifacts" / f"best-seed{s}.pt"
        run_id = ids[seeds.index(s)] if len(ids) == len(seeds) else None
        if ckpt.is_file():
            return ckpt, run_id, run, s
        if run_id:
            from pipeline.tracking.sync import located

            run_id = located(run_id)  # a run logged offline: its copy on the server
            return _download(run_id, f"best-seed{s}.pt", scratch), run_id, run, s
    import mlflow

    mlflow.set_tracking_uri(mlflow_runs.tracking_uri())
    found = mlflow.search_runs(search_all_experiments=True, output_format="list", max_results=1,
                               filter_string=f"tags.`{mlflow_runs.TAG_PREFIX}experiment` = '{run}'",
                               order_by=["attributes.start_time DESC"])
    if not found:
        raise DataError(f"--run {run}: neither an MLflow run id nor a trained experiment (no {result} "
                        f"and no MLflow run tagged with it); train it first: dvc repro train_{run}")
    r = found[0]
    s = int(r.data.tags.get(f"{mlflow_runs.TAG_PREFIX}seed", 0))
    return _download(r.info.run_id, f"best-seed{s}.pt", scratch), r.info.run_id, run, s


def load_run(run: str, seed: int | None = None, runs_dir: Path | str = RUNS, device: str = "cpu",
             params: str | Path = "params.yaml") -> Trained:
    import torch

    from pipeline.models.settings import ModelSettings
    from pipeline.models.simvp import SimVP

    with tempfile.TemporaryDirectory(prefix="svq-forecast-") as scratch:
        ckpt, run_id, exp, s = _find_run(run, seed, Path(runs_dir), Path(scratch))
        try:  # weights_only: a checkpoint someone sent holds tensors and plain values, never code
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise DataError(f"{ckpt}: holds objects other than tensors and plain values; refused "
                            f"(loaded with torch.load(weights_only=True)): {str(exc).splitlines()[0][:200]}") from None
    cfg = state["config"]
    card = state.get("data")
    if card is None:  # checkpoints from before the data card: the dataset's store holds it
        from pipeline.config.load import load_params
        from pipeline.core.paths import store_path
        from pipeline.data.store import data_card

        card = data_card(store_path(load_params(params), cfg["dataset"]), cfg["dataset"])
    names = ModelSettings.model_fields
    model_cfg = ModelSettings(**({"pad": "reflect", "target": "frames"} | {k: v for k, v in cfg["model"].items() if k in names}))
    model = SimVP(tuple(state["in_shape"]), model_cfg, cfg.get("quantizer"))
    model.load_state_dict(state["state_dict"])
    model.to(device).eval()
    return Trained(model, card, cfg, run_id, exp, s, str(ckpt))


# ----------------------------------------------------------------------------------- the input
@dataclasses.dataclass
class Frames:
    frames: Any  # (N, C, H, W), raw units (numpy or dask)
    time: np.ndarray | None
    grid: dict[str, Any]
    source: str
    inits: np.ndarray | None = None  # a store's own windows: the index of each one's last input frame


def _is_window_store(path: str) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "zarr.json").is_file() and '"T_in"' in (p / "zarr.json").read_text()


def read_input(path: str, card: dict[str, Any], split: str = "test") -> Frames:
    """The input's frames in the run's channel order, checked against the run's card."""
    prov = card["provenance"]
    if _is_window_store(path):
        return _read_store(path, card, split)
    reader = prov.get("reader")
    if reader not in ("custom", "weatherbench"):
        raise DataError(f"--input {path}: the {card['dataset']} run reads {reader or 'its own'} files; pass "
                        f"a store written by the preprocess stage (data/processed/{card['dataset']}.zarr)")
    from pipeline.data.sources import custom

    if reader == "weatherbench":
        from pipeline.data.sources.weatherbench import VARIABLES

        variables = tuple(dict.fromkeys(VARIABLES[v][0] for v in prov["variables"]))
        levels, level_dim, time, box = prov.get("levels"), "level", "time", {}
    else:
        variables, levels = tuple(prov["variables"]), prov.get("levels")
        level_dim, time, box = prov.get("level_dim", "level"), prov.get("time", "time"), prov.get("box") or {}
    # only the reading keys matter here: the split dates and window lengths are the run's
    settings = custom.CustomSettings.model_construct(
        name=card["dataset"], path=path, variables=list(variables), time=time, T_in=card["T_in"],
        T_out=card["T_out"], levels=list(levels) if levels else None, level_dim=level_dim,
        time_chunk=1024, box=custom.Box(**box) if box else None)
    ds, _ = custom.open_files(path, settings)
    arrays, channels, _, grid = custom.channel_arrays(ds, settings, path)
    if channels != card["channels"]:
        raise DataError(f"--input {path}: channels {channels}, but the run was trained on {card['channels']}")
    import dask.array as da

    frames = da.concatenate([a.data for a in arrays], axis=1).astype(np.float32)
    return Frames(frames, ds[time].values, grid, path)


def _read_store(path: str, card: dict[str, Any], split: str) -> Frames:
    import xarray as xr
    import zarr

    from pipeline.data.store import verify_store

    verify_store(path)  # a lost chunk would be forecast from NaN frames
    channels = list(zarr.open_group(path, mode="r").attrs.get("channels", []))
    if channels != card["channels"]:
        raise DataError(f"--input {path}: store channels {channels}, but the run was trained on {card['channels']}")
    try:
        ds = xr.open_zarr(path, group=split, consolidated=False)
    except Exception as exc:  # zarr raises several types for a missing group
        raise DataError(f"--input {path}: no split {split!r} in this store (--split) ({exc})") from None
    time = ds["time"].values if "time" in ds.variables else None
    offsets = card.get("window_offsets") or [k * card["step"] for k in range(card["T_in"] + card["T_out"])]
    inits = np.asarray(ds["starts"].values, np.int64) + int(offsets[card["T_in"] - 1])
    return Frames(ds["frames"].data, time, card["provenance"].get("grid") or {}, f"{path} ({split})", inits)


# ------------------------------------------------------------------------------- the forecast
def _frame_stride(card: dict[str, Any], times: np.ndarray | None, source: str) -> int:
    """How many of the input's time steps lie between two of the model's frames."""
    prov = card["provenance"]
    if "step_in_time_steps" in prov:
        return int(prov["step_in_time_steps"])
    if "frame_interval_hours" in prov and times is not None and len(times) > 1:
        native = cal.regular_step(times)[0]
        if native is None or native.months:
            raise DataError(f"{source}: time step {native.describe() if native else '?'} cannot make "
                            f"{prov['frame_interval_hours']} h frames")
        hours = cal.as_timedelta(native.duration).total_seconds() / 3600
        factor = prov["frame_interval_hours"] / hours
        if factor < 1 or not float(factor).is_integer():
            raise DataError(f"{source}: time step of {hours:g} h does not divide the run's "
                            f"{prov['frame_interval_hours']} h frames")
        return int(factor)
    return 1


def _frame_step(times: np.ndarray, i: int, rel_in: np.ndarray) -> cal.Step | None:
    """The time between two of the model's consecutive frames, read from window ``i``."""
    if len(rel_in) >= 2:
        a, b, k = times[i + rel_in[0]], times[i + rel_in[1]], int(rel_in[1] - rel_in[0])
    elif i + 1 < len(times):
        a, b, k = times[i], times[i + 1], 1
    else:
        return None
    step = cal.regular_step(np.asarray([a, b]))[0]
    if step.months:
        return cal.Step(months=step.months // k) if step.months % k == 0 else None
    return cal.Step(duration=step.duration // k)


def forecast(trained: Trained, inputs: Frames, inits: list[str] | None = None, batch_size: int = 16,
             device: str = "cpu"):
    """The forecasts as an xarray Dataset (see the module docstring)."""
    import torch
    import xarray as xr

    card, model = trained.card, trained.model
    T_in, T_out = card["T_in"], card["T_out"]
    offsets = np.asarray(card.get("window_offsets") or [k * card["step"] for k in range(T_in + T_out)])
    stride = _frame_stride(card, inputs.time, inputs.source)
    rel_in = (offsets[:T_in] - offsets[T_in - 1]) * stride  # input frames relative to the init frame
    rel_out = (offsets[T_in:] - offsets[T_in - 1]) * stride
    n, C, H, W = inputs.frames.shape
    want = tuple(model.in_shape[2:])
    if (H, W) != want:
        raise DataError(f"{inputs.source}: grid is {H} x {W}, but the run was trained on {want[0]} x {want[1]} "
                        f"(after its lat/lon box); regrid the input or train on this grid")
    first = int(-rel_in[0])
    if inits:
        if inputs.time is None:
            raise DataError(f"{inputs.source}: --init needs a time coordinate; this input has none")
        init_idx = []
        for text in inits:
            d = cal.parse_date(text, "--init")
            lo = cal.bounds(d, d, inputs.time, "--init")[0]
            at = np.flatnonzero(np.asarray(inputs.time <= lo, dtype=bool))
            if at.size == 0 or at[-1] < first:
                raise DataError(f"{inputs.source}: --init {text}: fewer than the {first + 1} time steps "
                                f"({T_in} frames) the model needs end at or before it")
            init_idx.append(int(at[-1]))
        init_idx = np.asarray(init_idx)
    elif inputs.inits is not None:  # a preprocessed store: its own windows, which never span a gap
        init_idx = inputs.inits
    else:
        if n <= first:
            raise DataError(f"{inputs.source}: {n} time steps; the model needs {first + 1} ({T_in} frames) "
                            f"for one forecast")
        init_idx = np.arange(first, n)
    step = None
    if inputs.time is not None and len(inputs.time) > 1:
        # every window's inputs must be evenly spaced: windows across a gap are dropped (all
        # windows) or refused (--init)
        ok = np.array([T_in < 2 or cal.regular_step(inputs.time[i + rel_in])[1] is None for i in init_idx])
        if inits and not ok.all():
            i = init_idx[np.flatnonzero(~ok)[0]]
            raise DataError(f"{inputs.source}: the {T_in} frames up to {cal.stamp(inputs.time[i])} span a gap "
                            f"or an irregular step; pick an --init after it")
        init_idx = init_idx[ok]
        if init_idx.size == 0:
            raise DataError(f"{inputs.source}: no {T_in} evenly spaced frames in a row; fill the gaps")
        step = _frame_step(inputs.time, init_idx[0], rel_in)

    offset = np.asarray(card["offset"], np.float32)[:, None, None]
    scale = np.asarray(card["scale"], np.float32)[:, None, None]
    out = np.empty((len(init_idx), T_out, C, H, W), np.float32)
    with torch.no_grad():
        for lo in range(0, len(init_idx), batch_size):
            idx = init_idx[lo:lo + batch_size]
            raw = np.asarray(inputs.frames[(idx[:, None] + rel_in[None]).ravel()], np.float32)
            raw = raw.reshape(len(idx), T_in, C, H, W)
            if np.isnan(raw).any():
                b, t = np.argwhere(np.isnan(raw).any(axis=(2, 3, 4)))[0]
                when = cal.stamp(inputs.time[idx[b] + rel_in[t]]) if inputs.time is not None else idx[b] + rel_in[t]
                raise DataError(f"{inputs.source}: NaN in the input frame at {when}; fill it or pick other --init")
            x = torch.from_numpy((raw - offset) / scale).to(device)
            pred, _ = trained.model.forecast(x, T_out)
            out[lo:lo + len(idx)] = pred.float().cpu().numpy() * scale + offset
    return _dataset(trained, inputs, init_idx, rel_out, step, out)


def _dataset(trained, inputs, init_idx, rel_out, step, out):
    import xarray as xr

    card, prov = trained.card, trained.card["provenance"]
    grid = inputs.grid or {}
    if "lat" in grid and "lon" in grid:
        ydim, xdim, coords = "lat", "lon", {"lat": grid["lat"], "lon": grid["lon"]}
    else:
        dims = list(grid.get("dims") or ["y", "x"])
        ydim, xdim = dims
        coords = {d: grid.get(d, np.arange(n)) for d, n in zip(dims, out.shape[3:])}
    init = inputs.time[init_idx] if inputs.time is not None else init_idx
    coords["init_time"] = ("init_time", init)
    if step is not None and step.months:
        coords["lead_time"] = ("lead_time", rel_out * step.months, {"units": "months"})
    elif step is not None:
        lead = np.asarray([step.duration * int(k) for k in rel_out])
        coords["lead_time"] = ("lead_time", lead)
        coords["valid_time"] = (("init_time", "lead_time"), np.asarray(init)[:, None] + lead[None])
    else:
        coords["lead_time"] = ("lead_time", rel_out, {"units": "frames"})
    units = prov.get("units") or [""] * len(card["channels"])
    data = {ch: (("init_time", "lead_time", ydim, xdim), out[:, :, c], {"units": units[c]} if units[c] else {})
            for c, ch in enumerate(card["channels"])}
    cfg = trained.config
    attrs = {"title": f"{trained.experiment} forecasts", "run_id": trained.run_id or "",
             "experiment": trained.experiment, "dataset": card["dataset"], "seed": trained.seed if trained.seed is not None else "",
             "checkpoint": trained.checkpoint, "input": inputs.source,
             "model": f"SimVP {cfg['model']['translator']} + {cfg['model']['quantizer']}",
             "T_in": card["T_in"], "T_out": card["T_out"],
             "grid_padding": trained.model.grid_pad.describe() or "none",
             "created_by": "python -m pipeline.forecast"}
    if step is not None:
        attrs["time_step"] = step.describe()
    return xr.Dataset(data, coords=coords, attrs=attrs)


def write(ds, output: str | Path) -> Path:
    """netCDF (``.nc``) or Zarr (``.zarr``), written beside the target and renamed in when complete."""
    output = Path(output)
    with atomic(output) as tmp:
        if output.suffix == ".zarr":
            ds.to_zarr(tmp, mode="w", consolidated=False)
        else:
            ds.to_netcdf(tmp)
    return output


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.forecast", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="MLflow run id or experiment name")
    ap.add_argument("--input", required=True, help="netCDF file or glob, Zarr store, or a preprocessed store")
    ap.add_argument("--output", required=True, help="forecast.nc or forecast.zarr")
    ap.add_argument("--init", nargs="+", help="initialisation dates, in the file's calendar (default: all)")
    ap.add_argument("--seed", type=int, help="which seed's model (default: the first)")
    ap.add_argument("--split", default="test", help="split of a preprocessed store (default test)")
    ap.add_argument("--runs-dir", default=str(RUNS))
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)
    if Path(args.output).suffix not in (".nc", ".zarr"):
        ap.error(f"--output {args.output}: expected a .nc or .zarr path")

    def run() -> int:
        trained = load_run(args.run, args.seed, args.runs_dir, args.device, args.params)
        ds = forecast(trained, read_input(args.input, trained.card, args.split), args.init,
                      args.batch_size, args.device)
        path = write(ds, args.output)
        print(f"wrote {path}: {ds.sizes['init_time']} initialisations x {ds.sizes['lead_time']} leads of "
              f"{', '.join(trained.card['channels'])} from {trained.experiment} (run {trained.run_id})")
        return 0

    return exit_status("forecast", run)


if __name__ == "__main__":
    sys.exit(main())
