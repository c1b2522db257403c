"""
Check an episode file against ``schema`` and list what is wrong instead of crashing.

Usage: ``vla-validate-episodes FILE [FILE ...] [--quiet]`` (or ``python -m
humanoid_vla.data.validate``).  Exit status: 0 valid, 1 problems found, 2 usage error.
Every dataset is read in full, so damage anywhere in an episode file is found.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
import json
from pathlib import Path
import sys

import h5py
from humanoid_vla.data.episode_reader import open_demo_group
from humanoid_vla.data.schema import (
    episode_file_index,
    EpisodeReadError,
    episodes_dir_for,
    FORMAT,
    is_image_key,
    partial_file_index,
    SCHEMA_VERSION,
    sorted_demo_names,
    SPLITS,
)
import numpy as np

# Image datasets are read this many frames at a time, to bound memory on long episodes.
_IMAGE_BLOCK = 64


@dataclass
class EpisodeSummary:
    """What the validator learnt about one demo (None where it could not be read)."""

    name: str
    length: int | None = None
    instruction: str | None = None
    success: bool | None = None


@dataclass
class ValidationReport:
    """Problems make a file invalid; warnings (e.g. leftover partial episodes) do not."""

    path: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    episodes: list[EpisodeSummary] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def _check_file_attrs(handle: h5py.File, report: ValidationReport) -> None:
    version = handle.attrs.get('schema_version')
    if version is None:
        report.problems.append('file attribute schema_version is missing')
    elif int(version) != SCHEMA_VERSION:
        report.problems.append(f'schema_version is {version}, expected {SCHEMA_VERSION}')
    fmt = handle.attrs.get('format')
    if fmt != FORMAT:
        report.problems.append(f'file attribute format is {fmt!r}, expected {FORMAT!r}')
    for key in ('sources', 'env_args'):
        try:
            json.loads(handle.attrs[key])
        except KeyError:
            report.problems.append(f'file attribute {key} is missing')
        except (TypeError, ValueError):
            report.problems.append(f'file attribute {key} is not valid JSON')


def _read_all(dataset: h5py.Dataset) -> np.ndarray | None:
    """Read a dataset, in blocks for images; None when it does not fit in memory sensibly."""
    if dataset.ndim == 4:
        for start in range(0, dataset.shape[0], _IMAGE_BLOCK):
            dataset[start:start + _IMAGE_BLOCK]
        return None
    return dataset[()]


def _check_demo(group: h5py.Group, summary: EpisodeSummary, problems: list[str]) -> None:
    name = summary.name
    length = group.attrs.get('num_samples')
    if length is None:
        problems.append(f'{name}: attribute num_samples is missing')
    else:
        summary.length = int(length)
    instruction = group.attrs.get('language_instruction')
    if not isinstance(instruction, str) or not instruction.strip():
        problems.append(f'{name}: language_instruction is missing or empty')
    else:
        summary.instruction = instruction
    if 'success' not in group.attrs:
        problems.append(f'{name}: attribute success is missing')
    else:
        summary.success = bool(group.attrs['success'])

    lengths: dict[str, int] = {}
    for key in ('actions', 'timestamps'):
        if not isinstance(group.get(key), h5py.Dataset):
            problems.append(f'{name}: dataset {key} is missing')
            continue
        lengths[key] = group[key].shape[0] if group[key].ndim else -1
    obs = group.get('obs')
    if not isinstance(obs, h5py.Group) or not len(obs):
        problems.append(f'{name}: obs group is missing or empty')
        obs = {}
    for key in obs:
        dataset = obs[key]
        if not isinstance(dataset, h5py.Dataset) or not dataset.ndim:
            problems.append(f'{name}: obs/{key} is not an array')
            continue
        lengths[f'obs/{key}'] = dataset.shape[0]
        if is_image_key(key) and (dataset.dtype != np.uint8 or dataset.ndim != 4
                                  or dataset.shape[-1] != 3):
            problems.append(f'{name}: image obs/{key} must be uint8 (T, H, W, 3), '
                            f'got {dataset.dtype} {dataset.shape}')
        _read_all(dataset)
    if summary.length is not None:
        for key, count in lengths.items():
            if count != summary.length:
                problems.append(
                    f'{name}: {key} has {count} rows but num_samples is {summary.length}')

    if 'actions' in lengths:
        actions = group['actions'][()]
        if actions.ndim != 2 or actions.dtype.kind != 'f':
            problems.append(f'{name}: actions must be float (T, D), got {actions.dtype} '
                            f'{actions.shape}')
        elif not np.all(np.isfinite(actions)):
            problems.append(f'{name}: actions contain NaN or inf')
    if 'timestamps' in lengths:
        stamps = group['timestamps'][()]
        if stamps.ndim != 1 or not np.all(np.isfinite(stamps)):
            problems.append(f'{name}: timestamps must be finite, shape (T,)')
        elif np.any(np.diff(stamps) < 0):
            problems.append(f'{name}: timestamps go back in time')


def _check_masks(handle: h5py.File, demos: list[str], report: ValidationReport) -> None:
    if 'mask' not in handle:
        report.problems.append('mask group is missing')
        return
    seen: dict[str, str] = {}
    for split in SPLITS:
        key = f'mask/{split}'
        if key not in handle:
            report.problems.append(f'{key} is missing')
            continue
        for raw in handle[key][()]:
            entry = raw.decode('utf-8') if isinstance(raw, bytes) else str(raw)
            if entry not in demos:
                report.problems.append(f'{key} references {entry!r}, which is not a demo')
            elif entry in seen:
                report.problems.append(f'{entry} is in both mask/{seen[entry]} and {key}')
            else:
                seen[entry] = split
    for name in demos:
        if name not in seen and all(f'mask/{s}' in handle for s in SPLITS):
            report.problems.append(f'{name} is in no mask')


def _check_episodes_dir(path: Path, linked: set[str], report: ValidationReport) -> None:
    """Warn about files a writer left next to the index that are not (yet) linked."""
    directory = episodes_dir_for(path)
    if not directory.is_dir():
        return
    for entry in sorted(p.name for p in directory.iterdir()):
        if partial_file_index(entry) is not None:
            report.warnings.append(f'{directory.name}/{entry} is an unfinished episode '
                                   '(not part of the dataset)')
        index = episode_file_index(entry)
        if index is not None and f'demo_{index}' not in linked:
            report.warnings.append(f'{directory.name}/{entry} is not linked from the index '
                                   '(reopening the dataset with EpisodeWriter links it)')


def validate_file(path: str | Path) -> ValidationReport:
    """Check ``path`` fully; every defect becomes a line in ``report.problems``."""
    report = ValidationReport(Path(path))
    resolved = Path(path).expanduser().resolve()
    try:
        handle = h5py.File(resolved, 'r')
    except OSError as exc:
        report.problems.append(f'cannot open {path} as HDF5 (truncated or not HDF5?): {exc}')
        return report
    with handle:
        _check_file_attrs(handle, report)
        if not isinstance(handle.get('data'), h5py.Group):
            report.problems.append('data group is missing')
            return report
        demos = sorted_demo_names(handle['data'])
        total = 0
        for name in demos:
            summary = EpisodeSummary(name)
            report.episodes.append(summary)
            try:
                group = open_demo_group(handle, name, resolved.parent)
                _check_demo(group, summary, report.problems)
            except EpisodeReadError as exc:
                report.problems.append(str(exc))
            except (OSError, KeyError, ValueError, TypeError) as exc:
                report.problems.append(f'{name}: unreadable ({type(exc).__name__}: {exc})')
            total += summary.length or 0
        recorded = handle['data'].attrs.get('total')
        all_read = all(e.length is not None for e in report.episodes)
        if recorded is None:
            report.problems.append('data attribute total is missing')
        elif all_read and int(recorded) != total:
            report.problems.append(f'data attribute total is {recorded}, the demos hold {total}')
        _check_masks(handle, demos, report)
        _check_episodes_dir(resolved, set(demos), report)
    return report


def format_report(report: ValidationReport, quiet: bool = False) -> str:
    """Render a report for people: episodes (unless quiet), then warnings and problems."""
    lines = []
    if not quiet:
        lines.append(f'{report.path}: {len(report.episodes)} episodes, '
                     f'{sum(e.length or 0 for e in report.episodes)} steps')
        for episode in report.episodes:
            length = '?' if episode.length is None else episode.length
            success = {None: '?', True: 'success', False: 'failure'}[episode.success]
            instruction = '?' if episode.instruction is None else repr(episode.instruction)
            lines.append(f'  {episode.name:>10}  {length:>6} steps  {success:<8} {instruction}')
        lines.extend(f'warning: {w}' for w in report.warnings)
    lines.extend(f'problem: {p}' for p in report.problems)
    if not quiet or report.problems:
        verdict = 'OK' if report.ok else f'INVALID ({len(report.problems)} problem(s))'
        lines.append(f'{report.path}: {verdict}')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the files named on the command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog='vla-validate-episodes', description='Check HDF5 episode files (robomimic layout).')
    parser.add_argument('files', nargs='+', type=Path, metavar='FILE',
                        help='index (<name>.hdf5) or consolidated file')
    parser.add_argument('--quiet', '-q', action='store_true',
                        help='print nothing for valid files, only problems')
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        parser.print_usage(sys.stderr)
        print(f'vla-validate-episodes: no such file: {", ".join(missing)}', file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        report = validate_file(path)
        text = format_report(report, quiet=args.quiet)
        if text:
            print(text)
        status = max(status, 0 if report.ok else 1)
    return status


if __name__ == '__main__':
    sys.exit(main())
