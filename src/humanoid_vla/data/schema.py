"""
The HDF5 episode layout: the one place it is written down.

Episodes follow the robomimic / LIBERO layout so that their loaders and tools read them as is,
split over several files so that a crash (SIGKILL, power loss) can never corrupt recorded data.

Files on disk
-------------
``<name>.hdf5``
    The *index*: tiny, holds only attributes, external links and masks.  It is never edited in
    place: every commit builds ``<name>.hdf5.tmp`` from scratch, fsyncs it and renames it
    (``os.replace``) over the old index, so a crash leaves the old or the new one, both readable.
``<name>.episodes/demo_<i>.hdf5``
    One finished episode, standalone, holding the full group ``/data/demo_<i>``.  It is written,
    closed, fsynced and only then renamed from its ``.partial`` name, so a linked file is whole.
``<name>.episodes/demo_<i>.partial.hdf5``
    The episode being recorded (root attr ``complete`` = False).  Never linked from the index;
    a writer that reopens the dataset leaves it alone, reports it and numbers after it.
``<name>.episodes/.writer.lock``
    ``flock`` held by the one writer allowed at a time (released by the kernel on a crash).

A *consolidated* file (see ``episode_writer.consolidate``) has the same layout as the index but
with real groups instead of external links: one self-contained file for sharing.

Inside the index (and a consolidated file)
------------------------------------------
File attributes:
    ``schema_version`` int (``SCHEMA_VERSION``), ``format`` = ``"robomimic"``,
    ``sources`` JSON object of what was recorded from (e.g. topic names), ``env_args`` JSON
    ``"{}"``, ``created`` ISO-8601 time of the first commit.
``data``  (group; attrs ``total`` = sum of ``num_samples``, and ``env_args`` again because
    robomimic reads it from this group)
``data/demo_<i>``
    ``h5py.ExternalLink("<name>.episodes/demo_<i>.hdf5", "/data/demo_<i>")``.  The filename is
    relative: HDF5 looks it up next to the index, whatever the working directory (it only falls
    back to the working directory when that file is missing, which the reader detects).
``mask/train``, ``mask/valid``
    Arrays of demo names as bytes (``dtype "S"``, like robomimic), recomputed on every commit by
    ``compute_split``; attr ``valid_fraction``.

Inside an episode (``/data/demo_<i>``; the episode file's root has attrs ``complete`` bool and
``schema_version``)
------------------------------------------------------------------------------------------------
Attributes: ``num_samples`` int = T, ``language_instruction`` str, ``success`` bool,
``action_dimension_names`` JSON list (optional).
``obs/<camera>_rgb``
    uint8 (T, H, W, 3), one frame per chunk, compression ``"lzf"`` (default), ``"gzip"`` or none.
``obs/<key>``
    any other observation, float32 (T, ...), e.g. ``joint_states`` (T, J), ``ee_pose`` (T, 7).
``actions``  float32 (T, D).
``timestamps``  float64 (T,), seconds, non-decreasing.

Train / valid split
-------------------
``compute_split`` is a pure function of the set of demo names: demos are ranked by the SHA-1 of
their name and the ``round(valid_fraction * n)`` lowest go to ``valid`` (at least one when there
are two or more demos and the fraction is positive, never all of them).  Recording order and
machine do not matter, and adding demos rarely moves an existing one.
"""

from __future__ import annotations

from collections.abc import Iterable
import hashlib
from pathlib import Path
import re

SCHEMA_VERSION = 1
FORMAT = 'robomimic'
INDEX_SUFFIXES = ('.hdf5', '.h5')
EPISODES_DIR_SUFFIX = '.episodes'
PARTIAL_SUFFIX = '.partial.hdf5'
EPISODE_SUFFIX = '.hdf5'
LOCK_FILE_NAME = '.writer.lock'
IMAGE_SUFFIX = '_rgb'
SPLITS = ('train', 'valid')
DEFAULT_VALID_FRACTION = 0.1
IMAGE_COMPRESSIONS = ('lzf', 'gzip', None)

_DEMO_RE = re.compile(r'^demo_(\d+)$')
_EPISODE_FILE_RE = re.compile(r'^demo_(\d+)\.hdf5$')
_PARTIAL_FILE_RE = re.compile(r'^demo_(\d+)\.partial\.hdf5$')


class EpisodeStorageError(Exception):
    """Base class of every error raised by the episode storage."""


class EpisodeFormatError(EpisodeStorageError, ValueError):
    """Data handed to the writer does not fit the schema (shape, dtype, key, value)."""


class EpisodeWriteError(EpisodeStorageError, OSError):
    """The disk refused a write; committed episodes are untouched."""


class EpisodeStateError(EpisodeStorageError, RuntimeError):
    """A call came at the wrong time (no episode in progress, one already in progress...)."""


class EpisodePathError(EpisodeStorageError, ValueError):
    """A dataset path is unacceptable (outside the allowed root, wrong suffix, not an index)."""


class EpisodeReadError(EpisodeStorageError):
    """A file, link or demo could not be read."""


def demo_name(index: int) -> str:
    """Return the robomimic name of demo ``index``."""
    return f'demo_{index}'


def demo_index(name: str) -> int:
    """Return the number of a ``demo_<i>`` name, raising ValueError for anything else."""
    match = _DEMO_RE.match(name)
    if match is None:
        raise ValueError(f'not a demo name: {name!r} (expected demo_<i>)')
    return int(match.group(1))


def is_demo_name(name: str) -> bool:
    """Tell whether ``name`` is a ``demo_<i>`` name."""
    return _DEMO_RE.match(name) is not None


def sorted_demo_names(names: Iterable[str]) -> list[str]:
    """Sort demo names numerically (demo_2 before demo_10), dropping anything else."""
    return sorted((n for n in names if is_demo_name(n)), key=demo_index)


def is_image_key(key: str) -> bool:
    """Tell whether an observation key holds RGB frames (its name ends in ``_rgb``)."""
    return key.endswith(IMAGE_SUFFIX)


def episodes_dir_for(index_path: Path) -> Path:
    """Return the directory holding the episode files of the index at ``index_path``."""
    return index_path.with_name(index_path.stem + EPISODES_DIR_SUFFIX)


def episode_file_name(index: int) -> str:
    """Return the file name of a finished episode."""
    return f'demo_{index}{EPISODE_SUFFIX}'


def partial_file_name(index: int) -> str:
    """Return the file name of an episode still being recorded."""
    return f'demo_{index}{PARTIAL_SUFFIX}'


def episode_file_index(file_name: str) -> int | None:
    """Return ``i`` for ``demo_<i>.hdf5``, None for any other name (partials included)."""
    match = _EPISODE_FILE_RE.match(file_name)
    return int(match.group(1)) if match else None


def partial_file_index(file_name: str) -> int | None:
    """Return ``i`` for ``demo_<i>.partial.hdf5``, None for any other name."""
    match = _PARTIAL_FILE_RE.match(file_name)
    return int(match.group(1)) if match else None


def check_valid_fraction(valid_fraction: float) -> float:
    """Return ``valid_fraction`` as float, raising ValueError unless 0 <= it < 1."""
    fraction = float(valid_fraction)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f'valid_fraction must be in [0, 1), got {valid_fraction!r}')
    return fraction


def compute_split(names: Iterable[str], valid_fraction: float) -> dict[str, list[str]]:
    """Split demo names into train / valid deterministically (rule in the module docstring)."""
    fraction = check_valid_fraction(valid_fraction)
    ordered = sorted_demo_names(names)
    count = len(ordered)
    n_valid = round(fraction * count)
    if fraction > 0.0 and count >= 2:
        n_valid = min(max(n_valid, 1), count - 1)
    ranked = sorted(ordered, key=lambda n: hashlib.sha1(n.encode('utf-8')).hexdigest())
    valid = set(ranked[:n_valid])
    return {
        'train': [n for n in ordered if n not in valid],
        'valid': [n for n in ordered if n in valid],
    }
