"""
HDF5 episode storage (robomimic layout, crash-safe), validation and the torch dataset.

The layout is documented in ``humanoid_vla.data.schema``.  ``EpisodeDataset`` is loaded on first
use so that recording and validation do not import torch.
"""

from __future__ import annotations

from typing import Any

from humanoid_vla.data.episode_reader import Episode, EpisodeReader
from humanoid_vla.data.episode_writer import consolidate, EpisodeWriter
from humanoid_vla.data.schema import (
    EpisodeFormatError,
    EpisodePathError,
    EpisodeReadError,
    EpisodeStateError,
    EpisodeStorageError,
    EpisodeWriteError,
    SCHEMA_VERSION,
)
from humanoid_vla.data.validate import validate_file, ValidationReport

__all__ = [
    'consolidate',
    'Episode',
    'EpisodeDataset',
    'EpisodeFormatError',
    'EpisodePathError',
    'EpisodeReader',
    'EpisodeReadError',
    'EpisodeStateError',
    'EpisodeStorageError',
    'EpisodeWriteError',
    'EpisodeWriter',
    'SCHEMA_VERSION',
    'validate_file',
    'ValidationReport',
]


def __getattr__(name: str) -> Any:
    """Import ``EpisodeDataset`` (and so torch) only when it is asked for."""
    if name == 'EpisodeDataset':
        from humanoid_vla.data.dataset import EpisodeDataset
        return EpisodeDataset
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
