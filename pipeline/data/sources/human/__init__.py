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

Modules: ``settings`` (the schema), ``reader`` (load), ``twin`` (make_sample), ``fetch``.
"""
from __future__ import annotations

from pipeline.data.sources import SOURCES
from pipeline.data.sources.base import Source, data_settings
from pipeline.data.sources.human.fetch import fetch
from pipeline.data.sources.human.reader import CHANNELS, IMAGES, INSTRUCTIONS, NAME, SUBJECTS, load
from pipeline.data.sources.human.settings import HumanSample, HumanSettings, LISTS
from pipeline.data.sources.human.twin import make_sample

__all__ = ["CHANNELS", "HumanSample", "HumanSettings", "IMAGES", "INSTRUCTIONS", "LISTS", "NAME",
           "SUBJECTS", "fetch", "load", "make_sample", "parse_settings"]


def parse_settings(settings: dict) -> HumanSettings:
    """Validate ``datasets.<name>.data``; every problem is a ConfigError naming its key."""
    return data_settings(HumanSettings, settings)


SOURCE = SOURCES.register("human")(Source(HumanSettings, HumanSample, fetch, make_sample, load))
