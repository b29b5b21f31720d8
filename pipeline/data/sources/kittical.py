"""KittiCaltech as OpenSTL uses it: train on KITTI (PredNet's hickle files), test on Caltech
Pedestrian videos, 10 -> 1 frames of 3 x 128 x 160.

Raw layout (OpenSTL's ``data/kitti_hkl`` and ``data/caltech``; the sample twin writes the same)::

    <raw_dir>/kitti_hkl/[<one sub-folder>/]X_train.hkl     (N, 128, 160, 3) uint8 RGB frames
                                         sources_train.hkl  N recording names, one per frame
                                         X_val.hkl, sources_val.hkl (X_test.hkl... unused)
    <raw_dir>/caltech/set06/V000.seq ...  Caltech test videos (Norpix .seq, jpg-compressed frames)

For Caltech, three inputs are accepted, tried in this order:

1. ``caltech/data_cache.npy`` + ``caltech/indices_cache.npy``: OpenSTL's cache of the processed
   test frames and window starts (distributed with its Baidu copy of the data). Its frames came
   from ``cv2`` and are BGR; the starts are checked to be disjoint windows that fit.
2. ``caltech/<set>/<video>.seq``: decoded here (header and frame offsets as in Piotr Dollar's
   ``seqIo``, the Caltech authors' own reader; each frame a jpg decoded with Pillow).
3. ``caltech/<set>/<video>/`` folders of pre-extracted frames (all frames of the video, image
   files sorted by name), e.g. made with ffmpeg from .avi copies. Other video containers
   (.avi, .mp4, ...) need a video decoder, which is not installed (no OpenCV): they raise a
   DataError asking for pre-extracted frames. Other files (annotations...) are ignored.

Rules (OpenSTL ``openstl/datasets/dataloader_kitticaltech.py``):

* KITTI frames are stored as they are (uint8, scaling fixed offset 0 scale 255, metrics in the
  model's [0, 1] space). Caltech: every ``caltech_frame_step``-th frame (OpenSTL: 3; the 3rd,
  6th... of each video) is resized with scikit-image to height 128 keeping the aspect ratio
  (PredNet's ``process_im``: ``resize(..., preserve_range=True)``, so with anti-aliasing), the
  width centre-cropped to 160, and rounded to uint8 (OpenSTL keeps floats).
* Windows of ``L = T_in + T_out`` frames, OpenSTL's backward scan: from the last frame, a window
  is taken when its first and last frames belong to the same recording/video, then the scan
  jumps to the frame before it: non-overlapping windows aligned to the END of each recording,
  ``n // L`` of them for a recording of ``n`` frames. Recordings are runs of equal consecutive
  source names (OpenSTL compares the names only; the same when each recording is contiguous).
* Channel order: KITTI is RGB. OpenSTL's Caltech frames come from ``cv2`` and are BGR (its test
  set is colour-swapped relative to training). ``caltech_channel_order`` chooses: "bgr"
  reproduces OpenSTL's code (so, presumably, the paper's test conditions), "rgb" is the
  consistent choice.
* Splits: OpenSTL trains on ``X_train.hkl`` and validates on the Caltech test set. Here the
  validation split is KITTI's own ``X_val.hkl`` (PredNet's validation recordings) with the same
  rule; test is Caltech. Augmentation (OpenSTL's optional random crop/flip) is not data.

Settings (``datasets.<name>.data``; all required unless a default is given; ``name``, added by
the caller, only names keys in messages (default "kittical"), ``source`` is ignored):

* ``T_in``, ``T_out`` (paper 10 and 1), ``image_size`` ([128, 160], must match the hkl frames).
* ``caltech_frame_step`` (3), ``caltech_channel_order`` ("bgr" or "rgb").
* ``kitti_url`` (default: PredNet's ``kitti_data.zip`` on Dropbox, as in OpenSTL's script),
  ``kitti_sha256``; ``caltech_url`` (default: CaltechDATA's ``data_and_labels.zip``),
  ``caltech_sha256``; ``caltech_sets`` (test sets taken from that archive, default set06-set10;
  the archive is not fetched when these sets, or OpenSTL's cache, are already in ``caltech/``).

Sample knobs (``datasets.<name>.sample``, optional): ``kitti_train`` (recording lengths,
default [24, 13]), ``kitti_val`` ([12]), ``kitti_test`` ([4]), ``caltech_videos`` (2),
``caltech_frames`` (raw frames per video, 36), ``caltech_size`` ([480, 640]). The twin's hkl
arrays are gzip-compressed HDF5 datasets (same structure) to stay small. The files are read
with h5py (``pipeline.data.hkl``), never unpickled.
"""
from __future__ import annotations

import sys
import io
import logging
import os
import shutil
import struct
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.hkl import read_hkl
from pipeline.data.prepared import DataError, Prepared, Split
from pipeline.data.sources.frames import backward_starts, blob_video, find_dir, lazy_stack, open_image
from pipeline.data.sources.settings import REQUIRED, check_settings, choice, data_settings, int_at_least, sha256_or_none, url_string
from pipeline.data.sources import SOURCES
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

NAME = "kittical"
SOURCES.register(NAME)(sys.modules[__name__])  # a package of its own next
KITTI_URL = "https://www.dropbox.com/s/rpwlnn6j39jjme4/kitti_data.zip?dl=1"
CALTECH_URL = "https://data.caltech.edu/records/f6rph-90m20/files/data_and_labels.zip?download=1"
KITTI_ARCHIVE = "kitti_data.zip"
CALTECH_ARCHIVE = "caltech_data_and_labels.zip"
KITTI_DIR = "kitti_hkl"
CALTECH_DIR = "caltech"
CACHE = ("data_cache.npy", "indices_cache.npy")
CHANNELS = ["red", "green", "blue"]
VIDEO_EXTS = {".avi", ".mp4", ".mkv", ".mov", ".mpg", ".mpeg", ".wmv", ".m4v"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
SEQ_HEADER = 1024
SEQ_JPEG_FORMATS = (102, 201)
SEQ_FRAME_TAIL = 16  # timestamp (uint32 s, uint16 ms) and padding after each jpg frame


def _ints(value: Any, low: int) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low for v in value)


def _size_pair(value: Any, key: str) -> tuple[int, int]:
    if not _ints(value, 8) or len(value) != 2:
        raise ConfigError(f"{key}: expected [height, width], two integers >= 8, got {value!r}")
    return int(value[0]), int(value[1])


def _str_list(value: Any, key: str) -> list[str]:
    if (not isinstance(value, Sequence) or isinstance(value, str) or not value
            or not all(isinstance(v, str) and v for v in value)):
        raise ConfigError(f"{key}: expected a non-empty list of folder names, got {value!r}")
    return list(value)


def _lengths(value: Any, key: str) -> list[int]:
    if not _ints(value, 1):
        raise ConfigError(f"{key}: expected a non-empty list of frame counts >= 1, got {value!r}")
    return [int(v) for v in value]


_SPEC = {
    "T_in": (REQUIRED, int_at_least(1)),
    "T_out": (REQUIRED, int_at_least(1)),
    "image_size": (REQUIRED, _size_pair),
    "caltech_frame_step": (REQUIRED, int_at_least(1)),
    "caltech_channel_order": (REQUIRED, choice("bgr", "rgb")),
    "kitti_url": (KITTI_URL, url_string),
    "kitti_sha256": (None, sha256_or_none),
    "caltech_url": (CALTECH_URL, url_string),
    "caltech_sha256": (None, sha256_or_none),
    "caltech_sets": (["set06", "set07", "set08", "set09", "set10"], _str_list),
}
_SAMPLE_SPEC = {
    "kitti_train": ([24, 13], _lengths),
    "kitti_val": ([12], _lengths),
    "kitti_test": ([4], _lengths),
    "caltech_videos": (2, int_at_least(1)),
    "caltech_frames": (36, int_at_least(1)),
    "caltech_size": ([480, 640], _size_pair),
}


def _settings(settings: Any) -> dict[str, Any]:
    return data_settings(settings, _SPEC, NAME)


def _kitti_dir(raw_dir: Path) -> Path:
    return find_dir(Path(raw_dir) / KITTI_DIR, lambda d: (d / "X_train.hkl").is_file(),
                    "KITTI hickle files (X_train.hkl)")


# ---------------------------------------------------------------------------------------------
# fetch

def fetch(raw_dir: Path, settings: Any) -> list:
    """Download PredNet's KITTI hickle files and the Caltech archive; keep its test sets."""
    from pipeline.data.download import download, extract

    s = _settings(settings)
    raw_dir = Path(raw_dir)
    kitti = download(s["kitti_url"], raw_dir / KITTI_ARCHIVE, sha256=s["kitti_sha256"])
    target = raw_dir / KITTI_DIR
    if not kitti.cached or not (target.is_dir() and any(target.iterdir())):
        extract(kitti.path, target, overwrite=True)
    _kitti_dir(raw_dir)
    results = [kitti]

    caltech = raw_dir / CALTECH_DIR
    # OpenSTL's processed cache, when someone put it there, replaces the 10 GB archive
    have_sets = all((caltech / name).is_dir() for name in s["caltech_sets"]) \
        or all((caltech / name).is_file() for name in CACHE)
    if (raw_dir / CALTECH_ARCHIVE).exists() or not have_sets:
        archive = download(s["caltech_url"], raw_dir / CALTECH_ARCHIVE, sha256=s["caltech_sha256"])
        results.append(archive)
        if not archive.cached or not have_sets:
            full = raw_dir / "caltech_full"
            extract(archive.path, full, overwrite=True)
            try:
                _arrange_caltech(archive.path, full, caltech, s["caltech_sets"], extract,
                                 f"datasets.{s['name']}.data.caltech_sets")
            finally:
                shutil.rmtree(full, ignore_errors=True)  # the training sets are not used
    return results


def _arrange_caltech(archive: Path, full: Path, caltech: Path, sets: list[str], extract,
                     key: str) -> None:
    """Move the test sets (folders, or per-set tars) found in the unpacked archive to caltech/."""
    caltech.mkdir(parents=True, exist_ok=True)
    for name in sets:
        dest = caltech / name
        if dest.is_dir():
            shutil.rmtree(dest)
        folders = sorted(p for p in full.rglob(name) if p.is_dir())
        tars = sorted(p for p in full.rglob(f"{name}.tar") if p.is_file())
        if folders:
            os.replace(folders[0], dest)
        elif tars:
            tmp = caltech / f".{name}.extracting"
            extract(tars[0], tmp, overwrite=True)
            inner = find_dir(tmp, lambda d: any(f.suffix == ".seq" for f in d.iterdir()),
                             f".seq videos of {name}")
            os.replace(inner, dest)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise DataError(f"{archive}: holds no folder or tar named {name} "
                            f"({key})")


# ---------------------------------------------------------------------------------------------
# KITTI

def _load_hkl(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: missing KITTI hickle file (PredNet's kitti_data.zip)")
    return read_hkl(path)  # h5py only: hickle.load would unpickle what the file says


def _run_ids(names: Sequence) -> np.ndarray:
    """Clip id per frame: a new id wherever the source name changes."""
    ids = np.zeros(len(names), dtype=np.int64)
    for i in range(1, len(names)):
        ids[i] = ids[i - 1] + (names[i] != names[i - 1])
    return ids


def _kitti_split(folder: Path, split: str, size: tuple[int, int], seq_len: int) -> tuple[Split, dict]:
    x_path, s_path = folder / f"X_{split}.hkl", folder / f"sources_{split}.hkl"
    frames = _load_hkl(x_path)
    sources = _load_hkl(s_path)
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 \
            or frames.shape[1:] != (*size, 3):
        shape = getattr(frames, "shape", None)
        raise DataError(f"{x_path}: expected uint8 frames shaped (N, {size[0]}, {size[1]}, 3), got "
                        f"{type(frames).__name__} {shape} {getattr(frames, 'dtype', '')}")
    sources = list(np.asarray(sources).tolist()) if isinstance(sources, np.ndarray) else sources
    if not isinstance(sources, list) or len(sources) != len(frames):
        raise DataError(f"{s_path}: expected one source name per frame of {x_path.name} "
                        f"({len(frames)}), got {type(sources).__name__} of length "
                        f"{len(sources) if hasattr(sources, '__len__') else '?'}")
    clips = _run_ids(sources)
    starts = backward_starts(clips, seq_len, seq_len)
    info = {"files": [str(x_path), str(s_path)], "frames": len(frames),
            "recordings": int(clips[-1] + 1) if len(clips) else 0, "windows": int(len(starts))}
    return Split(frames=frames.transpose(0, 3, 1, 2), starts=starts), info


# ---------------------------------------------------------------------------------------------
# Caltech

def seq_frames(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every jpg frame of a Norpix .seq file, as seqIo finds them."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(SEQ_HEADER)
        if len(header) < SEQ_HEADER or struct.unpack_from("<I", header, 0)[0] != 0xFEED \
                or header[4:24].decode("utf-16-le", "replace") != "Norpix seq":
            raise DataError(f"{path}: not a Norpix .seq file (bad header)")
        fields = struct.unpack_from("<9I", header, 548)
        image_format, count = fields[5], fields[6]
        if image_format not in SEQ_JPEG_FORMATS:
            raise DataError(f"{path}: .seq image format {image_format} is not jpg "
                            f"({SEQ_JPEG_FORMATS}); only jpg-compressed .seq files are supported")
        frames, seek = [], SEQ_HEADER
        for i in range(count):
            f.seek(seek)
            raw = f.read(4)
            n = struct.unpack("<I", raw)[0] if len(raw) == 4 else 0
            ok = 4 < n and seek + n <= size
            if ok:
                f.seek(seek + 4)
                soi = f.read(2)
                f.seek(seek + n - 2)
                ok = soi == b"\xff\xd8" and f.read(2) == b"\xff\xd9"
            if not ok:
                if i == count - 1:  # a known defect of some Caltech files: a cut last frame
                    log.warning("%s: last frame %d is incomplete and skipped", path, i)
                    break
                raise DataError(f"{path}: frame {i} of {count} at byte {seek} is not a complete jpg")
            frames.append((seek + 4, n - 4))
            seek += n + SEQ_FRAME_TAIL
    return frames


def _process(image: np.ndarray, size: tuple[int, int], bgr: bool) -> np.ndarray:
    """PredNet's process_im: resize to the target height keeping the aspect, centre-crop the
    width; then round to uint8, channels first."""
    from skimage.transform import resize

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    width = int(np.round(size[0] / image.shape[0] * image.shape[1]))
    if width < size[1]:
        raise DataError(f"frame of {image.shape[1]}x{image.shape[0]} is too narrow to give "
                        f"{size[1]}x{size[0]} after resizing to height {size[0]}")
    out = resize(image, (size[0], width), preserve_range=True)
    d = (width - size[1]) // 2
    out = np.clip(np.rint(out[:, d:d + size[1]]), 0, 255).astype(np.uint8)
    if bgr:
        out = out[..., ::-1]
    return out.transpose(2, 0, 1)


def _read_seq_frame(item: tuple[str, int, int], size: tuple[int, int], bgr: bool) -> np.ndarray:
    from PIL import Image

    path, offset, length = item
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    try:
        with Image.open(io.BytesIO(data)) as im:
            image = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise DataError(f"{path}: jpg frame at byte {offset} cannot be decoded ({exc})") from exc
    return _process(image, size, bgr)


def _read_image_frame(path: Path, size: tuple[int, int], bgr: bool) -> np.ndarray:
    return _process(open_image(path), size, bgr)


def _caltech_split(root: Path, s: dict[str, Any]) -> tuple[Split, dict]:
    size, seq_len = s["image_size"], s["T_in"] + s["T_out"]
    every = s["caltech_frame_step"]
    if not root.is_dir():
        raise DataError(f"{root}: missing Caltech test folder (sets of .seq videos, pre-extracted "
                        f"frame folders, or OpenSTL's {CACHE[0]} + {CACHE[1]})")
    cache, indices = root / CACHE[0], root / CACHE[1]
    if cache.is_file() or indices.is_file():
        return _caltech_cache(cache, indices, s)
    items, clips, videos, kinds = [], [], [], {"seq": 0, "frames": 0}
    for set_name in sorted(os.listdir(root)):
        set_dir = root / set_name
        if not set_dir.is_dir():
            continue
        for entry in sorted(os.listdir(set_dir)):
            path = set_dir / entry
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
                kept = [(str(p),) for i, p in enumerate(files) if (i + 1) % every == 0]
                kinds["frames"] += 1
            elif path.suffix.lower() == ".seq":
                kept = [(str(path), off, n) for i, (off, n) in enumerate(seq_frames(path))
                        if (i + 1) % every == 0]
                kinds["seq"] += 1
            elif path.suffix.lower() in VIDEO_EXTS:
                raise DataError(f"{path}: decoding {path.suffix} videos needs OpenCV, which is not "
                                f"installed; extract its frames (e.g. ffmpeg -i {entry} "
                                f"{path.with_suffix('')}/%05d.png) into a folder of the same name")
            else:
                continue
            items += kept
            clips += [len(videos)] * len(kept)
            videos.append(f"{set_name}/{entry}")
    if not items:
        raise DataError(f"{root}: no Caltech frames found in <set>/<video>.seq files or "
                        f"<set>/<video>/ frame folders")
    starts = backward_starts(clips, seq_len, seq_len)
    bgr = s["caltech_channel_order"] == "bgr"
    frames = lazy_stack(items, partial(_read_item, size=size, bgr=bgr), (3, *size))
    info = {"root": str(root), "input": kinds, "videos": len(videos), "frames": len(items),
            "windows": int(len(starts)), "frame_step": every}
    return Split(frames=frames, starts=starts), info


def _read_item(item: tuple, size: tuple[int, int], bgr: bool) -> np.ndarray:
    if len(item) == 3:
        return _read_seq_frame(item, size, bgr)
    return _read_image_frame(Path(item[0]), size, bgr)


def _caltech_cache(cache: Path, indices: Path, s: dict[str, Any]) -> tuple[Split, dict]:
    size, seq_len = s["image_size"], s["T_in"] + s["T_out"]
    for p in (cache, indices):
        if not p.is_file():
            raise DataError(f"{p}: missing; OpenSTL's Caltech cache needs both {CACHE[0]} and {CACHE[1]}")
    try:
        data = np.load(cache, mmap_mode="r", allow_pickle=False)
        starts = np.sort(np.load(indices, allow_pickle=False).astype(np.int64).ravel())
    except (OSError, ValueError) as exc:
        raise DataError(f"{cache.parent}: cannot read OpenSTL's Caltech cache ({exc})") from exc
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (*size, 3):
        raise DataError(f"{cache}: expected uint8 frames shaped (N, {size[0]}, {size[1]}, 3), got "
                        f"{data.dtype} {data.shape}")
    if len(starts) == 0 or starts[0] < 0 or starts[-1] + seq_len > len(data) \
            or np.any(np.diff(starts) < seq_len):
        raise DataError(f"{indices}: starts are not disjoint windows of {seq_len} frames within "
                        f"{len(data)} frames; the cache was made for another T_in + T_out")
    frames = data.transpose(0, 3, 1, 2)
    if s["caltech_channel_order"] == "rgb":
        frames = frames[:, ::-1]  # the cache holds cv2's BGR frames
    info = {"root": str(cache.parent), "input": "openstl_cache", "frames": int(len(data)),
            "windows": int(len(starts))}
    return Split(frames=frames, starts=starts), info


# ---------------------------------------------------------------------------------------------

def load(raw_dir: Path, settings: Any) -> Prepared:
    s = _settings(settings)
    raw_dir = Path(raw_dir)
    seq_len = s["T_in"] + s["T_out"]
    kitti = _kitti_dir(raw_dir)
    train, train_info = _kitti_split(kitti, "train", s["image_size"], seq_len)
    val, val_info = _kitti_split(kitti, "val", s["image_size"], seq_len)
    test, test_info = _caltech_split(raw_dir / CALTECH_DIR, s)
    return Prepared(
        splits={"train": train, "val": val, "test": test}, channels=list(CHANNELS),
        T_in=s["T_in"], T_out=s["T_out"], step=1, scaling="fixed", metric_space="model",
        offset=[0.0] * 3, scale=[255.0] * 3,
        attrs={"source": NAME, "splits": {"train": train_info, "val": val_info, "test": test_info},
               "caltech_channel_order": s["caltech_channel_order"],
               "window_rule": "OpenSTL backward scan, non-overlapping windows per recording"})


# ---------------------------------------------------------------------------------------------
# sample twin

def write_seq(path: Path, frames: np.ndarray, fps: float = 30.0, quality: int = 85) -> None:
    """Write (n, H, W, 3) uint8 frames as a jpg-compressed Norpix .seq file (Caltech's format)."""
    from PIL import Image

    n, height, width = frames.shape[:3]
    header = bytearray(SEQ_HEADER)
    struct.pack_into("<I", header, 0, 0xFEED)
    header[4:28] = "Norpix seq\n".encode("utf-16-le").ljust(24, b"\0")
    struct.pack_into("<iI", header, 28, 3, SEQ_HEADER)
    header[36:36 + 24] = "sample twin".encode("utf-16-le").ljust(24, b"\0")
    struct.pack_into("<9I", header, 548, width, height, 24, 8, width * height * 3,
                     SEQ_JPEG_FORMATS[0], n, 0, 0)
    struct.pack_into("<d", header, 584, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(bytes(header))
        for i, frame in enumerate(frames):
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            jpg = buf.getvalue()
            f.write(struct.pack("<I", len(jpg) + 4))
            f.write(jpg)
            seconds = 1_300_000_000 + i / fps
            f.write(struct.pack("<IH", int(seconds), int(seconds % 1 * 1000)).ljust(SEQ_FRAME_TAIL, b"\0"))


def make_sample(raw_dir: Path, settings: Any, sample: Any, seed: int) -> None:
    """Write a small twin: PredNet-style hkl files (frames and per-frame recording names) and
    Caltech-style .seq videos, all with moving blobs."""
    import hickle

    s = _settings(settings)
    k = check_settings(sample, _SAMPLE_SPEC, f"datasets.{s['name']}.sample")
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    kitti = raw_dir / KITTI_DIR
    kitti.mkdir(parents=True, exist_ok=True)
    height, width = s["image_size"]
    drive = 1
    for split in ("train", "val", "test"):
        frames, sources = [], []
        for n in k[f"kitti_{split}"]:
            frames.append(blob_video(rng, n, height, width, 3, blobs=8, speed=6.0))
            category = ("city", "residential", "road")[drive % 3]
            sources += [f"{category}-2011_09_26_drive_{drive:04d}_sync"] * n
            drive += 1
        hickle.dump(np.concatenate(frames), str(kitti / f"X_{split}.hkl"), mode="w",
                    compression="gzip")
        hickle.dump(sources, str(kitti / f"sources_{split}.hkl"), mode="w")
    sets = s["caltech_sets"]
    for v in range(k["caltech_videos"]):
        h, w = k["caltech_size"]
        # drawn at half size and doubled: full-size blobs cost seconds, the decoder sees no difference
        video = blob_video(rng, k["caltech_frames"], (h + 1) // 2, (w + 1) // 2, 3, blobs=8, speed=7.0)
        video = video.repeat(2, axis=1).repeat(2, axis=2)[:, :h, :w]
        write_seq(raw_dir / CALTECH_DIR / sets[v % len(sets)] / f"V{v // len(sets):03d}.seq", video)
