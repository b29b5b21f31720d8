"""KTH Action as OpenSTL ships it (``kth_action.zip``): grayscale clips, 10 -> 20 frames.

Raw layout (what the release unpacks to, and what the sample twin writes)::

    <raw_dir>/[<one sub-folder>/]<action>/person<PP>_<action>_d<S>_uncomp/image_<NNNN>.jpg

with the six action folders boxing, handclapping, handwaving, walking, jogging, running, one
folder per clip (person PP = 01..25, scenario S = 1..4) and 160x120 frames numbered from 0001.
Only files whose name starts with ``image`` are frames, as in OpenSTL.

Rules (OpenSTL ``openstl/datasets/dataloader_kth.py``):

* A frame is channel 0 of the image (the release's jpgs are RGB with equal channels), resized to
  ``image_size`` x ``image_size`` with bilinear interpolation and no anti-aliasing (what
  ``cv2.resize`` does), rounded and stored as uint8: scaling "fixed", offset 0, scale 255,
  metrics in the model's [0, 1] space.
* A split's frames are its persons' clips concatenated, actions in the order above and clip
  folders sorted by name (OpenSTL uses the unsorted ``os.listdir`` order: same windows).
* Windows of ``L = T_in + T_out`` consecutive frames, found by OpenSTL's backward scan: a
  window ending at frame ``e`` is taken when its first frame lies in the same clip and their
  image numbers differ by exactly ``L - 1`` (no gap in the numbering); the scan then continues
  just before the window (boxing, handclapping, handwaving, walking: non-overlapping windows
  aligned to the END of each clip) or 3 frames earlier (jogging, running: stride 3); when no
  window is taken it moves back one frame. For a clip of ``n`` gap-free frames that is
  ``n // L`` windows in the first group and ``(n - L) // 3 + 1`` (``n >= L``) in the second.
* Splits: OpenSTL trains on persons 1-16 and tests on 17-25, validating on the test set. Here
  the three splits are disjoint person lists; the suggested validation holds out whole persons
  (train 1-14, val 15-16, test 17-25), so no clip is shared with training. Val windows follow
  the same rule as train and test.

Settings (``datasets.<name>.data``; all required unless a default is given; ``name``, added by
the caller, only names keys in messages (default "kth"), ``source`` is ignored):

* ``T_in``, ``T_out``: input and target frames (paper: 10 and 20).
* ``image_size``: side of the square frames (paper: 128).
* ``train_persons``, ``val_persons``, ``test_persons``: disjoint, non-empty lists of person
  numbers in 1..25.
* ``url`` (default: OpenSTL's v0.1.0 release of ``kth_action.zip``), ``sha256`` (default none).

Sample knobs (``datasets.<name>.sample``, all optional): ``frames`` (base clip length, default 36;
clips get 0-10 extra frames so lengths differ), ``scenarios`` (clips per person and action,
default 1), ``persons_per_split`` (default 1: the first persons of each list).

Modules: ``settings`` (the schema), ``reader`` (load), ``twin`` (make_sample), ``fetch``.
"""
from __future__ import annotations

from pipeline.data.sources import SOURCES
from pipeline.data.sources.base import Source, data_settings
from pipeline.data.sources.kth.fetch import ARCHIVE, fetch
from pipeline.data.sources.kth.reader import ACTIONS, ACTIONS_NONOVERLAP, ACTIONS_STRIDE3, NAME, RAW_SIZE, load
from pipeline.data.sources.kth.settings import KTHSample, KTHSettings, URL
from pipeline.data.sources.kth.twin import make_sample

__all__ = ["ACTIONS", "ACTIONS_NONOVERLAP", "ACTIONS_STRIDE3", "ARCHIVE", "KTHSample",
           "KTHSettings", "NAME", "RAW_SIZE", "URL", "fetch", "load", "make_sample",
           "parse_settings"]


def parse_settings(settings: dict) -> KTHSettings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    return data_settings(KTHSettings, settings)


SOURCE = SOURCES.register("kth")(Source(KTHSettings, KTHSample, fetch, make_sample, load))
