#!/usr/bin/env python
"""Data path throughput: preprocessing into the Zarr store, and windows read by a DataLoader.

Part 1: the WeatherBench-S t2m generated twin, with more hours per year than the pipeline's
sample profile, is written to a temporary folder; ``load`` + ``write_store`` (the preprocess
stage) is then timed in fresh spawned processes, with their peak RSS.

Part 2: windows per second of a ``torch.utils.data.DataLoader`` over ``WindowDataset`` (train
split, batch 16, shuffled like training) with 0, 1 and 2 workers, with the in-memory cache
(default) and with lazy reads from the sharded Zarr chunks (``cache_bytes=0``); configurations
interleaved and repeated.

Part 3: every dataset's window shape at the paper's size (frames, channels, dtype as stored),
in a small synthetic store: windows/s of the DataLoader with 0, 1 and 2 workers in the mode the
paper-size train split gets (cached in memory when it fits CACHE_BYTES, else lazy from the
sharded store: Human3.6M's 14 GB split is never loaded whole), batch = the per-GPU batch, pinned
memory and prefetch on CUDA (``loader_options``); beside it the model's own training throughput
(windows/s, the project's training step at the paper's size, ``trainer_speed.py``) on the same
device, and their ratio: above 1 the trainer waits for nobody.

Run from the repository root: ``.venv/bin/python bench/data_loading.py [--quick] [--device cuda]
[--shapes-only] [--trainer-datasets t2m,...] [--trainer-steps N]``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import gc
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ on the path, not the repo root
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import zarr  # noqa: E402
from machine import peak_rss, pick_device, print_header, reset_peak_rss  # noqa: E402
from torch.utils.data import DataLoader, RandomSampler  # noqa: E402
from trainer_speed import measure as trainer_measure  # noqa: E402
from trainer_speed import paper_config

import pipeline  # noqa: E402,F401  (installs the torchvision shim first)
from pipeline.config.load import load_params
from pipeline.data.dataset_params import dataset_settings  # noqa: E402
from pipeline.data.prepared import Prepared, Split, window_starts  # noqa: E402
from pipeline.data.sources import weatherbench  # noqa: E402
from pipeline.data.store import write_store  # noqa: E402
from pipeline.data.windows import CACHE_BYTES, WindowDataset, loader_options  # noqa: E402

DATASET = "t2m"
BATCH = 16
WORKERS = (0, 1, 2)


# ------------------------------------------------------------------------------------ header


def run_in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def mb(n: float) -> float:
    return n / 1e6


# ----------------------------------------------------------------------- part 1: preprocess
def preprocess_child(raw: str, settings: dict, out: str) -> dict:
    """``load`` + ``write_store`` of the twin in this fresh process: time and peak RSS."""
    gc.collect()
    rss0, how = reset_peak_rss()
    t0 = time.perf_counter()
    prepared = weatherbench.load(raw, settings)
    write_store(prepared, out)
    elapsed = time.perf_counter() - t0
    frames = {name: int(split.frames.shape[0]) for name, split in prepared.splits.items()}
    frame_bytes = sum(int(split.frames.nbytes) for split in prepared.splits.values())
    return {"time": elapsed, "peak": peak_rss(how) - rss0, "how": how, "frames": frames,
            "frame_bytes": frame_bytes,
            "windows": {name: int(len(split.starts)) for name, split in prepared.splits.items()}}


def part1(args, work: Path, settings: dict) -> Path:
    raw = work / "raw"
    years = settings["years"]
    n_years = sum(b - a + 1 for a, b in years.values())
    print(f"## 1. Preprocessing: WeatherBench-S {DATASET} twin, {args.hours} hours per year x {n_years} years "
          f"({', '.join(f'{s} {a}-{b}' for s, (a, b) in years.items())})")
    t0 = time.perf_counter()
    weatherbench.make_sample(raw, settings, {"hours_per_year": args.hours}, 0)
    make_s = time.perf_counter() - t0
    raw_bytes, raw_files = folder_size(raw)
    print(f"twin written by make_sample in {make_s:.2f} s (not part of the timing below): "
          f"{raw_files} netCDF files, {mb(raw_bytes):.1f} MB on disk (zlib, 4 significant digits)")
    repeats = 2 if args.quick else 3
    print(f"load + write_store timed in {repeats} fresh spawned processes (dask local threads); "
          f"peak = peak RSS (VmHWM, reset after imports) minus RSS before the step.")
    runs = []
    store = work / f"{DATASET}.zarr"
    for i in range(repeats):
        out = work / f"{DATASET}-{i}.zarr"
        r = run_in_fresh_process(preprocess_child, str(raw), settings, str(out))
        runs.append(r)
        note = "" if r["how"] == "reset" else " (lower bound: peak RSS could not be reset)"
        print(f"  run {i + 1}: {r['time']:.2f} s, peak RSS +{mb(r['peak']):.0f} MB{note}", flush=True)
        if i < repeats - 1:
            shutil.rmtree(out)
        else:
            out.rename(store)
    r = runs[-1]
    t = statistics.median(x["time"] for x in runs)
    n_frames = sum(r["frames"].values())
    store_bytes, store_files = folder_size(store)
    print()
    print("frames (1 channel x 32 x 64 float32): " +
          ", ".join(f"{s} {n}" for s, n in r["frames"].items()) + f" = {n_frames}; windows: " +
          ", ".join(f"{s} {n}" for s, n in r["windows"].items()))
    print(f"raw netCDF      : {mb(raw_bytes):8.1f} MB in {raw_files} files")
    print(f"frames in memory: {mb(r['frame_bytes']):8.1f} MB (float32)")
    print(f"Zarr store      : {mb(store_bytes):8.1f} MB in {store_files} files")
    print(f"median time {t:.2f} s: {n_frames / t:,.0f} frames/s, {mb(r['frame_bytes']) / t:.1f} MB/s of "
          f"float32 frames, {mb(raw_bytes) / t:.1f} MB/s of raw netCDF read; "
          f"peak RSS +{mb(max(x['peak'] for x in runs)):.0f} MB (max of runs)")
    print()
    return store


# -------------------------------------------------------------------------- part 2: loader
def one_pass(loader, device: torch.device) -> tuple[float, int]:
    n = 0
    t0 = time.perf_counter()
    for x, y in loader:
        if device.type == "cuda":
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        n += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, n


def measure_loader(store: Path, cache: bool, workers: int, n_windows: int, seed: int,
                   device: torch.device, batch: int = BATCH) -> tuple[float, float]:
    """(first pass, second pass) windows/s. The first includes worker start-up and, with the
    cache, each process reading the split into memory; the second reuses persistent workers,
    as every later epoch of training does."""
    ds = WindowDataset(store, "train") if cache else WindowDataset(store, "train", cache_bytes=0)
    sampler = RandomSampler(ds, num_samples=min(n_windows, len(ds)),
                            generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, **loader_options(workers, device))
    rates = []
    for _ in range(2):
        dt, n = one_pass(loader, device)
        rates.append(n / dt)
    del loader  # shuts persistent workers down before the next configuration
    return rates[0], rates[1]


def part2(args, store: Path, device: torch.device) -> None:
    # lazy reads are ~100x slower: a sample of the split is enough; cached passes take the
    # whole split so that they last long enough to time
    lazy_windows = 256 if args.quick else 1024
    repeats = 2 if args.quick else 3
    ds = WindowDataset(store, "train")
    n_train = len(ds)
    split_bytes = zarr.open_group(store, mode="r")["train"]["frames"].nbytes
    print(f"## 2. DataLoader over WindowDataset (train split, {n_train} windows of "
          f"{ds.T_in}+{ds.T_out} frames), batch {BATCH}, shuffled; a pass reads all {n_train} windows "
          f"(cache) or {min(lazy_windows, n_train)} randomly sampled ones (lazy)")
    print(f"cache = the default: a split of at most {CACHE_BYTES / 2**20:.0f} MiB (this one: "
          f"{split_bytes / 2**20:.1f} MiB) is read into memory once per process; lazy = cache_bytes=0, "
          f"every window read from the sharded Zarr chunks.")
    print(f"Per configuration: a fresh loader, pass 1 (worker start-up, cache fill) then pass 2 "
          f"(persistent workers); configurations interleaved, {repeats} rounds, medians shown.")
    configs = [(cache, w) for cache in (True, False) for w in WORKERS]
    results = {c: ([], []) for c in configs}
    for rnd in range(repeats):
        for cache, w in configs:
            n_windows = n_train if cache else lazy_windows
            first, second = measure_loader(store, cache, w, n_windows, seed=rnd, device=device)
            results[(cache, w)][0].append(first)
            results[(cache, w)][1].append(second)
    print()
    print(f"{'mode':<6} {'workers':>7} {'pass 1 win/s':>13} {'pass 2 win/s':>13} {'pass 2 min..max':>17} "
          f"{'pass 2 vs workers=0':>20}")
    for cache, w in configs:
        first, second = results[(cache, w)]
        base = statistics.median(results[(cache, 0)][1])
        p2 = statistics.median(second)
        print(f"{'cache' if cache else 'lazy':<6} {w:>7} {statistics.median(first):>13,.0f} {p2:>13,.0f} "
              f"{f'{min(second):,.0f}..{max(second):,.0f}':>17} {p2 / base:>19.2f}x")
    for w in WORKERS:
        ratio = statistics.median(results[(True, w)][1]) / statistics.median(results[(False, w)][1])
        print(f"cache / lazy at workers={w}: {ratio:.1f}x (pass 2)")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


# ----------------------------------------------------------------- part 3: every dataset shape
# The paper's train splits as stored here: (experiment, T_in, T_out, C, H, W, dtype, train
# frames, per-GPU batch, window offsets or None for consecutive frames). Frame counts: WeatherBench
# hourly 2010-2015; WB-M 6-hourly 1979-2015; TaxiBJ/KTH/KITTI/Human3.6M from their published
# window or frame counts (TaxiBJ stores each sample's 8 frames end to end).
SHAPES = {
    "t2m": ("t2m_svq", 12, 12, 1, 32, 64, "float32", 52_584, 16, None),
    "r": ("r_svq", 12, 12, 1, 32, 64, "float32", 52_584, 16, None),
    "uv10": ("uv10_svq", 12, 12, 2, 32, 64, "float32", 52_584, 16, None),
    "tcc": ("tcc_svq", 12, 12, 1, 32, 64, "float32", 52_584, 16, None),
    "wbm": ("wbm_svq", 4, 4, 12, 32, 64, "float32", 54_056, 16, (0, 6, 12, 17, 18, 24, 30, 36)),
    "taxibj": ("taxibj_svq", 4, 4, 2, 32, 32, "float32", 19_560 * 8, 16, None),
    "kth": ("kth_svq", 10, 20, 1, 128, 128, "uint8", 108_717, 4, None),
    "kitti": ("kitti_svq", 10, 1, 3, 128, 160, "uint8", 41_396, 4, None),
    "human": ("human_svq", 4, 4, 3, 256, 256, "uint8", 73_404, 4, None),
}


def shape_store(work: Path, ds: str, n_windows: int) -> Path:
    _, T_in, T_out, C, H, W, dtype, _, _, offsets = SHAPES[ds]
    span = (offsets[-1] + 1) if offsets else T_in + T_out
    n = n_windows + span - 1
    rng = np.random.default_rng(0)
    if dtype == "uint8":
        frames = rng.integers(0, 256, (n, C, H, W), dtype=np.uint8)
        kw = {"scaling": "fixed", "metric_space": "model", "offset": [0.0] * C, "scale": [255.0] * C}
    else:
        frames = (280 + rng.normal(0, 5, (n, C, H, W))).astype(np.float32)
        kw = {"scaling": "zscore", "metric_space": "physical"}
    starts = np.arange(n - span + 1, dtype=np.int64) if offsets else window_starts(n, T_in, T_out)
    splits = {name: Split(frames=frames, starts=starts) for name in ("train", "val", "test")}
    prepared = Prepared(splits=splits, channels=[f"c{i}" for i in range(C)], T_in=T_in, T_out=T_out, step=1,
                        offsets=list(offsets) if offsets else None, attrs={"made_by": "bench"}, **kw)
    return write_store(prepared, work / f"{ds}.zarr")


def part3(args, work: Path, device: torch.device) -> None:
    n_windows = 128 if args.quick else 384
    print(f"## 3. Every dataset's window at the paper's size: loader vs trainer ({device.type})")
    print(f"Loader: {n_windows} windows per pass from a synthetic store of that shape, shuffled, in the mode "
          f"the paper-size train split gets (cache if it fits {CACHE_BYTES / 2**20:.0f} MiB per process, "
          f"else lazy); pass 2 (persistent workers) shown, median of 2 rounds. Trainer: "
          + (f"{args.trainer_steps} training step(s) after {args.trainer_warmup} warm-up, the SVQ experiment "
             f"at the paper's size, random windows, fp32" if args.trainer_steps else "not measured")
          + (f", for {','.join(args.trainer_datasets)} only" if args.trainer_steps and
             set(args.trainer_datasets) != set(SHAPES) else "") + ".")
    print()
    head = (f"{'dataset':<7} {'window (T_in+T_out, C, H, W) dtype':<36} {'split':>9} {'mode':<5} {'batch':>5} "
            + " ".join(f"{f'w={w} win/s':>11}" for w in WORKERS) + f" {'trainer win/s':>14} {'best loader/trainer':>20}")
    print(head)
    for ds, (exp, T_in, T_out, C, H, W, dtype, frames, batch, _) in SHAPES.items():
        split_bytes = frames * C * H * W * np.dtype(dtype).itemsize
        cache = split_bytes <= CACHE_BYTES
        store = shape_store(work, ds, n_windows)
        rates = {w: [] for w in WORKERS}
        for rnd in range(2):
            for w in WORKERS:
                rates[w].append(measure_loader(store, cache, w, n_windows, rnd, device, batch)[1])
        loader = {w: statistics.median(r) for w, r in rates.items()}
        trainer = None
        if args.trainer_steps and ds in args.trainer_datasets:
            cfg = paper_config(exp)
            trainer = trainer_measure(cfg, (T_in, C, H, W), T_out, batch, device, "fp32",
                                      steps=args.trainer_steps, warmup=args.trainer_warmup)["windows_per_s"]
        shape = f"({T_in}+{T_out}, {C}, {H}, {W}) {dtype}"
        size = f"{split_bytes / 2**30:.1f} GiB" if split_bytes >= 2**30 else f"{split_bytes / 2**20:.0f} MiB"
        ratio = f"{max(loader.values()) / trainer:,.0f}x" if trainer else "-"
        print(f"{ds:<7} {shape:<36} {size:>9} {'cache' if cache else 'lazy':<5} {batch:>5} "
              + " ".join(f"{loader[w]:>11,.0f}" for w in WORKERS)
              + f" {(f'{trainer:,.2f}' if trainer else '-'):>14} {ratio:>20}", flush=True)
        shutil.rmtree(store, ignore_errors=True)
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="168 hours per year, fewer windows per pass and fewer repeats")
    parser.add_argument("--hours", type=int, default=None,
                        help="hours per year of the generated twin (default 720, 168 with --quick)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="parent folder for the temporary raw files and store (default: system temp)")
    parser.add_argument("--shapes-only", action="store_true", help="part 3 only (every dataset's shape)")
    parser.add_argument("--trainer-datasets", default=",".join(SHAPES),
                        help="datasets whose trainer throughput part 3 measures (default all)")
    parser.add_argument("--trainer-steps", type=int, default=3, help="timed training steps (0: none)")
    parser.add_argument("--trainer-warmup", type=int, default=1, help="untimed training steps first")
    args = parser.parse_args(argv)
    args.trainer_datasets = [d for d in args.trainer_datasets.split(",") if d]
    unknown = set(args.trainer_datasets) - set(SHAPES)
    if unknown:
        parser.error(f"--trainer-datasets: unknown {sorted(unknown)}; expected names among {list(SHAPES)}")
    if args.hours is None:
        args.hours = 168 if args.quick else 720
    if args.hours < 1 or args.hours > 8760:
        parser.error(f"--hours: expected 1..8760 hours per year, got {args.hours}")
    device = pick_device(args.device)
    params = load_params(ROOT / "params.yaml")
    settings = dict(dataset_settings(params, DATASET)["data"], name=DATASET)
    print_header("Data loading benchmark" + (" (--quick)" if args.quick else ""), device)
    work = Path(tempfile.mkdtemp(prefix="svq-bench-data-", dir=args.workdir))
    try:
        if not args.shapes_only:
            store = part1(args, work, settings)
            part2(args, store, device)
            print()
        part3(args, work, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
