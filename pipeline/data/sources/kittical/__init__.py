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

Modules: ``settings`` (the schema), ``reader`` (load), ``seq`` (the Caltech .seq format),
``twin`` (make_sample), ``fetch``.
"""
from __future__ import annotations

from pipeline.data.sources import SOURCES
from pipeline.data.sources.base import Source, data_settings
from pipeline.data.sources.kittical.fetch import CALTECH_ARCHIVE, KITTI_ARCHIVE, fetch
from pipeline.data.sources.kittical.reader import CACHE, CALTECH_DIR, CHANNELS, KITTI_DIR, NAME, load
from pipeline.data.sources.kittical.seq import SEQ_HEADER, seq_frames, write_seq
from pipeline.data.sources.kittical.settings import CALTECH_URL, KITTI_URL, KittiCalSample, KittiCalSettings
from pipeline.data.sources.kittical.twin import make_sample

__all__ = ["CACHE", "CALTECH_ARCHIVE", "CALTECH_DIR", "CALTECH_URL", "CHANNELS", "KITTI_ARCHIVE",
           "KITTI_DIR", "KITTI_URL", "KittiCalSample", "KittiCalSettings", "NAME", "SEQ_HEADER",
           "fetch", "load", "make_sample", "parse_settings", "seq_frames", "write_seq"]


def parse_settings(settings: dict) -> KittiCalSettings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    return data_settings(KittiCalSettings, settings)


SOURCE = SOURCES.register("kittical")(Source(KittiCalSettings, KittiCalSample, fetch, make_sample, load))
