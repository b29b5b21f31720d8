"""Human3.6M as OpenSTL prepares it: 256x256 RGB frames, 4 -> 4 at a frame step of 5.

Human3.6M's license requires registration, so ``fetch`` downloads nothing but OpenSTL's two
public window lists; it checks that the frames are in place and otherwise raises a DataError
saying where to get them and where to put them (see ``INSTRUCTIONS``). Raw layout (OpenSTL's
``data/human``; the sample twin writes the same)::

    <raw_dir>/images/<Subject>_<Action>.<camera>_<NNNNNN>.jpg   e.g. S11_Walking.60457274_001621.jpg
    <raw_dir>/train.txt    lines "images/S1_Directions.54138969_,<first frame>,<unused>"
    <raw_dir>/test.txt

Rules (OpenSTL ``openstl/datasets/dataloader_human.py`` and ``tools/prepare_data``):

* The split is given by the two lists (73,404 train and 8,582 test windows, taken from STRPM),
  drawn from the same videos of subjects S1, S5, S6, S7, S8, S9, S11: it is NOT a split by
  subject. Each line is one window: frames ``first + k * frame_step``, ``k < T_in + T_out``,
  the first T_in the input, the rest the target (OpenSTL slices the target as ``[T_out:]``,
  the same thing when T_in == T_out).
* Validation: OpenSTL validates on test. Here ``val_fraction`` of the train lines, chosen with
  the seeded generator ``numpy.random.default_rng(val_seed)``, form the validation split and
  are removed from train. Like the test lines, they come from the same videos as the training
  windows (and may share frames with them): validation mirrors how the test set was drawn.
* Frames are RGB (OpenSTL reads BGR with cv2; the channel order does not change training and
  MSE/MAE/SSIM/PSNR, only LPIPS marginally), uint8, scaling fixed offset 0 scale 255, metrics in
  [0, 1]. Images that are not ``image_size`` square are resized bilinearly without anti-aliasing,
  as OpenSTL's ``resize_image.py`` (``cv2.resize``) does when preparing the 256x256 copies.
  OpenSTL's training-time augmentation (resize to 292, random 256 crop, random rotation) belongs
  to the training loop, not to the stored data.
* Only the frames some window of a split uses are stored, per split, grouped per video in
  runs of numbers ``frame_step`` apart; a window is then ``T_in + T_out`` CONSECUTIVE stored
  frames, so ``Prepared.step`` is 1 and the raw frame step is kept in ``attrs['frame_step']``.

Settings (``datasets.<name>.data``; all required unless a default is given; ``name``, added by
the caller, only names keys in messages (default "human"), ``source`` is ignored):

* ``T_in``, ``T_out`` (paper 4 and 4), ``frame_step`` (5), ``image_size`` (256).
* ``val_fraction`` (e.g. 0.1) and ``val_seed`` (integer >= 0): the validation lines.
* ``train_list_url``, ``test_list_url``: where ``fetch`` gets OpenSTL's lists when they are
  not in ``raw_dir`` (default: the files in OpenSTL's repository at a pinned commit).

Sample knobs (``datasets.<name>.sample``, optional): ``videos`` (default 3), ``frames`` (stored
frames per video, default 16), ``train_windows`` and ``test_windows`` (lines per video,
defaults 6 and 2).
"""
from __future__ import annotations

import sys
import os
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.prepared import DataError, Prepared, Split
from pipeline.data.sources.frames import blob_video, lazy_stack, open_image, resize_linear, write_jpeg
from pipeline.data.sources.settings import REQUIRED, check_settings, data_settings, fraction, int_at_least, url_string
from pipeline.data.sources import SOURCES
from pipeline.errors import ConfigError

NAME = "human"
SOURCES.register(NAME)(sys.modules[__name__])  # a package of its own next
_META = ("https://raw.githubusercontent.com/chengtan9907/OpenSTL/"
         "a0f4606afe395a0442d210d352bb263e55805f30/tools/prepare_data/meta/human/")
LISTS = {"train": "train.txt", "test": "test.txt"}
IMAGES = "images"
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
CHANNELS = ["red", "green", "blue"]

INSTRUCTIONS = """\
Human3.6M must be obtained by hand: its license requires registration.
  1. Register at the official site http://vision.imar.ro/human3.6m/ and download the videos of
     subjects {subjects}.
  2. Turn them into jpg frames named <Subject>_<Action>.<camera>_<NNNNNN>.jpg, numbered from
     000001 like the video frames (e.g. S11_Walking.60457274_001621.jpg). OpenSTL's images keep
     every 5th frame (000001, 000006, ...); keeping all frames works too. This is the layout of
     the per-subject image tars that OpenSTL's tools/prepare_data/download_human3.6m.sh unpacks.
  3. Resize them to 256x256 (OpenSTL's tools/prepare_data/resize_image.py; frames of another
     size are resized here the same way, more slowly).
  4. Put all frames, flat, in {images}/ .
OpenSTL's window lists train.txt and test.txt (tools/prepare_data/meta/human/) go in {raw_dir}/;
the download stage fetches them itself. Then run the download stage again: the pipeline checks
the frames and picks them up."""

_SPEC = {
    "T_in": (REQUIRED, int_at_least(1)),
    "T_out": (REQUIRED, int_at_least(1)),
    "frame_step": (REQUIRED, int_at_least(1)),
    "image_size": (REQUIRED, int_at_least(8)),
    "val_fraction": (REQUIRED, fraction),
    "val_seed": (REQUIRED, int_at_least(0)),
    "train_list_url": (_META + LISTS["train"], url_string),
    "test_list_url": (_META + LISTS["test"], url_string),
}
_SAMPLE_SPEC = {
    "videos": (3, int_at_least(1)),
    "frames": (16, int_at_least(1)),
    "train_windows": (6, int_at_least(1)),
    "test_windows": (2, int_at_least(1)),
}


def _settings(settings: Any) -> dict[str, Any]:
    return data_settings(settings, _SPEC, NAME)


def _instructions(raw_dir: Path, problem: str) -> str:
    raw_dir = Path(raw_dir)
    return f"Human3.6M frames not found: {problem}.\n" + INSTRUCTIONS.format(
        subjects=", ".join(SUBJECTS), images=raw_dir / IMAGES, raw_dir=raw_dir)


def fetch(raw_dir: Path, settings: Any) -> list:
    """Check the manually placed frames; download OpenSTL's window lists if they are missing."""
    from pipeline.data.download import download

    s = _settings(settings)
    raw_dir = Path(raw_dir)
    images = raw_dir / IMAGES
    if not images.is_dir() or not any(images.glob("*.jpg")):
        raise DataError(_instructions(raw_dir, f"{images} is missing or holds no .jpg file"))
    results = [download(s[f"{split}_list_url"], raw_dir / name) for split, name in LISTS.items()]
    for split in LISTS:
        _assemble(raw_dir, _windows(raw_dir / LISTS[split]), s)  # every listed frame must exist
    return results


def _windows(path: Path) -> list[tuple[str, int]]:
    """(prefix, first frame number) of every line of an OpenSTL list."""
    if not path.is_file():
        raise DataError(f"{path}: window list missing (OpenSTL's tools/prepare_data/meta/human/"
                        f"{path.name}; the download stage fetches it)")
    windows = []
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            fields = line.split(",")
            try:
                if len(fields) < 2 or not fields[0]:
                    raise ValueError
                windows.append((fields[0], int(fields[1])))
            except ValueError:
                raise DataError(f"{path}:{lineno}: expected '<images/Subject_Action.camera_>,"
                                f"<first frame>,...', got {line!r}") from None
    if not windows:
        raise DataError(f"{path}: no windows listed")
    return windows


def _assemble(root: Path, windows: list[tuple[str, int]], s: dict[str, Any]
              ) -> tuple[list[Path], np.ndarray, int]:
    """Stored frames (paths) of a split, window starts into them, and the number of runs.

    Frames are grouped per video and residue of their number modulo the frame step, sorted,
    so a window's frames are consecutive entries; runs break where numbers are not a step apart.
    """
    fs, length = s["frame_step"], s["T_in"] + s["T_out"]
    groups: dict[tuple[str, int], set[int]] = defaultdict(set)
    for prefix, first in windows:
        if first < 0:
            raise DataError(f"window {prefix},{first}: negative frame number")
        groups[(prefix, first % fs)].update(range(first, first + length * fs, fs))
    listing: dict[Path, set[str]] = {}
    position: dict[tuple[str, int], int] = {}
    paths: list[Path] = []
    missing: list[Path] = []
    runs = 0
    for prefix, residue in sorted(groups):
        numbers = sorted(groups[(prefix, residue)])
        for j, number in enumerate(numbers):
            runs += j == 0 or number - numbers[j - 1] != fs
            path = root / f"{prefix}{number:06d}.jpg"
            folder = path.parent
            if folder not in listing:
                listing[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            if path.name not in listing[folder]:
                missing.append(path)
            position[(prefix, number)] = len(paths)
            paths.append(path)
    if missing:
        raise DataError(_instructions(root, f"{len(missing)} of the {len(paths)} frames the window "
                                            f"lists need are missing, e.g. {missing[0]}"))
    starts = np.asarray([position[w] for w in windows], dtype=np.int64)
    return paths, starts, runs


def _read_frame(path: Path, size: int) -> np.ndarray:
    image = open_image(path)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return resize_linear(image, (size, size)).transpose(2, 0, 1)


def load(raw_dir: Path, settings: Any) -> Prepared:
    s = _settings(settings)
    root = Path(raw_dir)
    train = _windows(root / LISTS["train"])
    test = _windows(root / LISTS["test"])
    n_val = max(1, int(round(s["val_fraction"] * len(train))))
    if n_val >= len(train):
        raise DataError(f"{root / LISTS['train']}: {len(train)} windows cannot give {n_val} to "
                        f"validation (datasets.{s['name']}.data.val_fraction={s['val_fraction']}) "
                        f"and keep some for training")
    held = np.zeros(len(train), dtype=bool)
    held[np.random.default_rng(s["val_seed"]).permutation(len(train))[:n_val]] = True
    chosen = {"train": [w for w, h in zip(train, held) if not h],
              "val": [w for w, h in zip(train, held) if h], "test": test}
    size = s["image_size"]
    splits, counts = {}, {}
    for split, windows in chosen.items():
        paths, starts, runs = _assemble(root, windows, s)
        frames = lazy_stack(paths, partial(_read_frame, size=size), (3, size, size))
        splits[split] = Split(frames=frames, starts=starts)
        counts[split] = {"windows": len(windows), "frames": len(paths), "runs": runs}
    return Prepared(
        splits=splits, channels=list(CHANNELS), T_in=s["T_in"], T_out=s["T_out"], step=1,
        scaling="fixed", metric_space="model", offset=[0.0] * 3, scale=[255.0] * 3,
        attrs={"source": NAME, "root": str(root),
               "lists": {k: str(root / v) for k, v in LISTS.items()},
               "frame_step": s["frame_step"], "splits": counts,
               "val_rule": f"{n_val} of {len(train)} train.txt lines drawn with "
                           f"numpy default_rng({s['val_seed']})"})


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small Human3.6M twin: ``images/`` of 256x256-style jpgs numbered every
    ``frame_step`` from 000001, and ``train.txt``/``test.txt`` lines in OpenSTL's format."""
    s = _settings(settings)
    k = check_settings(sample, _SAMPLE_SPEC, f"datasets.{s['name']}.sample")
    fs, length, size = s["frame_step"], s["T_in"] + s["T_out"], s["image_size"]
    positions = k["frames"] - length + 1
    if positions < max(k["train_windows"], k["test_windows"]):
        raise ConfigError(f"datasets.{s['name']}.sample.frames: {k['frames']} frames per video hold "
                          f"{max(positions, 0)} windows of {length}, fewer than the "
                          f"{max(k['train_windows'], k['test_windows'])} lines asked for")
    rng = np.random.default_rng(seed)
    root = Path(raw_dir)
    actions = ("Walking", "Eating", "Phoning", "Directions", "Discussion")
    cameras = ("54138969", "55011271", "58860488", "60457274")
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for v in range(k["videos"]):
        prefix = f"{SUBJECTS[v % len(SUBJECTS)]}_{actions[v % len(actions)]}.{cameras[v % len(cameras)]}_"
        video = blob_video(rng, k["frames"], size, size, 3, blobs=3, speed=12.0)
        for i, frame in enumerate(video):
            write_jpeg(root / IMAGES / f"{prefix}{1 + i * fs:06d}.jpg", frame)
        for split in lines:
            for p in rng.choice(positions, size=k[f"{split}_windows"], replace=False):
                first = 1 + int(p) * fs
                # the third field is unused by OpenSTL; the real lists carry first + 70
                lines[split].append(f"{IMAGES}/{prefix},{first},{first + 70}")
    for split, name in LISTS.items():
        order = rng.permutation(len(lines[split]))  # the real lists are not sorted
        (root / name).write_text("".join(lines[split][i] + "\n" for i in order))
