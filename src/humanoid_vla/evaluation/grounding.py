"""
Grounding probe: how often the policy reaches for the object the instruction names.

    vla-grounding-probe CHECKPOINT [CHECKPOINT ...] --scenes 50 --split train --seed-start 10000

For every held-out scene the first camera frame is shown to the policy once per object that
the instruction could name (every object for touch; every pickable one except the place
reference for pick-and-place), with the scene's own instruction reworded to name that object.
The answer is, for a checkpoint with grounding maps, where its first map (the object to touch
or grasp) peaks, carried along the camera ray down to the height of the named object's centre;
else the policy's subgoal (where the current gripper segment ends: the touch point, the grasp
pose) or, for a checkpoint without a subgoal head, the last action of its first chunk
(``--answer`` picks one). It is a *hit* when, in the table plane, it lies closer to the named
object than to any other object on the table. A policy that ignores the instruction points at
one place whatever is named, so it hits at most one query per scene: ``chance`` is scenes /
queries. For pick-and-place the answers nearest the place reference are counted too
(``to_reference``): a model that mixes up the object to grasp with the one to put it by lands
there. Queries that name a held-out colour-shape pair (novel split) get a row of their own
(``held_out``), with how many of its misses landed on an object of the named colour or shape:
that is where a model that binds "orange" to the orange cup it was trained on goes.

For a checkpoint trained with ``grounding_peer_groups`` (its last maps light up every object of
the named colour, of the named shape), ``peer_maps`` says how much of each such map lies within
1.5 grid cells of the named object and of each other object of its colour (shape): medians,
for trained and for held-out pairs.  A colour map that binds "orange" to the cup puts less on
an unseen orange block than on the orange cup beside it.  ``peer_and`` counts the queries
whose named object gets the most of all the peer maps at once (the highest sum of the logs of
its masses): whether maps that are each right about one word agree on the one object that is
both, as an AND of them would need.

In-process and ROS-free (rendering needs MUJOCO_GL): one scene costs a render and one forward
pass per named object, so two checkpoints are compared in about a minute here, where the closed
loop takes minutes per pair of episodes and its success counts are noisy at 20 per cell.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import pathlib
import statistics
from typing import Optional, Sequence

from humanoid_vla.camera_projection import PinholeCamera
from humanoid_vla.evaluation.touch_diagnosis import classify_touch
from humanoid_vla.policies.base import Observation
from humanoid_vla.sim.catalog import SHAPES, split_name, words
from humanoid_vla.sim.tasks import FAMILIES, HELD_OUT, sample_task, TaskSpec
import numpy as np


def named_candidates(task: TaskSpec) -> list[str]:
    """Return the objects of a scene its instruction could name as the target."""
    if task.family == 'touch':
        return list(task.objects)
    return [name for name in task.objects
            if name != task.reference and SHAPES[split_name(name)[1]].pickable]


def reworded(task: TaskSpec, name: str) -> str:
    """Return the task's instruction with its target replaced by ``name``."""
    if words(task.target) not in task.instruction:
        raise ValueError(f'instruction {task.instruction!r} does not name {task.target!r}')
    return task.instruction.replace(words(task.target), words(name), 1)


def nearest_object(point: np.ndarray, positions: dict[str, np.ndarray]) -> str:
    """Return the object whose centre is nearest to ``point`` in the table (x, y) plane."""
    return min(positions, key=lambda name: float(np.linalg.norm(positions[name][:2] - point[:2])))


PEER_RADIUS_CELLS = 1.5  # what counts as "on" an object: about 6 cm of table at stride 8
PEER_GROUP_PART = {'colour': 0, 'shape': 1}  # which part of split_name() a group shares


def mass_near(probabilities: np.ndarray, uv: np.ndarray,
              radius_cells: float = PEER_RADIUS_CELLS) -> float:
    """Return how much of a map ``(H, W)`` lies within ``radius_cells`` of image point ``uv``."""
    height, width = probabilities.shape
    columns = ((np.arange(width) + 0.5) / width * 2.0 - 1.0 - uv[0]) * width / 2.0
    rows = ((np.arange(height) + 0.5) / height * 2.0 - 1.0 - uv[1]) * height / 2.0
    near = rows[:, None] ** 2 + columns[None, :] ** 2 <= radius_cells ** 2
    return float(probabilities[near].sum())


def peer_groups_of(checkpoint: str) -> list[str]:
    """Return the ``grounding_peer_groups`` a checkpoint was trained with ([] if none)."""
    path = pathlib.Path(checkpoint) / 'training_args.json'
    if not path.exists():
        return []
    config = json.loads(path.read_text()).get('config', {})
    return list(config.get('grounding_peer_groups') or [])


@dataclass
class GroundingReport:
    """Hits per task family, and how far the answers were from the named objects."""

    scenes: int = 0
    queries: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    scene_counts: dict[str, int] = field(default_factory=dict)
    to_reference: dict[str, int] = field(default_factory=dict)
    errors_m: list[float] = field(default_factory=list)
    # Queries naming a held-out colour-shape pair: each one's chance (1 / the scene's named
    # candidates) and what its answer was nearest (classify_touch's outcomes).
    held_out_chances: list[float] = field(default_factory=list)
    held_out_outcomes: dict[str, int] = field(default_factory=dict)
    # (pairs, group) -> the named object's share of that peer map, and each look-alike's.
    peer_target_mass: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    peer_other_mass: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # pairs -> [queries whose named object the peer maps agree on, queries]
    peer_and: dict[str, list[int]] = field(default_factory=dict)

    def add(self, family: str, hit: bool, error_m: float, to_reference: bool = False) -> None:
        """Count one query."""
        self.queries[family] = self.queries.get(family, 0) + 1
        self.hits[family] = self.hits.get(family, 0) + int(hit)
        self.to_reference[family] = self.to_reference.get(family, 0) + int(to_reference)
        self.errors_m.append(error_m)

    def add_held_out(self, outcome: str, candidates: int) -> None:
        """Count one query that named a held-out pair, answered nearest ``outcome``."""
        self.held_out_chances.append(1.0 / candidates)
        self.held_out_outcomes[outcome] = self.held_out_outcomes.get(outcome, 0) + 1

    def add_peer_mass(self, pairs: str, group: str, target: float,
                      others: Sequence[float]) -> None:
        """Count one query's peer map ``group``: its mass on the named object and look-alikes."""
        self.peer_target_mass.setdefault((pairs, group), []).append(target)
        self.peer_other_mass.setdefault((pairs, group), []).extend(others)

    def add_peer_and(self, pairs: str, hit: bool) -> None:
        """Count one query, a hit when the peer maps together picked the named object."""
        counts = self.peer_and.setdefault(pairs, [0, 0])
        counts[0] += int(hit)
        counts[1] += 1

    def summary(self) -> dict[str, object]:
        """Return hit rates per family and overall, with chance and the median error."""
        result: dict[str, object] = {}
        for family in sorted(self.queries):
            result[family] = {
                'hits': self.hits[family], 'queries': self.queries[family],
                'hit_rate': self.hits[family] / self.queries[family],
                'chance': self.scene_counts[family] / self.queries[family],
                'to_reference': self.to_reference[family]}
        total = sum(self.queries.values())
        result['all'] = {
            'hits': sum(self.hits.values()), 'queries': total,
            'hit_rate': sum(self.hits.values()) / total if total else 0.0,
            'chance': self.scenes / total if total else 0.0,
            'median_error_m': statistics.median(self.errors_m) if self.errors_m else None}
        if self.held_out_chances:
            outcomes = self.held_out_outcomes
            count = len(self.held_out_chances)
            result['held_out'] = {
                'hits': outcomes.get('success', 0), 'queries': count,
                'hit_rate': outcomes.get('success', 0) / count,
                'chance': statistics.fmean(self.held_out_chances),
                'same_colour': outcomes.get('same_colour_first', 0),
                'same_shape': outcomes.get('same_shape_first', 0)}
        if self.peer_target_mass:
            result['peer_maps'] = {
                f'{pairs} {group}': {
                    'queries': len(targets), 'target': statistics.median(targets),
                    'others': statistics.median(self.peer_other_mass[(pairs, group)])}
                for (pairs, group), targets in sorted(self.peer_target_mass.items())}
        if self.peer_and:
            result['peer_and'] = {pairs: {'hits': hits, 'queries': queries}
                                  for pairs, (hits, queries) in sorted(self.peer_and.items())}
        return result


ANSWERS = ('auto', 'map', 'subgoal', 'action')


def model_camera(policy, camera: PinholeCamera) -> PinholeCamera:
    """Return ``camera`` projecting into the policy's image (its ``image_crop`` window, if any)."""
    return camera.cropped(getattr(policy, 'image_crop', None))


def answer_point(policy, observation: Observation, answer: str = 'auto',
                 camera: Optional[PinholeCamera] = None, plane_z: float = 0.0) -> np.ndarray:
    """
    Return the base-frame (x, y, z) the policy points at (see the module docstring).

    ``answer`` 'auto' takes the first that the policy has of 'map' (needs ``camera``; the
    image position is carried along its ray to the height ``plane_z``), 'subgoal' and
    'action'.
    """
    if answer not in ANSWERS:
        raise ValueError(f'answer must be one of {ANSWERS}, got {answer!r}')
    if answer in ('auto', 'map'):
        grounding = getattr(policy, 'predict_grounding', lambda _: None)(observation)
        if grounding is not None and camera is not None:
            return camera.ray_to_plane(grounding[0], plane_z)
        if answer == 'map':
            raise ValueError('answer "map" needs a policy with grounding maps and a camera')
    if answer in ('auto', 'subgoal'):
        subgoal = getattr(policy, 'predict_subgoal', lambda _: None)(observation)
        if subgoal is not None:
            return np.asarray(subgoal[:3], dtype=float)
        if answer == 'subgoal':
            raise ValueError('answer "subgoal" needs a policy with a subgoal head')
    return np.asarray(policy.predict(observation)[-1][:3], dtype=float)


PEER_AND_FLOOR = 1e-3  # mass below this counts as none: one empty map vetoes an object


def record_peer_mass(report: GroundingReport, maps: np.ndarray, groups: Sequence[str],
                     name: str, image_positions: dict[str, np.ndarray]) -> None:
    """
    Count the last ``len(groups)`` maps' mass on ``name`` and on each object sharing a group.

    Also count whether ``name`` is the object with the highest sum of the logs of its masses
    over all those maps (``peer_and``).
    """
    pairs = 'held_out' if split_name(name) in HELD_OUT else 'trained'
    peer_maps = maps[len(maps) - len(groups):]
    masses = {other: [mass_near(peer_map, uv) for peer_map in peer_maps]
              for other, uv in image_positions.items()}
    for offset, group in enumerate(groups):
        part = PEER_GROUP_PART[group]
        others = [other for other in image_positions if other != name
                  and split_name(other)[part] == split_name(name)[part]]
        if others:
            report.add_peer_mass(pairs, group, masses[name][offset],
                                 [masses[other][offset] for other in others])
    agreement = {other: float(np.log(np.maximum(mass, PEER_AND_FLOOR)).sum())
                 for other, mass in masses.items()}
    report.add_peer_and(pairs, all(agreement[name] > score
                                   for other, score in agreement.items() if other != name))


def probe(policy, env, seeds: Sequence[int], families: Sequence[str] = FAMILIES,
          split: str = 'train', answer: str = 'auto',
          peer_groups: Sequence[str] = ()) -> GroundingReport:
    """
    Probe ``policy`` on the first frame of each (seed, family) scene of ``env``.

    ``peer_groups`` (e.g. ``['colour', 'shape']``, the checkpoint's ``grounding_peer_groups``)
    also measures its peer maps (see the module docstring).
    """
    unknown = sorted(set(peer_groups) - set(PEER_GROUP_PART))
    if unknown:
        raise ValueError(f'peer groups {unknown} are not among {sorted(PEER_GROUP_PART)}')
    camera = model_camera(policy, env.world.camera_in_base())
    report = GroundingReport()
    for seed in seeds:
        for family in families:
            task = sample_task(seed, family, split)
            env.reset_task(task)
            env.world.settle()
            seen = env.observe()
            positions = {name: env.world.object_pose(name)[0] for name in task.objects}
            image_positions = {name: camera.project(position)
                               for name, position in positions.items()}
            report.scenes += 1
            report.scene_counts[family] = report.scene_counts.get(family, 0) + 1
            candidates = named_candidates(task)
            for name in candidates:
                observation = Observation(seen['image'], reworded(task, name),
                                          np.asarray(seen['joint_positions'], np.float32))
                point = answer_point(policy, observation, answer, camera, positions[name][2])
                error = float(np.linalg.norm(point[:2] - positions[name][:2]))
                nearest = nearest_object(point, positions)
                report.add(family, nearest == name, error, nearest == task.reference)
                if split_name(name) in HELD_OUT:
                    report.add_held_out(classify_touch(name, [nearest]), len(candidates))
                if peer_groups:
                    record_peer_mass(report, policy.predict_grounding_maps(observation),
                                     peer_groups, name, image_positions)
    return report


def format_summary(label: str, summary: dict[str, object]) -> str:
    """Return one line per family: hits / queries (rate) against chance."""
    lines = [label]
    for key, cell in summary.items():
        if key in ('peer_maps', 'peer_and'):
            continue
        line = (f'  {key:<10} {cell["hits"]:4d} / {cell["queries"]:<4d} '
                f'= {cell["hit_rate"]:6.1%}  (chance {cell["chance"]:.1%})')
        if cell.get('to_reference'):
            line += f'  {cell["to_reference"]} nearest the place reference'
        if 'same_colour' in cell:
            line += (f'  misses nearest the named colour {cell["same_colour"]}, '
                     f'the named shape {cell["same_shape"]}')
        if cell.get('median_error_m') is not None:
            line += f'  median xy error {100 * cell["median_error_m"]:.1f} cm'
        lines.append(line)
    for key, cell in summary.get('peer_maps', {}).items():
        pairs, group = key.split()
        lines.append(f'  peer map {group:<6} {pairs.replace("_", "-")} pairs: median mass '
                     f'{cell["target"]:.2f} on the named object, {cell["others"]:.2f} on each '
                     f'other of its {group} ({cell["queries"]} queries)')
    for pairs, cell in summary.get('peer_and', {}).items():
        lines.append(f'  peer maps together, {pairs.replace("_", "-")} pairs: pick the named '
                     f'object in {cell["hits"]} / {cell["queries"]} queries (the highest sum '
                     f'of log masses)')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog='vla-grounding-probe', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoints', nargs='+', help='checkpoint directories to probe')
    parser.add_argument('--scenes', type=int, default=50, help='scenes per task family')
    parser.add_argument('--seed-start', type=int, default=10000)
    parser.add_argument('--split', default='train', choices=['train', 'novel'])
    parser.add_argument('--families', default=','.join(FAMILIES),
                        help='comma-separated task families')
    parser.add_argument('--answer', default='auto', choices=ANSWERS,
                        help="what counts as the policy's answer: its first grounding map "
                             "('map'), its subgoal head, or its first chunk's last action; "
                             "'auto' takes the first the checkpoint has")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of vla-grounding-probe."""
    args = build_parser().parse_args(argv)
    families = [f.strip() for f in args.families.split(',') if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        raise SystemExit(f'unknown task families {unknown}; choose from {list(FAMILIES)}')
    # MUJOCO_GL must be chosen before mujoco is first imported.
    from humanoid_vla.sim.gl import select_gl_backend
    if select_gl_backend() is None:
        raise SystemExit('no offscreen OpenGL backend works here: install the packages in '
                         'tools/sim_system_packages.txt (EGL or OSMesa)')
    from humanoid_vla.policies.custom import CustomVLAPolicy
    from humanoid_vla.sim.episode_runner import SimEnvironment

    env = SimEnvironment()
    seeds = range(args.seed_start, args.seed_start + args.scenes)
    try:
        for checkpoint in args.checkpoints:
            report = probe(CustomVLAPolicy(checkpoint), env, seeds, families, args.split,
                           args.answer, peer_groups_of(checkpoint))
            print(format_summary(f'{checkpoint} ({args.split} split, seeds {seeds.start}-'
                                 f'{seeds.stop - 1})', report.summary()), flush=True)
    finally:
        env.close()
    return 0
