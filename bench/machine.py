"""What the benchmarks print about the machine they ran on, and peak-memory readings."""
from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_available() -> int | None:
    """Bytes the kernel reports as available (None where /proc/meminfo is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def print_header(title: str, device: torch.device) -> None:
    load = os.getloadavg()
    avail = mem_available()
    print(f"# {title}")
    print(f"date        : {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"command     : {' '.join([Path(sys.executable).name] + sys.argv)}")
    print(f"git commit  : {git_commit()}")
    print(f"cpu         : {cpu_model()}, {os.cpu_count()} logical cores "
          f"({len(os.sched_getaffinity(0))} usable)")
    print(f"memory      : {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB total, "
          f"{avail / 2**30:.1f} GiB available" if avail else "memory      : unknown")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    print(f"python      : {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} intra-op threads")
    if device.type == "cuda":
        print(f"cuda device : {torch.cuda.get_device_name(device)}")
    else:
        print("device      : cpu")
    print()


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        print("note: --device cuda asked but CUDA is not available; running on cpu\n")
        return torch.device("cpu")
    return torch.device(name)


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {key}")


def reset_peak_rss() -> tuple[int, str]:
    """Baseline for a peak-RSS measurement: (bytes, how).

    Linux lets a process reset its own RSS high-water mark (``/proc/self/clear_refs`` = 5), so the
    peak of the measured calls is not hidden behind an earlier, higher one (imports, set-up), and
    ``VmHWM`` then reads it. ``ru_maxrss`` cannot be used after a reset: it also keeps the peak the
    process inherited at fork/exec from its parent. Where the reset is refused, the baseline is
    the lifetime ``ru_maxrss`` so far and the increase is a lower bound.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_bytes("VmRSS"), "reset"
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "lifetime"


def peak_rss(how: str) -> int:
    if how == "reset":
        return _status_bytes("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
