"""
Crash-safe recording of episodes into the layout described in ``schema``.

Every finished episode is its own fsynced file and the index is only ever replaced atomically, so
a SIGKILL or power cut at any moment loses at most the episode being recorded.  The episodes
directory is the source of truth: opening a writer relinks every ``demo_<i>.hdf5`` found there
(also one renamed just before a crash but not yet indexed) and drops links to deleted files.
"""

from __future__ import annotations

from collections.abc import Mapping
import datetime
import fcntl
import gc
import json
import logging
import math
import os
from pathlib import Path
from types import TracebackType

import h5py
from humanoid_vla.data.schema import (
    check_valid_fraction,
    compute_split,
    demo_index,
    demo_name,
    episode_file_index,
    episode_file_name,
    EpisodeFormatError,
    EpisodePathError,
    EpisodeReadError,
    episodes_dir_for,
    EpisodeStateError,
    EpisodeStorageError,
    EpisodeWriteError,
    FORMAT,
    IMAGE_COMPRESSIONS,
    INDEX_SUFFIXES,
    is_demo_name,
    is_image_key,
    LOCK_FILE_NAME,
    partial_file_index,
    partial_file_name,
    SCHEMA_VERSION,
    sorted_demo_names,
    SPLITS,
)
import numpy as np

_LOG = logging.getLogger(__name__)

# Low-dimensional data is buffered and written in blocks this long (images go frame by frame).
_FLUSH_EVERY = 64
_ACTIONS = 'actions'
_TIMESTAMPS = 'timestamps'
# Episode attributes the writer sets itself (end_episode's `attributes` may not).
RESERVED_EPISODE_ATTRIBUTES = frozenset({'num_samples', 'success', 'language_instruction',
                                         'action_dimension_names'})
# h5py reports a failed write as OSError or, when HDF5 files it under flush/close, RuntimeError.
_H5_WRITE_ERRORS = (OSError, RuntimeError)


def resolve_index_path(path: str | os.PathLike, root_dir: str | os.PathLike | None = None) -> Path:
    """
    Return the absolute index path, refusing a wrong suffix or a path outside ``root_dir``.

    Both sides are resolved (symlinks and ``..`` included) before comparing, so a recorder
    given a user-supplied name cannot be talked into writing elsewhere.
    """
    resolved = Path(path).expanduser().resolve()
    if resolved.suffix not in INDEX_SUFFIXES:
        raise EpisodePathError(
            f'dataset path {str(path)!r} must end in one of {", ".join(INDEX_SUFFIXES)}')
    if root_dir is not None:
        root = Path(root_dir).expanduser().resolve()
        if not resolved.is_relative_to(root):
            raise EpisodePathError(
                f'dataset path {str(path)!r} resolves to {resolved}, '
                f'which is outside the allowed root directory {root}')
    return resolved


def fsync_path(path: Path) -> None:
    """Flush a file's or directory's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def _name_array(names: list[str]) -> np.ndarray:
    """Encode demo names the way robomimic stores masks (fixed-length bytes)."""
    return np.array([n.encode('utf-8') for n in names], dtype='S' if names else 'S1')


def _check_obs_key(key: object) -> str:
    if not isinstance(key, str) or not key or '/' in key or key in ('.', '..'):
        raise EpisodeFormatError(
            f'observation key {key!r} must be a non-empty string without "/"')
    return key


def _as_real_array(value: object, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise EpisodeFormatError(f'{what} is not array-like: {exc}') from exc
    if array.dtype.kind not in 'biuf':
        raise EpisodeFormatError(f'{what} must be real numbers, got dtype {array.dtype}')
    converted = array.astype(np.float32)
    if not np.all(np.isfinite(converted)):
        raise EpisodeFormatError(f'{what} contains NaN or inf (or overflows float32)')
    return converted


def _check_image(key: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise EpisodeFormatError(f'image observation {key!r} is not array-like: {exc}') from exc
    if array.dtype != np.uint8:
        raise EpisodeFormatError(f'image observation {key!r} must be uint8, got {array.dtype}')
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise EpisodeFormatError(
            f'image observation {key!r} must have shape (H, W, 3), got {array.shape}')
    return array


def _no_chunk_cache() -> h5py.h5p.PropDAID:
    """
    Return dataset access properties without a chunk cache.

    Every write then reaches the file inside ``add_step``, where a full disk is reported, and
    no dataset holds unwritten chunks: HDF5 2.0 segfaults when a dataset whose chunk flush failed
    is closed a second time, which h5py's ``File.close`` does.  h5py ignores ``rdcc_nbytes=0``,
    hence the explicit property list.
    """
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(0, 0, 1.0)
    return dapl


def _verify_episode_file(path: Path, name: str, num_steps: int) -> None:
    """Reopen a just-closed episode file: a write error hidden by close must not be renamed in."""
    with h5py.File(path, 'r') as episode:
        try:
            group = episode[f'data/{name}']
            datasets = [group['actions'], group['timestamps'], *group['obs'].values()]
        except KeyError as exc:
            raise OSError(f'{path} read back without {exc}') from exc
        if not episode.attrs.get('complete') or group.attrs.get('num_samples') != num_steps:
            raise OSError(f'{path} did not read back complete after closing')
        for dataset in datasets:
            if dataset.shape[0] != num_steps:
                raise OSError(f'{dataset.name} in {path} read back with {dataset.shape[0]} rows')


class _StepSpec:
    """Shapes fixed by the first step of an episode, against which later steps are checked."""

    def __init__(self, observations: dict[str, np.ndarray], action: np.ndarray) -> None:
        self.obs_shapes = {key: value.shape for key, value in observations.items()}
        self.action_dim = action.shape[0]

    def check(self, observations: dict[str, np.ndarray], action: np.ndarray) -> None:
        keys, expected = set(observations), set(self.obs_shapes)
        if keys != expected:
            raise EpisodeFormatError(
                f'observation keys changed within the episode: missing {sorted(expected - keys)}, '
                f'unexpected {sorted(keys - expected)}')
        for key, value in observations.items():
            if value.shape != self.obs_shapes[key]:
                raise EpisodeFormatError(
                    f'observation {key!r} has shape {value.shape}, '
                    f'the first step had {self.obs_shapes[key]}')
        if action.shape[0] != self.action_dim:
            raise EpisodeFormatError(
                f'action has {action.shape[0]} dimensions, the first step had {self.action_dim}')


class _ActiveEpisode:
    """The open ``.partial.hdf5`` file of the episode being recorded and its write buffers."""

    def __init__(self, index: int, path: Path, handle: h5py.File) -> None:
        self.index = index
        self.path = path
        self.handle = handle
        self.group: h5py.Group | None = None
        self.spec: _StepSpec | None = None
        self.num_steps = 0
        self.last_timestamp = -math.inf
        self.datasets: dict[str, h5py.Dataset] = {}
        self.buffers: dict[str, list[np.ndarray]] = {}
        self.written: dict[str, int] = {}
        self.failed = False

    # No h5py object is ever held in a local variable here: after a write error the traceback
    # would keep it alive, and closing a failed HDF5 file while objects are open can crash.

    def append_frame(self, name: str, frame: np.ndarray) -> None:
        """Write one image frame straight to the file."""
        self.datasets[name].resize(self.num_steps + 1, axis=0)
        self.datasets[name][self.num_steps] = frame

    def flush(self) -> None:
        """Append the buffered low-dimensional rows to their datasets."""
        for name, rows in self.buffers.items():
            if not rows:
                continue
            start = self.written[name]
            self.datasets[name].resize(start + len(rows), axis=0)
            self.datasets[name][start:start + len(rows)] = np.stack(rows)
            self.written[name] = start + len(rows)
            rows.clear()

    def finish(self, success: bool, action_names: list[str] | None,
               attributes: Mapping[str, object] | None = None) -> None:
        """Write the closing attributes, mark the file complete and close it."""
        self.flush()
        for key, value in (attributes or {}).items():
            self.group.attrs[key] = value
        self.group.attrs['num_samples'] = self.num_steps
        self.group.attrs['success'] = bool(success)
        if action_names is not None:
            self.group.attrs['action_dimension_names'] = json.dumps(action_names)
        self.handle.attrs['complete'] = True
        self.handle.flush()
        self.datasets.clear()
        self.group = None
        self.handle.close()

    def abandon(self) -> None:
        """
        Close the file after a write error, dropping every h5py object first.

        Closing a file whose writes failed while h5py objects of it are still alive can crash
        HDF5 2.0 (see ``_no_chunk_cache``), and the first close attempt itself may fail.
        """
        self.failed = True
        self.datasets.clear()
        self.group = None
        gc.collect()  # Tracebacks of the failed write may hold h5py objects in cycles.
        for _ in range(3):
            try:
                if self.handle.id.valid:
                    self.handle.close()
                return
            except (OSError, RuntimeError, ValueError):
                continue


class EpisodeWriter:
    """
    Record episodes one at a time into a crash-safe robomimic-layout dataset.

    Only one writer may hold a dataset (an ``flock`` on ``<name>.episodes/.writer.lock``).  A
    write error poisons the episode in progress: only ``discard_episode`` or ``close`` remain.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sources: dict | None = None,
        image_compression: str | None = 'lzf',
        valid_fraction: float = 0.1,
        action_dimension_names: list[str] | None = None,
        root_dir: str | os.PathLike | None = None,
    ) -> None:
        if image_compression not in IMAGE_COMPRESSIONS:
            raise ValueError(
                f'image_compression must be one of {IMAGE_COMPRESSIONS}, '
                f'got {image_compression!r}')
        if sources is not None and not isinstance(sources, dict):
            raise TypeError(f'sources must be a dict, got {type(sources).__name__}')
        try:
            self._new_sources = json.loads(json.dumps(sources or {}, sort_keys=True))
        except (TypeError, ValueError) as exc:
            raise ValueError(f'sources must be JSON-serialisable: {exc}') from exc
        if action_dimension_names is not None:
            action_dimension_names = [str(n) for n in action_dimension_names]
        self._path = resolve_index_path(path, root_dir)
        self._episodes_dir = episodes_dir_for(self._path)
        self._compression = image_compression
        self._valid_fraction = check_valid_fraction(valid_fraction)
        self._action_names = action_dimension_names
        self._active: _ActiveEpisode | None = None
        self._lock_fd: int | None = None
        self._demos: dict[str, int | None] = {}
        self._leftover_partials: list[Path] = []
        self._created = _now_iso()
        self._sources: dict = {}
        try:
            indexed = self._read_existing_index()  # First: refuse a foreign file untouched.
            self._open_directory()
            self._load_state(indexed)
            self._write_index()
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError) and not isinstance(exc, EpisodeStorageError):
                raise EpisodeWriteError(
                    f'cannot open dataset {self._path} for writing: {exc}') from exc
            raise

    # --- public API -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """Return the path of the index file."""
        return self._path

    @property
    def episodes_dir(self) -> Path:
        """Return the directory holding one file per episode."""
        return self._episodes_dir

    @property
    def episode_in_progress(self) -> bool:
        """Tell whether ``begin_episode`` was called without a matching end or discard."""
        return self._active is not None

    @property
    def num_demos(self) -> int:
        """Return the number of committed (linked) episodes."""
        return len(self._demos)

    @property
    def demo_names(self) -> list[str]:
        """Return the committed demo names, sorted numerically."""
        return sorted_demo_names(self._demos)

    @property
    def leftover_partials(self) -> list[Path]:
        """Return the ``.partial.hdf5`` files found on open (interrupted, never linked)."""
        return list(self._leftover_partials)

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def begin_episode(self, instruction: str) -> None:
        """Start recording an episode into a new ``demo_<i>.partial.hdf5``."""
        self._check_open()
        if self._active is not None:
            raise EpisodeStateError(
                f'episode {demo_name(self._active.index)} is still in progress: '
                'end_episode() or discard_episode() it first')
        if not isinstance(instruction, str) or not instruction.strip():
            raise EpisodeFormatError(
                f'instruction must be a non-empty string, got {instruction!r}')
        index = self._next_index
        path = self._episodes_dir / partial_file_name(index)
        try:
            active = _ActiveEpisode(index, path, h5py.File(path, 'w-'))
        except _H5_WRITE_ERRORS as exc:
            raise EpisodeWriteError(f'cannot create episode file {path}: {exc}') from exc
        message = None
        try:
            active.handle.attrs['complete'] = False
            active.handle.attrs['schema_version'] = SCHEMA_VERSION
            active.group = active.handle.create_group(f'data/{demo_name(index)}')
            active.group.attrs['language_instruction'] = instruction
            active.group.create_group('obs')
        except _H5_WRITE_ERRORS as exc:
            message = f'cannot create episode file {path}: {exc}'
        if message is not None:
            active.abandon()  # Outside the except block: see add_step.
            path.unlink(missing_ok=True)
            raise EpisodeWriteError(message)
        self._active = active
        self._next_index = index + 1

    def add_step(
        self,
        observations: Mapping[str, np.ndarray],
        action: np.ndarray,
        timestamp: float,
    ) -> None:
        """Append one step; a step that fails validation is rejected and the episode goes on."""
        active = self._require_active()
        obs, act, stamp = self._validate_step(active, observations, action, timestamp)
        try:
            if active.spec is None:
                self._create_datasets(active, obs, act)
                active.spec = _StepSpec(obs, act)
            for key, value in obs.items():
                if is_image_key(key):
                    active.append_frame(f'obs/{key}', value)
                else:
                    active.buffers[f'obs/{key}'].append(value)
            active.buffers[_ACTIONS].append(act)
            active.buffers[_TIMESTAMPS].append(np.float64(stamp))
            active.num_steps += 1
            active.last_timestamp = stamp
            if len(active.buffers[_ACTIONS]) >= _FLUSH_EVERY:
                active.flush()
            return
        except _H5_WRITE_ERRORS as exc:
            message = (f'writing step {active.num_steps} to {active.path} failed: {exc}; '
                       'the episode cannot be saved, discard_episode() it')
        # Outside the except block, so the h5py traceback (and the objects it holds) is gone.
        active.abandon()
        raise EpisodeWriteError(message)

    def end_episode(self, success: bool,
                    attributes: Mapping[str, int | float | str | bool] | None = None) -> str:
        """
        Commit the episode; returns its demo name once it and the index are on disk.

        ``attributes``: extra episode attributes (e.g. ``first_segment`` of a recovery
        demonstration); the layout's own names are refused.
        """
        active = self._require_active()
        reserved = set(attributes or {}) & RESERVED_EPISODE_ATTRIBUTES
        if reserved:
            raise EpisodeFormatError(f'episode attributes {sorted(reserved)} are written by the '
                                     'writer itself')
        if active.num_steps == 0:
            self.discard_episode()
            raise EpisodeFormatError('an episode needs at least one step; it was discarded')
        name = demo_name(active.index)
        final = self._episodes_dir / episode_file_name(active.index)
        message = None
        try:
            active.finish(success, self._action_names, attributes)
            _verify_episode_file(active.path, name, active.num_steps)
            fsync_path(active.path)
            os.replace(active.path, final)
        except _H5_WRITE_ERRORS as exc:
            message = (f'saving episode {name} to {final} failed: {exc}; committed episodes are '
                       'untouched, discard_episode() this one')
        if message is not None:
            active.abandon()  # Outside the except block: see add_step.
            raise EpisodeWriteError(message)
        # From here on the episode is whole under its final name: a failure below only delays
        # its link, which the next commit or the next writer on this dataset adds.
        self._active = None
        self._demos[name] = active.num_steps
        try:
            fsync_path(self._episodes_dir)
            self._write_index()
        except _H5_WRITE_ERRORS as exc:
            raise EpisodeWriteError(
                f'episode {name} is saved in {final} but the index {self._path} could not be '
                f'updated: {exc}; it will be linked on the next commit or when the dataset is '
                'reopened') from exc
        return name

    def discard_episode(self) -> None:
        """Drop the episode in progress and delete its partial file."""
        active = self._require_active(allow_failed=True)
        self._active = None
        active.abandon()  # The file is being deleted: how its close went does not matter.
        if active.index == self._next_index - 1:
            self._next_index = active.index
        try:
            active.path.unlink(missing_ok=True)
        except OSError as exc:
            raise EpisodeWriteError(
                f'cannot delete discarded episode {active.path}: {exc}') from exc

    def close(self) -> None:
        """Release the dataset; an episode still in progress stays on disk as ``.partial``."""
        active, self._active = self._active, None
        if active is not None:
            _LOG.warning('closing with episode %s unfinished; left uncommitted in %s',
                         demo_name(active.index), active.path)
            message = None
            try:
                if not active.failed:
                    active.flush()
            except _H5_WRITE_ERRORS as exc:
                message = str(exc)
            if message is not None:
                _LOG.warning('could not flush %s: %s', active.path, message)
            active.abandon()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # Closing the descriptor releases the flock.
            self._lock_fd = None

    # --- internals --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise EpisodeStateError(f'the writer for {self._path} is closed')

    def _require_active(self, allow_failed: bool = False) -> _ActiveEpisode:
        self._check_open()
        if self._active is None:
            raise EpisodeStateError('no episode in progress: call begin_episode() first')
        if self._active.failed and not allow_failed:
            raise EpisodeStateError(
                f'episode {demo_name(self._active.index)} hit a write error and cannot be '
                'saved: discard_episode() it')
        return self._active

    def _open_directory(self) -> None:
        if not self._path.parent.is_dir():
            raise EpisodePathError(f'directory {self._path.parent} does not exist')
        if not self._episodes_dir.is_dir():
            self._episodes_dir.mkdir()
            fsync_path(self._path.parent)
        fd = os.open(self._episodes_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise EpisodeStateError(
                f'dataset {self._path} is already open in another EpisodeWriter') from exc
        self._lock_fd = fd

    def _load_state(self, indexed: set[str]) -> None:
        """Link exactly the episode files on disk, reporting how that differs from the index."""
        highest = max((demo_index(n) for n in indexed), default=-1)
        for entry in sorted(os.listdir(self._episodes_dir)):
            index = episode_file_index(entry)
            partial = partial_file_index(entry)
            if partial is not None:
                self._leftover_partials.append(self._episodes_dir / entry)
                _LOG.warning('leftover partial episode %s (never committed) is not linked',
                             self._episodes_dir / entry)
                highest = max(highest, partial)
            if index is None:
                continue
            highest = max(highest, index)
            name = demo_name(index)
            self._demos[name] = self._episode_length(self._episodes_dir / entry, name)
            if name not in indexed:
                _LOG.warning('linking episode %s, which was saved but not yet indexed', entry)
        for name in sorted(set(indexed) - set(self._demos)):
            _LOG.warning('episode file of %s is gone; dropping it from the index', name)
        self._next_index = highest + 1

    def _read_existing_index(self) -> set[str]:
        if not self._path.exists():
            return set()
        try:
            with h5py.File(self._path, 'r') as index:
                if index.attrs.get('schema_version') is None or 'data' not in index:
                    raise EpisodePathError(
                        f'{self._path} exists but is not an episode index (no schema_version '
                        'attribute or data group); refusing to overwrite it')
                names = set()
                for name in index['data']:
                    link = index['data'].get(name, getlink=True)
                    if not isinstance(link, h5py.ExternalLink):
                        raise EpisodePathError(
                            f'{self._path} holds {name} itself rather than a link: it is a '
                            'consolidated (read-only) file, record into a new dataset instead')
                    if is_demo_name(name):
                        names.add(name)
                self._created = str(index.attrs.get('created', self._created))
                self._sources = json.loads(index.attrs.get('sources', '{}'))
        except OSError as exc:
            raise EpisodeWriteError(
                f'cannot read the existing index {self._path} ({exc}); if it is a damaged index '
                f'of this dataset, delete it and reopen: it is rebuilt from {self._episodes_dir}'
            ) from exc
        return names

    @staticmethod
    def _episode_length(path: Path, name: str) -> int | None:
        try:
            with h5py.File(path, 'r') as episode:
                return int(episode[f'data/{name}'].attrs['num_samples'])
        except (OSError, KeyError) as exc:
            _LOG.warning('episode file %s is unreadable (%s); linked anyway so that validation '
                         'reports it', path, exc)
            return None

    def _write_index(self) -> None:
        """Build the index from scratch next to the old one, then atomically replace it."""
        tmp = self._path.with_name(self._path.name + '.tmp')
        names = sorted_demo_names(self._demos)
        sources = {**self._sources, **self._new_sources}
        try:
            self._build_index(tmp, names, sources)
            fsync_path(tmp)
            os.replace(tmp, self._path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_path(self._path.parent)

    def _build_index(self, tmp: Path, names: list[str], sources: dict) -> None:
        with h5py.File(tmp, 'w') as index:
            index.attrs['schema_version'] = SCHEMA_VERSION
            index.attrs['format'] = FORMAT
            index.attrs['sources'] = json.dumps(sources, sort_keys=True)
            index.attrs['env_args'] = '{}'
            index.attrs['created'] = self._created
            data = index.create_group('data')
            data.attrs['total'] = sum(n for n in self._demos.values() if n is not None)
            data.attrs['env_args'] = '{}'
            for name in names:
                target = f'{self._episodes_dir.name}/{name}.hdf5'
                data[name] = h5py.ExternalLink(target, f'/data/{name}')
            mask = index.create_group('mask')
            mask.attrs['valid_fraction'] = self._valid_fraction
            split = compute_split(names, self._valid_fraction)
            for key in SPLITS:
                mask.create_dataset(key, data=_name_array(split[key]))

    def _validate_step(
        self,
        active: _ActiveEpisode,
        observations: Mapping[str, np.ndarray],
        action: np.ndarray,
        timestamp: float,
    ) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
        if not isinstance(observations, Mapping) or not observations:
            raise EpisodeFormatError('observations must be a non-empty dict of arrays')
        obs = {}
        for key, value in observations.items():
            key = _check_obs_key(key)
            if is_image_key(key):
                obs[key] = _check_image(key, value)
            else:
                obs[key] = _as_real_array(value, f'observation {key!r}')
        act = _as_real_array(action, 'action')
        if act.ndim != 1 or act.shape[0] == 0:
            raise EpisodeFormatError(
                f'action must be a non-empty 1-D array, got shape {act.shape}')
        if active.spec is not None:
            active.spec.check(obs, act)
        elif self._action_names is not None and len(self._action_names) != act.shape[0]:
            raise EpisodeFormatError(
                f'action has {act.shape[0]} dimensions but {len(self._action_names)} '
                'action_dimension_names were given')
        try:
            stamp = float(timestamp)
        except (TypeError, ValueError) as exc:
            raise EpisodeFormatError(f'timestamp must be a number, got {timestamp!r}') from exc
        if not math.isfinite(stamp):
            raise EpisodeFormatError(f'timestamp must be finite, got {stamp}')
        if stamp < active.last_timestamp:
            raise EpisodeFormatError(
                f'timestamp {stamp} goes back in time (previous step: {active.last_timestamp})')
        return obs, act, stamp

    def _create_datasets(
        self, active: _ActiveEpisode, obs: dict[str, np.ndarray], act: np.ndarray,
    ) -> None:
        group = active.group
        for key, value in obs.items():
            if is_image_key(key):
                active.datasets[f'obs/{key}'] = group['obs'].create_dataset(
                    key, shape=(0, *value.shape), maxshape=(None, *value.shape), dtype=np.uint8,
                    chunks=(1, *value.shape), compression=self._compression,
                    dapl=_no_chunk_cache())
            else:
                self._create_lowdim(active, f'obs/{key}', value.shape, np.float32)
        self._create_lowdim(active, _ACTIONS, act.shape, np.float32)
        self._create_lowdim(active, _TIMESTAMPS, (), np.float64)

    @staticmethod
    def _create_lowdim(active: _ActiveEpisode, name: str, shape: tuple, dtype: type) -> None:
        active.datasets[name] = active.group.create_dataset(
            name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
            chunks=(_FLUSH_EVERY, *shape), dapl=_no_chunk_cache())
        active.buffers[name] = []
        active.written[name] = 0


def consolidate(
    index_path: str | os.PathLike, out_path: str | os.PathLike, *, overwrite: bool = False,
) -> Path:
    """
    Copy a dataset into one self-contained HDF5 file (no external links) for sharing.

    The copy is written to ``<out>.tmp`` and renamed into place, so ``out_path`` is either
    absent or complete.  Datasets keep their chunking and compression.
    """
    src_path = Path(index_path)
    out = Path(out_path).expanduser().resolve()
    if out == src_path.expanduser().resolve():
        raise EpisodePathError('consolidate cannot write over its own input')
    if out.exists() and not overwrite:
        raise EpisodePathError(f'{out} already exists (pass overwrite=True to replace it)')
    try:
        src = h5py.File(src_path, 'r')
    except OSError as exc:
        raise EpisodeReadError(f'cannot open {src_path}: {exc}') from exc
    tmp = out.with_name(out.name + '.tmp')
    try:
        with src, h5py.File(tmp, 'w') as dst:
            if 'data' not in src:
                raise EpisodeReadError(f'{src_path} has no data group: not an episode file')
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            data = dst.create_group('data')
            for key, value in src['data'].attrs.items():
                data.attrs[key] = value
            for name in sorted_demo_names(src['data']):
                try:
                    group = src['data'][name]
                except (KeyError, OSError) as exc:
                    raise EpisodeReadError(
                        f'cannot read {name} of {src_path} (broken external link?): {exc}'
                    ) from exc
                src.copy(group, data, name=name)
            if 'mask' in src:
                src.copy(src['mask'], dst, name='mask')
        fsync_path(tmp)
        os.replace(tmp, out)
        fsync_path(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
