"""
Annotate recorded simulation episodes with where the named object's look-alikes stand.

    vla-sim-annotate-peers data/sim_demos/sim_demos.hdf5 --seed-start 1000

A recording of ``vla-sim-record`` walks seeds ``seed_start + i`` and its families in turn, so
episode i's scene can be rebuilt from its seed: this tool rebuilds it (no rendering), checks
that the task's instruction is the one recorded, and stores in the episode's attributes
``grounding_peers``, a JSON object of the base-frame positions (after the settle the recorder
waits) of

- ``colour``: every object of the target's colour, the target included;
- ``shape``: every object of the target's shape, the target included.

Training with ``grounding_peer_groups: [colour, shape]`` teaches two extra grounding maps to
light up those objects (see :class:`~humanoid_vla.data.EpisodeDataset`): what the colour word
and the shape word each pick out, apart, so that a colour-shape pair the training scenes never
showed can be found as the object both maps point at.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Optional, Sequence

from humanoid_vla.data.dataset import PEERS_ATTRIBUTE
from humanoid_vla.sim.catalog import split_name
from humanoid_vla.sim.tasks import FAMILIES, sample_task, SPLITS, TaskSpec
import numpy as np

PEER_GROUPS = ('colour', 'shape')


def peer_positions(task: TaskSpec, positions: dict[str, np.ndarray]) -> dict[str, list]:
    """Return, per peer group, the positions of the scene's objects sharing it with the target."""
    colour, shape = split_name(task.target)
    sharing = {'colour': lambda name: split_name(name)[0] == colour,
               'shape': lambda name: split_name(name)[1] == shape}
    return {group: [[round(float(v), 5) for v in positions[name]] for name in task.objects
                    if sharing[group](name)]
            for group in PEER_GROUPS}


def demo_order(names: Sequence[str]) -> list[str]:
    """Return ``demo_<i>`` names in recording order (i ascending); refuse other names."""
    numbered = []
    for name in names:
        match = re.fullmatch(r'demo_(\d+)', name)
        if match is None:
            raise ValueError(f'episode {name!r} is not named demo_<i>: its seed is unknown')
        numbered.append((int(match.group(1)), name))
    return [name for _, name in sorted(numbered)]


def annotate(path: str, seed_start: int, families: Sequence[str] = FAMILIES,
             split: str = 'train', world=None) -> int:
    """Write ``grounding_peers`` into every episode of ``path``; return how many."""
    import h5py

    from humanoid_vla.sim.world import TabletopWorld
    world = world or TabletopWorld()
    with h5py.File(path, 'r+') as handle:
        names = demo_order(list(handle['data']))
        # Every instruction is checked before anything is written: a wrong seed leaves the
        # file as it was.
        tasks = [_recorded_task(handle['data'][name], f'{name} of {path}', seed_start + index,
                                families[index % len(families)], split)
                 for index, name in enumerate(names)]
        for name, task in zip(names, tasks):
            world.reset(task.seed, task)
            world.settle()
            positions = {obj: np.asarray(world.object_pose(obj)[0]) for obj in task.objects}
            handle['data'][name].attrs[PEERS_ATTRIBUTE] = json.dumps(
                peer_positions(task, positions))
    return len(names)


def _recorded_task(group, where: str, seed: int, family: str, split: str) -> TaskSpec:
    """Return the task of ``seed``; refuse it unless its instruction is the one recorded."""
    task = sample_task(seed, family, split)
    recorded = group.attrs.get('language_instruction')
    if isinstance(recorded, bytes):
        recorded = recorded.decode()
    if recorded != task.instruction:
        raise ValueError(f'{where} says {recorded!r}, but seed {seed} ({family}) gives '
                         f'{task.instruction!r}: wrong --seed-start, --families or --split?')
    return task


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog='vla-sim-annotate-peers', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='+', help='episode files recorded by vla-sim-record')
    parser.add_argument('--seed-start', type=int, nargs='+', required=True,
                        help='the --seed-start each file was recorded with (one per file)')
    parser.add_argument('--families', default=','.join(FAMILIES),
                        help='the --families they were recorded with')
    parser.add_argument('--split', default='train', choices=SPLITS)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-sim-annotate-peers."""
    args = build_parser().parse_args(argv)
    if len(args.seed_start) != len(args.files):
        raise SystemExit(f'give one --seed-start per file: {len(args.files)} files, '
                         f'{len(args.seed_start)} seeds')
    families = [f.strip() for f in args.families.split(',') if f.strip()]
    if not families or set(families) - set(FAMILIES):
        raise SystemExit(f'--families must be taken from {list(FAMILIES)}, got {families}')
    from humanoid_vla.sim.world import TabletopWorld
    world = TabletopWorld()
    for path, seed_start in zip(args.files, args.seed_start):
        count = annotate(path, seed_start, families, args.split, world)
        print(f'{path}: {count} episodes annotated', flush=True)
    return 0
