"""
``vla-train``: train the custom VLA from a YAML config, on one CPU or under ``torchrun``.

Examples::

    vla-train config/train_custom_vla.yaml --set data=[episodes/pick.hdf5] --set max_steps=100
    vla-train config/train_custom_vla.yaml --resume
    torchrun --standalone --nproc_per_node=4 -m humanoid_vla.training.cli config.yaml

Exit status: 0 when training finished, 2 for an unusable config or missing files.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from humanoid_vla.actions import ActionSpecMismatchError, InvalidActionSpecError
from humanoid_vla.checkpoint import CheckpointError
from humanoid_vla.data import EpisodeStorageError
from humanoid_vla.training.config import TrainingConfig, TrainingConfigError
from humanoid_vla.training.trainer import Trainer

PROG = 'vla-train'
_USER_ERRORS = (
    TrainingConfigError,
    FileNotFoundError,
    FileExistsError,
    EpisodeStorageError,
    CheckpointError,
    ActionSpecMismatchError,
    InvalidActionSpecError,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``vla-train``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='Train the custom VLA on HDF5 episodes (see the config file).')
    parser.add_argument('config', help='training config YAML (config/train_custom_vla.yaml)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a config field (value parsed as YAML; model.<field> '
                             'for model fields); repeatable')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the last checkpoint in output_dir (if any)')
    parser.add_argument('--no-progress', action='store_true',
                        help='print nothing while training')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, train, and return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        config = TrainingConfig.from_yaml(args.config, args.overrides)
        trainer = Trainer(config, resume=args.resume, show_progress=not args.no_progress)
    except _USER_ERRORS as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return 2
    try:
        trainer.train()
    finally:
        trainer.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
