"""
Pick-and-place failure breakdown: which phase of an episode goes wrong, and by how much.

    vla-sim-diagnose CHECKPOINT --episodes 20 --split train --seed-start 10000
    vla-sim-diagnose --expert --episodes 20 --split train --seed-start 10000

The closed loop (vla-sim-evaluate) says how many pick-and-places succeed, not why the others
fail, and each fix targets a different phase. This runs pick-and-place episodes in-process
(SimEnvironment driven by the server's own VLAController and safety filter with the server's
simulation limits; no ROS) and sorts each episode into one outcome:

    success           the simulator's check passed (the target was held, then put in place)
    never_closed      the gripper command never crossed the grasp assist's threshold
    missed            it closed, but nothing was within the grasp assist's reach
    picked_reference  it picked up the place reference instead of the target
    wrong_object      it picked up another object
    not_placed        it held the target but did not leave it in place (still held at the
                      end, or let go somewhere else)

For every closing of the gripper it records how far the grasp site was from the target's
surface and which object was nearest (the grasp assist attaches within 3 cm); for every time
the hand lets go of the target, the free gap between the footprints of target and place
reference and how high above the table the target was (a "next to" needs a gap of at most
8 cm; on the plate the footprints overlap, so the gap is negative), and for "next to" how far
the target was from the scripted expert's place spot (planned at the reset), along the way
from the reference and across it (session 31: a policy's failed "next to" targets lay 4-11 cm
from it, mostly towards the reference). Unlike the
closed loop, physics waits for the policy here (no timing effects). Use `--substeps 5` to
apply each command, and the assisted grasp's rules, at every 20 ms step as the bridge does: with
one step per tick (the default) a release is only seen after the arm has moved, which once hid
that released objects were thrown (10 of 20 episodes in-process vs 5 through the nodes, until
the grasp assist let go at rest). `--expert` runs the scripted expert through the same
bookkeeping.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import statistics
from typing import Callable, Optional, Sequence

from humanoid_vla.evaluation.rollout import Actor, roll_out
from humanoid_vla.sim.tasks import NEXT_TO_GAP, TaskSpec
import numpy as np

OUTCOMES = ('success', 'never_closed', 'missed', 'picked_reference', 'wrong_object',
            'not_placed')
MAX_STEPS = 80  # vla-sim-evaluate's pick_place budget


@dataclass
class Closing:
    """One closing of the gripper: where the hand was, and what it picked up, if anything."""

    step: int
    target_distance_m: float
    nearest: str
    nearest_distance_m: float
    attached: Optional[str] = None


@dataclass
class Release:
    """One letting go of the target: how far from the place reference, and how high."""

    step: int
    reference_gap_m: float  # between the footprints; < 0: overlapping (on the plate)
    height_m: float  # of the target's underside above the table top
    # "Next to" only: the target's centre from the expert's place spot, along the direction
    # from the reference to the spot (< 0: towards the reference) and across it. Spot and
    # reference are those at the reset: a reference pushed away since moves the gap, not these.
    spot_radial_m: Optional[float] = None
    spot_lateral_m: Optional[float] = None


@dataclass
class EpisodeDiagnosis:
    """One episode: its task, outcome and gripper closings."""

    seed: int
    instruction: str
    target: str
    reference: str
    relation: str
    outcome: str = ''
    steps: int = 0
    closings: list[Closing] = field(default_factory=list)
    picked: list[str] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    map0_object: Optional[str] = None  # nearest map 0's point at the first frame (map_following)


class GraspMonitor:
    """Watches the gripper command and the held object of an environment tick by tick."""

    def __init__(self, env, task: TaskSpec) -> None:
        self.env = env
        self.task = task
        self.closings: list[Closing] = []
        self.releases: list[Release] = []
        self._closed = False
        self._held: Optional[str] = None
        # The expert's place spot and the reference's centre (x, y), for "next to" tasks.
        self.place_spot: Optional[np.ndarray] = None
        self.reference_xy: Optional[np.ndarray] = None
        from humanoid_vla.sim.grasp import CLOSED_THRESHOLD  # the grasp assist's own (mujoco)
        self._threshold = CLOSED_THRESHOLD

    def update(self, step: int) -> None:
        """Record closings (credited with what attaches) and releases of the target."""
        from humanoid_vla.sim.success import bottom_z, footprint_gap  # mujoco, like grasp
        env, world = self.env, self.env.world
        closed = env.gripper >= self._threshold
        if closed and not self._closed:
            site, _ = world.hand_pose(env.side)
            distances = {name: world.distance_to_object(site, name)
                         for name in world.object_names()}
            nearest = min(distances, key=distances.get)
            self.closings.append(Closing(step, float(distances[self.task.target]), nearest,
                                         float(distances[nearest])))
        self._closed = closed
        held = world.held_object(env.side)
        if held is not None and self.closings and self.closings[-1].attached is None:
            self.closings[-1].attached = held
        target = self.task.target
        if self._held == target and held != target:
            release = Release(step, footprint_gap(world, target, self.task.reference),
                              bottom_z(world, target) - world.table_top_z())
            if self.place_spot is not None:
                release.spot_radial_m, release.spot_lateral_m = spot_offsets(
                    world.object_pose(target)[0][:2], self.place_spot, self.reference_xy)
            self.releases.append(release)
        self._held = held

    def plan_place(self, env, task: TaskSpec) -> None:
        """Note the expert's place spot right after the reset (``next_to`` tasks only)."""
        if task.relation != 'next_to':
            return
        from humanoid_vla.sim.expert import ScriptedExpert  # mujoco, like grasp
        self.place_spot = ScriptedExpert(env.world, task, env.side).place_spot()[:2]
        self.reference_xy = np.array(env.world.object_pose(task.reference)[0][:2])


def spot_offsets(position: np.ndarray, spot: np.ndarray,
                 reference: np.ndarray) -> tuple[float, float]:
    """Return ``position`` (x, y) from ``spot``: along reference -> spot, and across it."""
    outward = (spot - reference) / np.linalg.norm(spot - reference)
    offset = np.asarray(position, dtype=float) - spot
    return (float(offset @ outward),
            float(outward[0] * offset[1] - outward[1] * offset[0]))


def classify(task: TaskSpec, success: bool, closings: Sequence[Closing],
             picked: Sequence[str]) -> str:
    """Return the episode's outcome (see OUTCOMES and the module docstring)."""
    if success:
        return 'success'
    if not closings:
        return 'never_closed'
    if task.target in picked:
        return 'not_placed'
    if task.reference in picked:
        return 'picked_reference'
    if picked:
        return 'wrong_object'
    return 'missed'


def run_episode(env, task: TaskSpec, make_actor: Callable[[object, TaskSpec], Actor],
                max_steps: int = MAX_STEPS, substeps: int = 1) -> EpisodeDiagnosis:
    """Run one pick-and-place episode (``roll_out``) and diagnose it."""
    monitor = GraspMonitor(env, task)
    diagnosis = EpisodeDiagnosis(task.seed, task.instruction, task.target, task.reference,
                                 task.relation)

    def planned_actor(env_, task_: TaskSpec) -> Actor:
        monitor.plan_place(env_, task_)  # roll_out has reset the scene by now
        return make_actor(env_, task_)
    success, diagnosis.steps = roll_out(env, task, planned_actor, max_steps, substeps,
                                        on_tick=monitor.update)
    diagnosis.closings = monitor.closings
    diagnosis.releases = monitor.releases
    diagnosis.picked = sorted(env.picked)
    diagnosis.outcome = classify(task, success, monitor.closings, diagnosis.picked)
    return diagnosis


def summarize(episodes: Sequence[EpisodeDiagnosis]) -> dict[str, object]:
    """Return outcome counts and the grasp-site distances at the first closing."""
    counts = Counter(e.outcome for e in episodes)
    first = [e.closings[0] for e in episodes if e.closings]
    missed = [e.closings[0].target_distance_m for e in episodes if e.outcome == 'missed']

    def median_cm(values: list[float]) -> Optional[float]:
        return round(100 * statistics.median(values), 1) if values else None

    relations = sorted({e.relation for e in episodes})
    return {
        'episodes': len(episodes),
        'outcomes': {name: counts.get(name, 0) for name in OUTCOMES},
        # "on the plate" names one pickable object, "next to" two: the instruction's word order
        # alone says which to grasp.
        'by_relation': {relation: {name: sum(e.outcome == name and e.relation == relation
                                             for e in episodes) for name in OUTCOMES}
                        for relation in relations},
        'first_closing_target_cm_median': median_cm([c.target_distance_m for c in first]),
        'first_closing_nearest_is_target': sum(c.nearest_distance_m >= c.target_distance_m
                                               for c in first),
        'first_closings': len(first),
        'missed_target_cm_median': median_cm(missed),
        'closings_per_episode_median': (statistics.median(len(e.closings) for e in episodes)
                                        if episodes else None),
        # Where the target was last let go in the episodes that held it but failed.
        'not_placed_last_release_gap_cm': {
            relation: sorted(round(100 * e.releases[-1].reference_gap_m, 1) for e in episodes
                             if e.outcome == 'not_placed' and e.relation == relation
                             and e.releases)
            for relation in relations},
        # Those "next to" releases from the expert's spot: (radial, lateral) in cm.
        'not_placed_last_release_spot_cm': [
            [round(100 * e.releases[-1].spot_radial_m, 1),
             round(100 * e.releases[-1].spot_lateral_m, 1)]
            for e in episodes if e.outcome == 'not_placed' and e.releases
            and e.releases[-1].spot_radial_m is not None],
    }


def format_summary(label: str, summary: dict[str, object]) -> str:
    """Return a few lines: outcomes, then distances at the first closing."""
    outcomes = ', '.join(f'{name} {count}' for name, count in summary['outcomes'].items())
    lines = [f'{label}: {summary["episodes"]} pick_place episodes', f'  {outcomes}']
    for relation, cell in summary['by_relation'].items():
        done = ', '.join(f'{name} {count}' for name, count in cell.items() if count)
        lines.append(f'  {relation:<8} {sum(cell.values())} episodes: {done}')
    if summary['first_closings']:
        lines.append(
            f'  first closing: grasp site {summary["first_closing_target_cm_median"]} cm '
            f'(median) from the target surface; target nearest in '
            f'{summary["first_closing_nearest_is_target"]} of {summary["first_closings"]}')
    gaps = {relation: values for relation, values
            in summary['not_placed_last_release_gap_cm'].items() if values}
    if gaps:
        listed = '; '.join(f'{relation} {", ".join(map(str, values))}'
                           for relation, values in gaps.items())
        lines.append(f'  not placed: footprint gap to the place reference at the last release '
                     f'(cm): {listed} (a next to needs <= {100 * NEXT_TO_GAP:.0f})')
    if summary['not_placed_last_release_spot_cm']:
        listed = ', '.join(f'({radial}, {lateral})' for radial, lateral
                           in summary['not_placed_last_release_spot_cm'])
        lines.append(f"  not placed next to: the target from the expert's spot at the last "
                     f'release (cm, towards -/away + from the reference, across): {listed}')
    if summary['missed_target_cm_median'] is not None:
        lines.append(f'  missed: median {summary["missed_target_cm_median"]} cm from the target '
                     f'at the first closing (the grasp assist reaches 3 cm)')
    return '\n'.join(lines)
