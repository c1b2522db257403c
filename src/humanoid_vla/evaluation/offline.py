"""
Offline evaluation: how far a checkpoint's actions are from recorded ones, in robot units.

The checkpoint predicts a chunk of actions for every step of the held-out episodes; predictions
are un-normalised with the checkpoint's own statistics and compared with the recorded actions
that follow the step (entries past an episode's end are not counted).  MSE and MAE come per
action dimension (named by the checkpoint's ActionSpec, e.g. ``right_hand_pose.x`` in metres)
and overall.  This says how well demonstrations are imitated, not whether tasks succeed: task
success only comes from running the policy, in simulation or on the robot.

``--swap-instructions`` evaluates every step with another episode's instruction instead (a fixed
random pairing of the distinct instructions): the rise in error over the matched run measures
how much the checkpoint's actions depend on what the instruction says.  A language-blind
policy shows none.

Command line: ``vla-eval-offline CHECKPOINT DATA.hdf5 [...] [--split valid] [--json out.json]``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import os
from pathlib import Path
import sys
from typing import Any, Sequence

from humanoid_vla.actions import ActionSpecMismatchError
from humanoid_vla.checkpoint import CheckpointError, load_checkpoint
from humanoid_vla.data import EpisodeStorageError
from humanoid_vla.data.dataset import EpisodeDataset
import numpy as np
import torch
from torch.utils.data import DataLoader

PROG = 'vla-eval-offline'
SPLIT_CHOICES = ('valid', 'train', 'all')


@dataclass
class OfflineReport:
    """
    Action errors of a checkpoint on recorded episodes, in robot units.

    ``mse`` / ``mae`` are per dimension (same order as ``dimension_names``); ``overall_*``
    average over every dimension and counted entry.  ``num_steps`` steps were evaluated, giving
    ``num_entries`` (step, chunk position) pairs inside their episodes.  ``swapped_instructions``
    says each step was given another episode's instruction.
    """

    checkpoint: str
    data: list[str]
    split: str | None
    num_episodes: int
    num_steps: int
    num_entries: int
    chunk_size: int
    use_instruction: bool
    dimension_names: list[str]
    mse: list[float]
    mae: list[float]
    overall_mse: float
    overall_mae: float
    swapped_instructions: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able values."""
        return asdict(self)

    def format_table(self) -> str:
        """Return a plain-text table: one row per dimension, then the overall row."""
        split = 'all' if self.split is None else self.split
        instruction = 'given' if self.use_instruction else 'withheld'
        if self.use_instruction and self.swapped_instructions:
            instruction = "swapped for another episode's"
        width = max(len('overall'), *(len(n) for n in self.dimension_names))
        lines = [
            f'checkpoint {self.checkpoint}',
            f'{split} split: {self.num_episodes} episodes, {self.num_steps} steps, '
            f'{self.num_entries} action entries (chunk {self.chunk_size}), '
            f'instruction {instruction}',
            f'{"dimension":<{width}}  {"MSE":>11}  {"MAE":>11}',
        ]
        for name, mse, mae in zip(self.dimension_names, self.mse, self.mae):
            lines.append(f'{name:<{width}}  {mse:11.4e}  {mae:11.4e}')
        lines.append(f'{"overall":<{width}}  {self.overall_mse:11.4e}  {self.overall_mae:11.4e}')
        return '\n'.join(lines)


def evaluate_offline(
    checkpoint_dir: str | os.PathLike,
    data_paths: str | os.PathLike | Sequence[str | os.PathLike],
    split: str | None = 'valid',
    batch_size: int = 32,
    device: str | torch.device = 'cpu',
    num_workers: int = 0,
    use_instruction: bool | None = None,
    swap_instructions: bool = False,
) -> OfflineReport:
    """
    Evaluate a checkpoint on the ``split`` episodes (None: all) of ``data_paths``.

    Images come from the observation the checkpoint was trained on (its ``training_args.json``)
    and instructions are withheld when it was trained without them, unless ``use_instruction``
    says otherwise.  ``swap_instructions`` gives each step the instruction
    :func:`swapped_instructions` pairs with its own.
    """
    if isinstance(data_paths, (str, os.PathLike)):
        data_paths = [data_paths]
    paths = [Path(p).expanduser() for p in data_paths]
    if not paths:
        raise ValueError('evaluate_offline needs at least one episode file')
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"data file(s) not found: {', '.join(missing)}")
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    loaded = load_checkpoint(checkpoint_dir, device=device)
    model, stats, spec = loaded.model, loaded.stats, loaded.spec
    config = model.config
    extra = loaded.extra or {}
    if use_instruction is None:
        use_instruction = bool(extra.get('use_instruction', True))
    proprio_key = extra.get('proprio_key') if config.use_proprio else None
    if config.use_proprio and not proprio_key:
        raise CheckpointError(
            f'{checkpoint_dir} needs proprio but its training_args.json does not name the '
            'observation (proprio_key)')
    dataset = EpisodeDataset(paths, split=split, image_key=extra.get('image_key'),
                             chunk_size=config.chunk_size, image_size=config.image_size,
                             augment=False, proprio_key=proprio_key,
                             action_offset=int(extra.get('action_offset', 0)),
                             image_crop=config.crop)
    spec.check_dim(dataset.action_dim, f'actions in {", ".join(map(str, paths))}')
    distinct = sorted(set(dataset.instructions())) if use_instruction else ['']
    replacement = swapped_instructions(distinct) if swap_instructions and use_instruction else {}
    model.instruction_cache.max_size = max(model.instruction_cache.max_size, len(distinct) + 1)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    squared = np.zeros(spec.dim)
    absolute = np.zeros(spec.dim)
    entries = 0
    try:
        for batch in loader:
            texts = list(batch['instruction']) if use_instruction else [''] * len(
                batch['instruction'])
            texts = [replacement.get(text, text) for text in texts]
            tokens, mask = model.encode_instructions(texts)
            proprio = batch.get('proprio')
            with torch.inference_mode():
                output = model(
                    pixel_values=batch['image'].to(model.device),
                    instruction_embeddings=tokens,
                    attention_mask=mask,
                    proprio=None if proprio is None else proprio.to(model.device),
                )
            predicted = stats.unnormalize(output.predicted_actions.float().cpu().numpy())
            counted = batch['action_mask'].numpy()
            diff = predicted[counted] - batch['actions'].numpy().astype(np.float64)[counted]
            squared += np.square(diff).sum(axis=0)
            absolute += np.abs(diff).sum(axis=0)
            entries += diff.shape[0]
    finally:
        dataset.close()
    mse = squared / entries
    mae = absolute / entries
    return OfflineReport(
        checkpoint=str(checkpoint_dir),
        data=[str(p) for p in paths],
        split=split,
        num_episodes=dataset.num_episodes,
        num_steps=len(dataset),
        num_entries=entries,
        chunk_size=config.chunk_size,
        use_instruction=use_instruction,
        dimension_names=spec.dimension_names(),
        mse=mse.tolist(),
        mae=mae.tolist(),
        overall_mse=float(mse.mean()),
        overall_mae=float(mae.mean()),
        swapped_instructions=bool(replacement),
    )


def swapped_instructions(distinct: Sequence[str], seed: int = 0) -> dict[str, str]:
    """
    Pair every instruction with a different one (a seeded random derangement).

    Random rather than neighbouring in sorted order: sorted neighbours mostly name the same
    object in other words, which would hide how much the named object matters.
    """
    texts = sorted(set(distinct))
    if len(texts) < 2:
        raise ValueError('swapping instructions needs at least two distinct instructions')
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(texts))
        if all(order != np.arange(len(texts))):
            return {text: texts[index] for text, index in zip(texts, order)}


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate, print the table, optionally write JSON; 2 for unusable inputs."""
    parser = argparse.ArgumentParser(
        prog=PROG, description='Action MSE / MAE of a custom VLA checkpoint on recorded '
                               'episodes, per dimension, in robot units.')
    parser.add_argument('checkpoint', help='checkpoint directory (e.g. <output_dir>/final)')
    parser.add_argument('data', nargs='+', help='HDF5 index or consolidated episode file(s)')
    parser.add_argument('--split', choices=SPLIT_CHOICES, default='valid',
                        help='episodes to evaluate on (default: the held-out valid split)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--device', default='cpu', help="torch device, e.g. 'cpu' or 'cuda'")
    parser.add_argument('--json', type=Path, metavar='PATH', help='also write the report here')
    parser.add_argument('--swap-instructions', action='store_true',
                        help="give each step another episode's instruction (how much the "
                             'actions depend on the instruction)')
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        report = evaluate_offline(
            args.checkpoint, args.data, split=None if args.split == 'all' else args.split,
            batch_size=args.batch_size, device=args.device, num_workers=args.num_workers,
            swap_instructions=args.swap_instructions)
    except (FileNotFoundError, CheckpointError, EpisodeStorageError, ActionSpecMismatchError,
            ValueError) as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return 2
    print(report.format_table())
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + '\n')
        print(f'report written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
