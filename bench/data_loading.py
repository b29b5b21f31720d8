#!/usr/bin/env python
"""Data path throughput: preprocessing into the Zarr store, and windows read by a DataLoader.

Part 1: the WeatherBench-S t2m generated twin, with more hours per year than the pipeline's
sample profile, is written to a temporary folder; ``load`` + ``write_store`` (the preprocess
stage) is then timed in fresh spawned processes, with their peak RSS.

Part 2: windows per second of a ``torch.utils.data.DataLoader`` over ``WindowDataset`` (train
split, batch 16, shuffled like training) with 0, 1 and 2 workers, with the in-memory cache
(default) and with lazy reads from the sharded Zarr chunks (``cache_bytes=0``); configurations
interleaved and repeated.

Run from the repository root: ``.venv/bin/python bench/data_loading.py [--quick] [--device cuda]``.
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

import pipeline  # noqa: E402,F401  (installs the torchvision shim first)
import torch  # noqa: E402
from machine import print_header, pick_device, reset_peak_rss, peak_rss  # noqa: E402
import zarr  # noqa: E402
from torch.utils.data import DataLoader, RandomSampler  # noqa: E402

from pipeline.config import dataset_settings, load_params  # noqa: E402
from pipeline.data.sources import weatherbench  # noqa: E402
from pipeline.data.store import write_store  # noqa: E402
from pipeline.data.windows import CACHE_BYTES, WindowDataset  # noqa: E402

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
                   device: torch.device) -> tuple[float, float]:
    """(first pass, second pass) windows/s. The first includes worker start-up and, with the
    cache, each process reading the split into memory; the second reuses persistent workers,
    as every later epoch of training does."""
    ds = WindowDataset(store, "train") if cache else WindowDataset(store, "train", cache_bytes=0)
    sampler = RandomSampler(ds, num_samples=min(n_windows, len(ds)),
                            generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(ds, batch_size=BATCH, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, pin_memory=device.type == "cuda")
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="168 hours per year, fewer windows per pass and fewer repeats")
    parser.add_argument("--hours", type=int, default=None,
                        help="hours per year of the generated twin (default 720, 168 with --quick)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="parent folder for the temporary raw files and store (default: system temp)")
    args = parser.parse_args(argv)
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
        store = part1(args, work, settings)
        part2(args, store, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
