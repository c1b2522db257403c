"""
Read episodes from an index (external links) or a consolidated file, the same way.

HDF5 looks up a relative external link next to the index first, but silently falls back to the
current working directory when that file is missing; ``open_demo_group`` checks which file was
actually opened so a stray copy elsewhere is never read in its place.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
from types import TracebackType

import h5py
from humanoid_vla.data.schema import EpisodeReadError, SCHEMA_VERSION, sorted_demo_names, SPLITS
import numpy as np


@dataclass(frozen=True)
class Episode:
    """One demo loaded into memory."""

    name: str
    observations: dict[str, np.ndarray]
    actions: np.ndarray
    timestamps: np.ndarray
    instruction: str
    success: bool


def _same_file(opened: str, expected: Path) -> bool:
    try:
        return os.path.samefile(opened, expected)
    except OSError:
        return False


def open_demo_group(handle: h5py.File, name: str, index_dir: Path) -> h5py.Group:
    """
    Return the group of demo ``name``, following and checking its external link.

    ``index_dir`` is the absolute directory of the index file, captured when it was opened
    (``handle.filename`` may be relative to a working directory that has since changed).
    """
    if 'data' not in handle:
        raise EpisodeReadError(f'{handle.filename} has no data group')
    link = handle['data'].get(name, getlink=True)
    if link is None:
        raise EpisodeReadError(f'no demo named {name!r} in {handle.filename}')
    try:
        group = handle['data'][name]
    except (KeyError, OSError) as exc:
        if isinstance(link, h5py.ExternalLink):
            raise EpisodeReadError(
                f'{name}: the episode file {index_dir / link.filename} is missing or unreadable '
                f'(broken external link: {exc})') from exc
        raise EpisodeReadError(f'{name} in {handle.filename} is unreadable: {exc}') from exc
    if not isinstance(group, h5py.Group):
        raise EpisodeReadError(f'{name} in {handle.filename} is not a group')
    if isinstance(link, h5py.ExternalLink):
        expected = index_dir / link.filename
        if not _same_file(group.file.filename, expected):
            raise EpisodeReadError(
                f'{name}: HDF5 resolved the link to {group.file.filename}, not {expected} '
                '(the episode file next to the index is missing)')
    return group


def _attr_str(group: h5py.Group, key: str, default: str = '') -> str:
    value = group.attrs.get(key, default)
    return value.decode('utf-8') if isinstance(value, bytes) else str(value)


class EpisodeReader:
    """Read-only access to the demos of a dataset; use as a context manager."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = Path(path).expanduser().resolve()
        if not self._path.is_file():
            raise EpisodeReadError(f'no such episode file: {path}')
        try:
            self._file = h5py.File(self._path, 'r')
        except OSError as exc:
            raise EpisodeReadError(f'cannot open {self._path}: {exc}') from exc
        version = self._file.attrs.get('schema_version')
        if version is not None and int(version) > SCHEMA_VERSION:
            self._file.close()
            raise EpisodeReadError(
                f'{self._path} has schema_version {version}; this reader knows up to '
                f'{SCHEMA_VERSION}')
        if 'data' not in self._file:
            self._file.close()
            raise EpisodeReadError(f'{self._path} has no data group: not an episode file')

    @property
    def path(self) -> Path:
        """Return the absolute path of the file opened."""
        return self._path

    @property
    def sources(self) -> dict:
        """Return what the data was recorded from (the ``sources`` file attribute)."""
        return json.loads(_attr_str(self._file, 'sources', '{}'))

    def __enter__(self) -> EpisodeReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (episode files opened through links close with their objects)."""
        self._file.close()

    def demo_names(self) -> list[str]:
        """Return the demo names, sorted numerically."""
        return sorted_demo_names(self._file['data'])

    def demo_group(self, name: str) -> h5py.Group:
        """Return the h5py group of demo ``name``, for lazy reads."""
        return open_demo_group(self._file, name, self._path.parent)

    def instruction(self, name: str) -> str:
        """Return the language instruction of demo ``name``."""
        return _attr_str(self.demo_group(name), 'language_instruction')

    def success(self, name: str) -> bool:
        """Return whether demo ``name`` was recorded as a successful episode (False if unset)."""
        return bool(self.demo_group(name).attrs.get('success', False))

    def num_samples(self, name: str) -> int:
        """Return the number of steps of demo ``name``."""
        return int(self.demo_group(name).attrs['num_samples'])

    def read_demo(self, name: str) -> Episode:
        """Load demo ``name`` fully into memory."""
        group = self.demo_group(name)
        try:
            observations = {key: group['obs'][key][()] for key in group['obs']}
            return Episode(
                name=name,
                observations=observations,
                actions=group['actions'][()],
                timestamps=group['timestamps'][()],
                instruction=_attr_str(group, 'language_instruction'),
                success=self.success(name),
            )
        except (KeyError, OSError) as exc:
            raise EpisodeReadError(f'{name} in {self._path} is incomplete or damaged: {exc}') \
                from exc

    def split(self, split: str) -> list[str]:
        """Return the demo names of the ``train`` or ``valid`` mask, sorted numerically."""
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        key = f'mask/{split}'
        if key not in self._file:
            raise EpisodeReadError(f'{self._path} has no {key}')
        names = [n.decode('utf-8') if isinstance(n, bytes) else str(n)
                 for n in self._file[key][()]]
        return sorted_demo_names(names)
